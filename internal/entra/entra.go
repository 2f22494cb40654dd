// Package entra gets app-only OAuth2 tokens from Microsoft Entra ID
// (azidentity's client-credentials, certificate and default credentials)
// for IMAP logins to Exchange Online: one credential per worker, its token
// cached and renewed before it expires, and refusals turned into errors
// that name their cause.
package entra

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// ExchangeOnlineScope is the scope of a token for Exchange Online's IMAP.
const ExchangeOnlineScope = "https://outlook.office365.com/.default"

// Credential kinds.
const (
	KindSecret      = "secret"
	KindCertificate = "certificate"
	// KindDefault is azidentity's default chain: environment, workload
	// identity, managed identity, Azure CLI.
	KindDefault = "default"
)

// Config says how to get tokens. Secrets are already resolved.
type Config struct {
	TenantID, ClientID string
	Kind               string
	ClientSecret       string
	// Certificate is a PEM (or PKCS#12) file's bytes holding the
	// certificate and its private key; CertificatePassword opens it.
	Certificate         []byte
	CertificatePassword string
	// Scope defaults to ExchangeOnlineScope.
	Scope string
	// AuthorityHost is the Entra authority (default: the public cloud's,
	// https://login.microsoftonline.com/); a sovereign cloud's or a test's.
	AuthorityHost string
	// RootCAs, when set, are the only CAs trusted for the authority (a
	// private one in tests or behind a TLS-inspecting proxy).
	RootCAs *x509.CertPool
}

// Source hands out tokens for one app registration.
type Source struct {
	cred  azcore.TokenCredential
	scope string
	id    string

	mu  sync.Mutex
	tok azcore.AccessToken
}

// renewBefore is how long before its expiry a token is replaced: a login
// that starts with it must not see it expire in the middle.
const renewBefore = 5 * time.Minute

// New builds the credential; it asks for no token yet.
func New(c Config) (*Source, error) {
	opts := azcore.ClientOptions{}
	if c.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: c.AuthorityHost}
	}
	if c.RootCAs != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}
		opts.Transport = &http.Client{Transport: tr}
	}
	// A private authority has no instance discovery endpoint.
	disco := c.AuthorityHost != ""
	s := &Source{scope: c.Scope, id: "oauth2:" + c.TenantID + "/" + c.ClientID}
	if s.scope == "" {
		s.scope = ExchangeOnlineScope
	}
	var err error
	switch c.Kind {
	case KindSecret, "":
		s.cred, err = azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disco})
	case KindCertificate:
		certs, key, perr := azidentity.ParseCertificates(c.Certificate, []byte(c.CertificatePassword))
		if perr != nil {
			return nil, fmt.Errorf("client certificate: %w", perr)
		}
		s.cred, err = azidentity.NewClientCertificateCredential(c.TenantID, c.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disco, SendCertificateChain: true})
	case KindDefault:
		s.cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: disco, TenantID: c.TenantID})
	default:
		return nil, fmt.Errorf("credential %q: want %s, %s or %s", c.Kind, KindSecret, KindCertificate, KindDefault)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ID names the app registration (tenant and client), never the secret.
func (s *Source) ID() string { return s.id }

// Token returns a bearer token, from the cache while it has more than
// renewBefore to live. Concurrent logins share one request.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Token != "" && time.Until(s.tok.ExpiresOn) > renewBefore {
		return s.tok.Token, nil
	}
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.scope}})
	if err != nil {
		return "", explain(err)
	}
	s.tok = tok
	return tok.Token, nil
}

// Error is a failed token request with its cause in words.
type Error struct {
	Cause     string
	permanent bool
	Err       error
}

func (e *Error) Error() string { return e.Cause }
func (e *Error) Unwrap() error { return e.Err }

// Permanent: a retry cannot help (a refused secret, an unknown tenant or
// app); an outage or a network fault can pass.
func (e *Error) Permanent() bool { return e.permanent }

var aadsts = regexp.MustCompile(`AADSTS(\d+)`)

// causes are the Entra error codes a token request meets when the tenant
// or the app is set up wrong, in the words an administrator acts on.
var causes = map[string]string{
	"90002":   "the tenant is unknown to Entra ID (check tenant_id)",
	"900023":  "the tenant id is not valid (check tenant_id)",
	"700016":  "the application (client_id) is not found in the tenant: wrong client_id, or the app is not consented there",
	"7000215": "the client secret is wrong",
	"7000222": "the client secret has expired",
	"700027":  "the client certificate was refused (not registered on the app, or expired)",
	"500011":  "the tenant has no service principal for the requested resource (scope)",
	"1002012": "the scope is not valid (want https://outlook.office365.com/.default)",
}

// explain turns an azidentity error into an Error naming its cause.
func explain(err error) error {
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) {
		// No answer from the authority (network, DNS, TLS): may pass.
		return &Error{Cause: "no token from Entra ID: " + err.Error(), Err: err}
	}
	status := 0
	if afe.RawResponse != nil {
		status = afe.RawResponse.StatusCode
	}
	if m := aadsts.FindStringSubmatch(err.Error()); m != nil {
		if cause, ok := causes[m[1]]; ok {
			return &Error{Cause: "Entra ID refused the token request: " + cause + " (AADSTS" + m[1] + ")", permanent: true, Err: err}
		}
	}
	if status >= 500 || status == http.StatusTooManyRequests || status == 0 {
		return &Error{Cause: fmt.Sprintf("Entra ID did not issue a token (HTTP %d); trying again later", status), Err: err}
	}
	return &Error{Cause: fmt.Sprintf("Entra ID refused the token request (HTTP %d): %s", status, firstLine(err.Error())), permanent: true, Err: err}
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
