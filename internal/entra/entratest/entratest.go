// Package entratest is a stand-in for the Entra ID token endpoint, on
// loopback over TLS, for tests of the real client-credentials flow: it
// answers MSAL's discovery and token requests and mints RS256 JWTs that a
// Dovecot with passdb oauth2 (introspection local) validates.
package entratest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Authority is a test Entra ID for one tenant and one app.
type Authority struct {
	Server             *httptest.Server
	TenantID, ClientID string
	Secret             string
	// UPN is the upn claim of the tokens it issues.
	UPN string
	// Lifetime of the tokens it issues (default an hour).
	Lifetime time.Duration
	// TokenRequests counts the token requests answered.
	TokenRequests atomic.Int64

	mu     sync.Mutex
	issued []string

	key *rsa.PrivateKey
	kid string
}

// New starts an authority for tenant and client, accepting secret.
func New(tenant, client, secret, upn string) (*Authority, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	a := &Authority{TenantID: tenant, ClientID: client, Secret: secret, UPN: upn, Lifetime: time.Hour, key: key, kid: "test-key"}
	mux := http.NewServeMux()
	mux.HandleFunc("/", a.serve)
	a.Server = httptest.NewTLSServer(mux)
	return a, nil
}

// Close stops the server.
func (a *Authority) Close() { a.Server.Close() }

// Host is the authority host to configure (https://127.0.0.1:port/).
func (a *Authority) Host() string { return a.Server.URL + "/" }

// Issuer is the iss claim of its tokens.
func (a *Authority) Issuer() string { return a.Server.URL + "/" + a.TenantID + "/v2.0" }

// KeyID is the kid of its signing key.
func (a *Authority) KeyID() string { return a.kid }

// PublicKeyPEM is the signing key's public half, as Dovecot reads it.
func (a *Authority) PublicKeyPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(&a.key.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// RootCAs trusts the server's certificate.
func (a *Authority) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(a.Server.Certificate())
	return pool
}

func (a *Authority) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 0 || parts[0] != a.TenantID {
		entraError(w, http.StatusBadRequest, "invalid_request", "AADSTS90002: Tenant '"+parts[0]+"' not found.", 90002)
		return
	}
	base := a.Server.URL + "/" + a.TenantID
	switch {
	case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                 a.Issuer(),
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"jwks_uri":               base + "/discovery/v2.0/keys",
		})
	case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") && r.Method == http.MethodPost:
		if err := r.ParseForm(); err != nil {
			entraError(w, http.StatusBadRequest, "invalid_request", err.Error(), 0)
			return
		}
		switch {
		case r.PostForm.Get("client_id") != a.ClientID:
			entraError(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier '"+r.PostForm.Get("client_id")+"' was not found in the directory.", 700016)
			return
		case r.PostForm.Get("client_secret") != a.Secret:
			entraError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.", 7000215)
			return
		}
		a.TokenRequests.Add(1)
		tok := a.Mint(map[string]any{})
		a.mu.Lock()
		a.issued = append(a.issued, tok)
		a.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": int(a.Lifetime.Seconds()), "ext_expires_in": int(a.Lifetime.Seconds()), "access_token": tok})
	default:
		http.NotFound(w, r)
	}
}

// Mint signs a token with the usual claims (iss, sub, upn, aud, iat,
// exp), overridden or extended by claims.
func (a *Authority) Mint(claims map[string]any) string {
	now := time.Now()
	c := map[string]any{
		"iss": a.Issuer(), "sub": a.ClientID, "upn": a.UPN, "aud": "https://outlook.office365.com",
		"appid": a.ClientID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(a.Lifetime).Unix(),
	}
	for k, v := range claims {
		c[k] = v
	}
	return a.sign(c, a.key)
}

// MintForeign is Mint signed with a key the servers do not trust.
func (a *Authority) MintForeign(claims map[string]any) string {
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	tok := a.Mint(claims)
	parts := strings.SplitN(tok, ".", 3)
	var c map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(b, &c)
	return a.sign(c, other)
}

func (a *Authority) sign(claims map[string]any, key *rsa.PrivateKey) string {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": a.kid})
	p, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		panic(fmt.Sprintf("entratest: signing: %v", err))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func entraError(w http.ResponseWriter, status int, code, desc string, n int) {
	body := map[string]any{"error": code, "error_description": desc}
	if n != 0 {
		body["error_codes"] = []int{n}
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Tokens are the tokens the authority issued through its token endpoint.
func (a *Authority) Tokens() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.issued...)
}

// Verify checks a token as Exchange Online would before opening a mailbox
// with it: signed by this authority's key, issued by it, for Exchange,
// and not expired. It returns the token's claims.
func (a *Authority) Verify(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&a.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if c["iss"] != a.Issuer() {
		return nil, fmt.Errorf("issuer %v", c["iss"])
	}
	if c["aud"] != "https://outlook.office365.com" {
		return nil, fmt.Errorf("audience %v", c["aud"])
	}
	if exp, _ := c["exp"].(float64); int64(exp) < time.Now().Unix() {
		return nil, fmt.Errorf("expired")
	}
	return c, nil
}
