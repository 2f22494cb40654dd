// Package config reads the worker's configuration: named IMAP endpoints, the
// staging store, the router and transfer limits. Secrets appear only as
// references (env:VAR, file:/path) and are resolved when a connection is made.
package config

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/mailshift/mailshift/internal/entra"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/profile"
	"github.com/mailshift/mailshift/internal/secrets"
	"github.com/mailshift/mailshift/internal/transfer"
)

// Config is the worker configuration file (MAILSHIFT_CONFIG).
type Config struct {
	TaskQueue string              `yaml:"task_queue"`
	Endpoints map[string]Endpoint `yaml:"endpoints"`
	Staging   Staging             `yaml:"staging"`
	Routing   Routing             `yaml:"routing"`
	Limits    Limits              `yaml:"limits"`
	// Validation is how deep a mailbox is validated unless its
	// organization says otherwise.
	Validation Validation `yaml:"validation"`
	// PayloadEncryption, when set, encrypts every payload mailshift's
	// clients write to Temporal (inputs, results, heartbeats, memos,
	// failures); see internal/codec. Without it payloads are in clear.
	PayloadEncryption *PayloadEncryption `yaml:"payload_encryption,omitempty"`
}

// PayloadEncryption names the AES-256 keys of the payload codec. Payloads
// are encrypted with ActiveKey; any listed key decrypts the payloads that
// name it, so a rotated-out key stays listed until no history needs it.
type PayloadEncryption struct {
	ActiveKey string          `yaml:"active_key"`
	Keys      []EncryptionKey `yaml:"keys"`
}

// EncryptionKey is one payload key: an id recorded with every payload it
// encrypts, and a secret reference to 32 random bytes in base64.
type EncryptionKey struct {
	ID  string      `yaml:"id"`
	Key secrets.Ref `yaml:"key"`
}

// EncryptionKeySize is the AES-256 key length in bytes.
const EncryptionKeySize = 32

// Auth modes for an endpoint.
const (
	// AuthPassword logs in as each user with that user's own password.
	AuthPassword = "password"
	// AuthMaster authenticates as an administrator on behalf of the user with
	// SASL PLAIN (authzid = user), as Dovecot master users, Cyrus and others accept.
	AuthMaster = "master"
	// AuthMasterLogin logs in with LOGIN "user<sep>admin" (Dovecot's master user
	// syntax) for servers that do not accept an authorization identity in PLAIN.
	AuthMasterLogin = "master-login"
	// AuthOAuth2 logs in to each mailbox with an app-only token from Entra
	// ID (SASL XOAUTH2, or OAUTHBEARER): Exchange Online.
	AuthOAuth2 = "oauth2"
)

// OAuth2 is an endpoint's app registration in Entra ID (auth: oauth2).
type OAuth2 struct {
	TenantID string `yaml:"tenant_id"`
	ClientID string `yaml:"client_id"`
	// Credential is secret (client_secret), certificate
	// (client_certificate) or default (azidentity's chain: environment,
	// workload identity, managed identity, Azure CLI); "" picks secret or
	// certificate by which one is set.
	Credential string `yaml:"credential"`
	// ClientSecret is a secret reference (env:VAR, file:/path).
	ClientSecret secrets.Ref `yaml:"client_secret"`
	// ClientCertificate references a PEM (or PKCS#12) file holding the
	// certificate and its private key; ClientCertificatePassword opens it.
	ClientCertificate         secrets.Ref `yaml:"client_certificate"`
	ClientCertificatePassword secrets.Ref `yaml:"client_certificate_password"`
	// Scope defaults to https://outlook.office365.com/.default.
	Scope string `yaml:"scope"`
	// AuthorityHost is the Entra authority (default the public cloud's); a
	// sovereign cloud's, or a test authority's.
	AuthorityHost string `yaml:"authority_host"`
	// AuthorityCAFile is a PEM bundle (an absolute path) that, when set, is
	// the only trust for the authority's certificate.
	AuthorityCAFile string `yaml:"authority_ca_file"`
	// MaxConnections bounds the connections of every endpoint logging in
	// with this app registration (tenant_id and client_id), together: the
	// tenant throttles an app as a whole. 0: each endpoint's own
	// max_connections, and endpoints sharing the app share the smallest.
	MaxConnections int `yaml:"max_connections"`
}

// MIME modes of an endpoint.
const (
	MIMEKeep     = "keep"
	MIMERerender = "rerender"
)

// Endpoint is an IMAP server known by name; workflows refer to it by that name.
type Endpoint struct {
	URL             string      `yaml:"url"`
	Auth            string      `yaml:"auth"`
	Passwords       secrets.Ref `yaml:"passwords"`
	MasterUser      string      `yaml:"master_user"`
	MasterPassword  secrets.Ref `yaml:"master_password"`
	MasterSeparator string      `yaml:"master_separator"`
	OAuth2          *OAuth2     `yaml:"oauth2"`
	MaxConnections  int         `yaml:"max_connections"`
	// Profile names what the endpoint is when it is a target: "" (a server
	// that keeps what it is given) or exchange-online (see
	// docs/exchange-online.md), which sets MIME, keywords, the size ceiling,
	// well-known folders and MaxConnectionsPerMailbox.
	Profile string `yaml:"profile"`
	// MIME says whether the target keeps the bytes of a message (keep) or
	// renders it again when it is fetched (rerender: Exchange); default
	// the profile's, else keep.
	MIME string `yaml:"mime"`
	// MaxConnectionsPerMailbox bounds the connections one mailbox's pass
	// opens to this endpoint (default the profile's, else no bound beyond
	// max_connections).
	MaxConnectionsPerMailbox int `yaml:"max_connections_per_mailbox"`
	// TLSCAFile is a PEM bundle of CA certificates (an absolute path) that
	// the worker trusts for this endpoint in addition to the system's roots:
	// a private CA. It is read when the worker starts.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSServerName is the name the server's certificate must carry when
	// the URL's host is not it (an IP address, an internal alias).
	TLSServerName string `yaml:"tls_server_name"`
	// TLSInsecureSkipVerify accepts any server certificate: for lab servers
	// with self-signed certificates only (the worker warns at start).
	TLSInsecureSkipVerify bool `yaml:"tls_insecure_skip_verify"`
	// AllowPlaintext lets an imap:// endpoint that is not loopback be used
	// without TLS when its server does not offer STARTTLS (a trusted
	// network; the worker warns at start). Without it such a server is
	// refused before any credential is sent.
	AllowPlaintext bool `yaml:"allow_plaintext"`
}

// Staging selects the staging store.
//
// For azblob, exactly one of connection_string (a secret reference),
// account_url (https://<account>.blob.core.windows.net, authenticated with
// Azure's default credential chain: environment, workload identity, managed
// identity, Azure CLI) and sas_url (a secret reference to a container URL
// with a SAS token needing r, a, c, w, d, l and, for index tags, t) says how
// to connect. Secrets are resolved when the worker starts, in its process.
type Staging struct {
	Kind             string      `yaml:"kind"` // local | azblob
	Path             string      `yaml:"path"` // local
	Container        string      `yaml:"container"`
	ConnectionString secrets.Ref `yaml:"connection_string"`
	AccountURL       string      `yaml:"account_url"`
	SASURL           secrets.Ref `yaml:"sas_url"`
	// CreateContainer creates a missing container at worker start.
	CreateContainer bool `yaml:"create_container"`
	// BlockSize of staged blocks (default 4MiB, 64KiB..100MiB); a Put holds
	// about (Concurrency+1) blocks in memory.
	BlockSize ByteSize `yaml:"block_size"`
	// Concurrency is how many blocks one item stages at once (default 2).
	Concurrency int `yaml:"concurrency"`
	// IndexTags copies organization, mailbox, reason and kind into blob index
	// tags (default true); turn off for accounts with a hierarchical
	// namespace or SAS tokens without the t permission.
	IndexTags *bool `yaml:"index_tags"`
}

// Azure Blob staging defaults and bounds (the staging package's).
const (
	DefaultStagingBlockSize   = 4 << 20
	MinStagingBlockSize       = 64 << 10
	MaxStagingBlockSize       = 100 << 20
	DefaultStagingConcurrency = 2
)

// Routing selects how the cutover switches mail delivery.
type Routing struct {
	Kind string `yaml:"kind"` // none | file | webhook
	Path string `yaml:"path"` // file: a Postfix-style transport map
	// Nexthop is written for migrated addresses, e.g. "smtp:[cloud.example]:25".
	Nexthop string `yaml:"nexthop"`
	// URL receives the webhook's POSTs: https, or http to a loopback address.
	URL string `yaml:"url"`
	// TokenFile holds the webhook's bearer token (optional; an absolute
	// path, mode 0600, read at each call).
	TokenFile string `yaml:"token_file"`
	// Timeout of each webhook request (default 30s, at most 5m).
	Timeout time.Duration `yaml:"timeout"`
	// Batch is the most addresses per webhook request (default 1000).
	Batch int `yaml:"batch"`
}

// Webhook routing defaults and bounds (the routing package's defaults).
const (
	DefaultRoutingTimeout = 30 * time.Second
	MaxRoutingTimeout     = 5 * time.Minute // the routing activity's start-to-close timeout
	DefaultRoutingBatch   = 1000
	MaxRoutingBatch       = 100000
)

// Limits bound what one mailbox may skip and what the target accepts.
type Limits struct {
	MaxMessageSize ByteSize `yaml:"max_message_size"`
	// MaxLargeItems defaults to no limit (large items are staged, not lost);
	// MaxBadItems to 0, as Exchange's BadItemLimit does. -1 means no limit.
	MaxLargeItems *int `yaml:"max_large_items"`
	MaxBadItems   *int `yaml:"max_bad_items"`
	// LanesPerMailbox is how many folders of one mailbox are copied at once,
	// each over its own pair of connections (default 1; counted against
	// each endpoint's max_connections).
	LanesPerMailbox int `yaml:"lanes_per_mailbox"`
	// AppendWindow is how many APPENDs a lane keeps in flight over LITERAL+
	// (default 16); -1 waits for each answer (no pipeline).
	AppendWindow int `yaml:"append_window"`
}

// Validation sets the worker's default validation level: metadata (the
// default: FETCH metadata on both sides, no body read), sample (also
// Sample target bodies per folder, hashed against the copy's digests) or
// full (every body on both sides).
type Validation struct {
	Level  string `yaml:"level"`
	Sample int    `yaml:"sample"`
}

// Defaults applied where the file is silent.
const (
	DefaultTaskQueue      = "mailshift"
	DefaultMaxMessageSize = 35 << 20 // Exchange Online's default receive limit
	MaxMaxMessageSize     = 150 << 20
	DefaultMaxConnections = 8
	// DefaultLanesPerMailbox: folders of one mailbox copied at once. One:
	// an organization already runs several mailboxes at once, and every
	// extra lane is three more server sessions (measured on 2 cores: 1 GB
	// in 10.1 s of machine CPU with 2 lanes, 9.2 s with 1). Raise it for
	// a few very large mailboxes.
	DefaultLanesPerMailbox = 1
	// DefaultAppendWindow: APPENDs in flight per lane.
	DefaultAppendWindow = 16
)

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes and validates configuration bytes; name is used in errors.
func Parse(b []byte, name string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	// An empty file is an empty configuration: Validate says what is missing.
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", name, withFields(b, err))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return &c, nil
}

// Validate fills defaults and reports every problem at once, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	if c.TaskQueue == "" {
		c.TaskQueue = DefaultTaskQueue
	}
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("endpoints: at least one endpoint is required"))
	}
	for _, name := range c.EndpointNames() {
		ep := c.Endpoints[name]
		// Each problem on its own line, each naming the endpoint.
		for _, err := range ep.validate() {
			errs = append(errs, fmt.Errorf("endpoints.%s: %w", name, err))
		}
		c.Endpoints[name] = ep
	}
	if l, err := transfer.ParseLevel(c.Validation.Level); err != nil {
		errs = append(errs, fmt.Errorf("validation.level: %w", err))
	} else {
		c.Validation.Level = string(l)
	}
	if c.Validation.Sample < 0 {
		errs = append(errs, fmt.Errorf("validation.sample: %d is negative", c.Validation.Sample))
	}
	switch c.Staging.Kind {
	case "", "local":
		c.Staging.Kind = "local"
		if c.Staging.Path == "" {
			c.Staging.Path = "mailshift-staging"
		}
	case "azblob":
		errs = append(errs, c.Staging.validateAzblob()...)
	default:
		errs = append(errs, fmt.Errorf("staging.kind: %q is not one of local, azblob", c.Staging.Kind))
	}
	switch c.Routing.Kind {
	case "", "none":
		c.Routing.Kind = "none"
	case "file":
		if c.Routing.Path == "" {
			errs = append(errs, errors.New("routing.path: required for the file router"))
		}
		// It is the second field of every line the router writes.
		if c.Routing.Nexthop == "" || strings.ContainsFunc(c.Routing.Nexthop, unicode.IsSpace) {
			errs = append(errs, fmt.Errorf("routing.nexthop: %q: required for the file router, without blanks (e.g. smtp:[cloud.example]:25)", c.Routing.Nexthop))
		}
	case "webhook":
		errs = append(errs, c.Routing.validateWebhook()...)
	default:
		errs = append(errs, fmt.Errorf("routing.kind: %q is not one of none, file, webhook", c.Routing.Kind))
	}
	if c.Limits.LanesPerMailbox == 0 {
		c.Limits.LanesPerMailbox = DefaultLanesPerMailbox
	}
	if c.Limits.LanesPerMailbox < 1 || c.Limits.LanesPerMailbox > 16 {
		errs = append(errs, fmt.Errorf("limits.lanes_per_mailbox: %d is outside 1..16", c.Limits.LanesPerMailbox))
	}
	if c.Limits.AppendWindow == 0 {
		c.Limits.AppendWindow = DefaultAppendWindow
	}
	if c.Limits.AppendWindow < -1 || c.Limits.AppendWindow > 256 {
		errs = append(errs, fmt.Errorf("limits.append_window: %d is outside -1..256", c.Limits.AppendWindow))
	}
	if c.Limits.MaxMessageSize == 0 {
		c.Limits.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.Limits.MaxMessageSize < 0 || c.Limits.MaxMessageSize > MaxMaxMessageSize {
		errs = append(errs, fmt.Errorf("limits.max_message_size: %d is outside 1..150MB", c.Limits.MaxMessageSize))
	}
	for field, v := range map[string]*int{"max_large_items": c.Limits.MaxLargeItems, "max_bad_items": c.Limits.MaxBadItems} {
		if v != nil && *v < -1 {
			errs = append(errs, fmt.Errorf("limits.%s: %d (use -1 for no limit)", field, *v))
		}
	}
	if c.PayloadEncryption != nil {
		errs = append(errs, c.PayloadEncryption.validate()...)
	}
	return errors.Join(errs...)
}

// validate checks the key list's shape. The key material is read only by
// ResolveKeys, in the process that uses it, like every other secret: a
// configuration can be checked where the secrets are not.
func (p *PayloadEncryption) validate() []error {
	var errs []error
	if len(p.Keys) == 0 {
		errs = append(errs, errors.New("payload_encryption.keys: at least one key is required"))
	}
	seen := map[string]bool{}
	for i, k := range p.Keys {
		switch {
		case k.ID == "":
			errs = append(errs, fmt.Errorf("payload_encryption.keys[%d].id: required", i))
		case !validKeyID(k.ID):
			errs = append(errs, fmt.Errorf("payload_encryption.keys[%d].id: %q: want letters, digits, '.', '_' and '-' (at most 64)", i, k.ID))
		case seen[k.ID]:
			errs = append(errs, fmt.Errorf("payload_encryption.keys[%d].id: %q is listed twice", i, k.ID))
		}
		seen[k.ID] = true
		if err := k.Key.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("payload_encryption.keys[%s].key: %w", keyName(i, k.ID), err))
		}
	}
	switch {
	case p.ActiveKey == "":
		errs = append(errs, errors.New("payload_encryption.active_key: required (the id of the key that encrypts new payloads)"))
	case !seen[p.ActiveKey]:
		errs = append(errs, fmt.Errorf("payload_encryption.active_key: %q is not the id of a listed key", p.ActiveKey))
	}
	return errs
}

// keyName is how errors name a key: its id, or its index when it has none.
func keyName(i int, id string) string {
	if id == "" {
		return strconv.Itoa(i)
	}
	return id
}

func validKeyID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ResolveKeys reads every key (base64 of 32 bytes, surrounding blanks
// ignored) and returns them by id. Errors name the key id and never
// contain key material.
func (p *PayloadEncryption) ResolveKeys() (map[string][]byte, error) {
	keys := make(map[string][]byte, len(p.Keys))
	var errs []error
	for i, k := range p.Keys {
		name := keyName(i, k.ID)
		raw, err := k.Key.Resolve()
		if err != nil {
			errs = append(errs, fmt.Errorf("payload_encryption.keys[%s].key: %w", name, err))
			continue
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("payload_encryption.keys[%s].key: %s does not hold base64 (make one with: head -c 32 /dev/urandom | base64)", name, k.Key))
		case len(key) != EncryptionKeySize:
			errs = append(errs, fmt.Errorf("payload_encryption.keys[%s].key: %s holds %d bytes, want %d (make one with: head -c 32 /dev/urandom | base64)", name, k.Key, len(key), EncryptionKeySize))
		default:
			keys[k.ID] = key
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return keys, nil
}

func (st *Staging) validateAzblob() []error {
	var errs []error
	n := 0
	for _, set := range []bool{st.ConnectionString != "", st.AccountURL != "", st.SASURL != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs = append(errs, errors.New("staging: azblob needs exactly one of connection_string, account_url and sas_url"))
	}
	if st.Container == "" && st.SASURL == "" {
		errs = append(errs, errors.New("staging.container: required for azblob (unless sas_url names it)"))
	}
	if st.ConnectionString != "" {
		if err := st.ConnectionString.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("staging.connection_string: %w", err))
		}
	}
	if st.SASURL != "" {
		if err := st.SASURL.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("staging.sas_url: %w", err))
		}
		if st.CreateContainer {
			errs = append(errs, errors.New("staging.create_container: a container SAS cannot create its container"))
		}
	}
	if st.AccountURL != "" {
		u, err := url.Parse(st.AccountURL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("staging.account_url: %w", err))
		case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
			errs = append(errs, fmt.Errorf("staging.account_url: %q: want https://<account>.blob.core.windows.net", st.AccountURL))
		case u.RawQuery != "":
			errs = append(errs, errors.New("staging.account_url: must not carry a query (put a SAS URL in sas_url, as a secret reference)"))
		}
	}
	if st.Container != "" && !validContainerName(st.Container) {
		errs = append(errs, fmt.Errorf("staging.container: %q: want 3-63 lower-case letters, digits and single hyphens", st.Container))
	}
	if st.BlockSize == 0 {
		st.BlockSize = DefaultStagingBlockSize
	}
	if st.BlockSize < MinStagingBlockSize || st.BlockSize > MaxStagingBlockSize {
		errs = append(errs, fmt.Errorf("staging.block_size: %d is outside 64KiB..100MiB", st.BlockSize))
	}
	if st.Concurrency == 0 {
		st.Concurrency = DefaultStagingConcurrency
	}
	if st.Concurrency < 1 || st.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("staging.concurrency: %d is outside 1..64", st.Concurrency))
	}
	return errs
}

func (r *Routing) validateWebhook() []error {
	var errs []error
	u, err := url.Parse(r.URL)
	switch {
	case r.URL == "":
		errs = append(errs, errors.New("routing.url: required for the webhook router"))
	case err != nil:
		// url.Parse quotes the whole URL, which may hold a secret.
		errs = append(errs, errors.New("routing.url: not a URL"))
	case u.User != nil:
		errs = append(errs, errors.New("routing.url: credentials must not be embedded (put a bearer token in token_file)"))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, errors.New("routing.url: must not carry a query or fragment (put a bearer token in token_file)"))
	case u.Host == "" || u.Scheme != "https" && u.Scheme != "http":
		errs = append(errs, fmt.Errorf("routing.url: %q: want https://host/path", r.URL))
	case u.Scheme == "http" && !imapconn.IsLoopback(u.Hostname()):
		errs = append(errs, fmt.Errorf("routing.url: %q: plain http only to a loopback address; use https", r.URL))
	}
	if r.TokenFile != "" && !filepath.IsAbs(r.TokenFile) {
		errs = append(errs, fmt.Errorf("routing.token_file: %q: want an absolute path", r.TokenFile))
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultRoutingTimeout
	}
	if r.Timeout < time.Second || r.Timeout > MaxRoutingTimeout {
		errs = append(errs, fmt.Errorf("routing.timeout: %s is outside 1s..5m", r.Timeout))
	}
	if r.Batch == 0 {
		r.Batch = DefaultRoutingBatch
	}
	if r.Batch < 1 || r.Batch > MaxRoutingBatch {
		errs = append(errs, fmt.Errorf("routing.batch: %d is outside 1..%d", r.Batch, MaxRoutingBatch))
	}
	return errs
}

// validContainerName applies Azure's container naming rules.
func validContainerName(s string) bool {
	if len(s) < 3 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// EndpointNames lists endpoint names in a stable order.
func (c *Config) EndpointNames() []string {
	names := make([]string, 0, len(c.Endpoints))
	for n := range c.Endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (ep *Endpoint) validate() []error {
	var errs []error
	addr, err := imapconn.ParseAddress(ep.URL)
	if err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if ep.AllowPlaintext && err == nil && addr.TLS {
		errs = append(errs, errors.New("allow_plaintext: only applies to imap:// URLs (imaps:// is always TLS)"))
	}
	if ep.TLSCAFile != "" && !filepath.IsAbs(ep.TLSCAFile) {
		errs = append(errs, fmt.Errorf("tls_ca_file: %q: want an absolute path", ep.TLSCAFile))
	}
	if ep.TLSCAFile != "" && ep.TLSInsecureSkipVerify {
		errs = append(errs, errors.New("tls_ca_file: has no effect with tls_insecure_skip_verify; set only one of them"))
	}
	if strings.ContainsFunc(ep.TLSServerName, func(r rune) bool { return unicode.IsSpace(r) || r == '/' }) {
		errs = append(errs, fmt.Errorf("tls_server_name: %q: want a host name", ep.TLSServerName))
	}
	if ep.MaxConnections == 0 {
		ep.MaxConnections = DefaultMaxConnections
	}
	if ep.MaxConnections < 0 {
		errs = append(errs, errors.New("max_connections: must be > 0"))
	}
	prof, err := profile.Lookup(ep.Profile)
	if err != nil {
		errs = append(errs, fmt.Errorf("profile: %w", err))
	}
	ep.Profile = prof.Name
	switch ep.MIME {
	case "":
		ep.MIME = MIMEKeep
		if prof.Target.Rerenders {
			ep.MIME = MIMERerender
		}
	case MIMEKeep, MIMERerender:
	default:
		errs = append(errs, fmt.Errorf("mime: %q is not one of keep, rerender", ep.MIME))
	}
	if ep.MaxConnectionsPerMailbox == 0 {
		ep.MaxConnectionsPerMailbox = prof.MaxConnectionsPerMailbox
	}
	if ep.MaxConnectionsPerMailbox < 0 {
		errs = append(errs, errors.New("max_connections_per_mailbox: must be > 0"))
	}
	if ep.OAuth2 != nil && ep.OAuth2.MaxConnections < 0 {
		errs = append(errs, errors.New("oauth2.max_connections: must be > 0"))
	}
	switch ep.Auth {
	case "", AuthPassword:
		ep.Auth = AuthPassword
		if err := ep.Passwords.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("passwords: %w", err))
		}
	case AuthMaster, AuthMasterLogin:
		if ep.MasterUser == "" {
			errs = append(errs, errors.New("master_user: required for auth "+ep.Auth))
		}
		if err := ep.MasterPassword.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("master_password: %w", err))
		}
		if ep.MasterSeparator == "" {
			ep.MasterSeparator = "*"
		}
	case AuthOAuth2:
		errs = append(errs, ep.OAuth2.validate()...)
	default:
		errs = append(errs, fmt.Errorf("auth: %q is not one of password, master, master-login, oauth2", ep.Auth))
	}
	if ep.OAuth2 != nil && ep.Auth != AuthOAuth2 {
		errs = append(errs, fmt.Errorf("oauth2: set, but auth is %s (want auth: oauth2)", ep.Auth))
	}
	return errs
}

func (o *OAuth2) validate() []error {
	if o == nil {
		return []error{errors.New("oauth2: required for auth oauth2 (tenant_id, client_id and a credential)")}
	}
	var errs []error
	if o.TenantID == "" {
		errs = append(errs, errors.New("oauth2.tenant_id: required (the directory (tenant) ID of the app registration)"))
	}
	if o.ClientID == "" {
		errs = append(errs, errors.New("oauth2.client_id: required (the application (client) ID)"))
	}
	if o.Credential == "" {
		switch {
		case o.ClientSecret != "" && o.ClientCertificate != "":
			errs = append(errs, errors.New("oauth2: client_secret and client_certificate are both set; keep one, or say which with credential"))
		case o.ClientCertificate != "":
			o.Credential = entra.KindCertificate
		default:
			o.Credential = entra.KindSecret
		}
	}
	check := func(field string, r secrets.Ref) {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("oauth2.%s: %w", field, err))
		}
	}
	switch o.Credential {
	case entra.KindSecret:
		check("client_secret", o.ClientSecret)
	case entra.KindCertificate:
		check("client_certificate", o.ClientCertificate)
		if o.ClientCertificatePassword != "" {
			check("client_certificate_password", o.ClientCertificatePassword)
		}
	case entra.KindDefault:
	default:
		errs = append(errs, fmt.Errorf("oauth2.credential: %q is not one of secret, certificate, default", o.Credential))
	}
	if o.AuthorityHost != "" && !strings.HasPrefix(o.AuthorityHost, "https://") {
		errs = append(errs, fmt.Errorf("oauth2.authority_host: %q: want an https:// URL (Entra ID refuses anything else)", o.AuthorityHost))
	}
	if o.AuthorityCAFile != "" && !filepath.IsAbs(o.AuthorityCAFile) {
		errs = append(errs, fmt.Errorf("oauth2.authority_ca_file: %q: want an absolute path", o.AuthorityCAFile))
	}
	return errs
}

// Logins returns the function that resolves each user's credentials on
// this endpoint. For auth oauth2 it builds the endpoint's one Entra
// credential now (reading its secret or certificate), so the worker calls
// it once at start; a token is asked for at the first login.
func (ep Endpoint) Logins() (func(user string) (imapconn.Login, error), error) {
	if ep.Auth != AuthOAuth2 {
		return ep.Login, nil
	}
	o := ep.OAuth2
	c := entra.Config{TenantID: o.TenantID, ClientID: o.ClientID, Kind: o.Credential, Scope: o.Scope, AuthorityHost: o.AuthorityHost}
	var err error
	switch o.Credential {
	case entra.KindSecret:
		if c.ClientSecret, err = o.ClientSecret.ResolveString(); err != nil {
			return nil, fmt.Errorf("oauth2.client_secret: %w", err)
		}
	case entra.KindCertificate:
		if c.Certificate, err = o.ClientCertificate.Resolve(); err != nil {
			return nil, fmt.Errorf("oauth2.client_certificate: %w", err)
		}
		if o.ClientCertificatePassword != "" {
			if c.CertificatePassword, err = o.ClientCertificatePassword.ResolveString(); err != nil {
				return nil, fmt.Errorf("oauth2.client_certificate_password: %w", err)
			}
		}
	}
	if o.AuthorityCAFile != "" {
		pem, err := os.ReadFile(o.AuthorityCAFile)
		if err != nil {
			return nil, fmt.Errorf("oauth2.authority_ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("oauth2.authority_ca_file: %s holds no PEM certificate", o.AuthorityCAFile)
		}
	}
	src, err := entra.New(c)
	if err != nil {
		return nil, fmt.Errorf("oauth2: %w", err)
	}
	return func(user string) (imapconn.Login, error) {
		return imapconn.Login{Username: user, Token: src.Token, Credential: src.ID(), Tenant: ep.OAuth2.TenantID}, nil
	}, nil
}

// IMAPOptions are the connection options of this endpoint; it reads
// tls_ca_file, so the worker calls it once at start.
func (ep Endpoint) IMAPOptions() (imapconn.Options, error) {
	o := imapconn.Options{
		TLSServerName:         ep.TLSServerName,
		TLSInsecureSkipVerify: ep.TLSInsecureSkipVerify,
		AllowPlaintext:        ep.AllowPlaintext,
	}
	if ep.TLSCAFile != "" {
		pool, err := imapconn.LoadCAFile(ep.TLSCAFile)
		if err != nil {
			return o, fmt.Errorf("tls_ca_file: %w", err)
		}
		o.RootCAs = pool
	}
	return o, nil
}

// Warnings lists the endpoint settings that weaken its transport security,
// one sentence each, for the worker to log when it starts.
func (ep Endpoint) Warnings() []string {
	var w []string
	addr, err := imapconn.ParseAddress(ep.URL)
	if err != nil {
		return nil
	}
	if ep.AllowPlaintext && !addr.TLS && !imapconn.IsLoopback(addr.Host) {
		w = append(w, fmt.Sprintf("allow_plaintext: if %s does not offer STARTTLS, passwords and mail cross the network in clear text", addr))
	}
	if ep.TLSInsecureSkipVerify {
		w = append(w, fmt.Sprintf("tls_insecure_skip_verify: the certificate of %s is not verified, so anyone on the path can pose as the server and read the passwords (lab use only)", addr))
	}
	return w
}

// Warnings lists every endpoint's Warnings, each prefixed with
// "endpoints.NAME: ".
func (c *Config) Warnings() []string {
	var w []string
	for _, name := range c.EndpointNames() {
		for _, s := range c.Endpoints[name].Warnings() {
			w = append(w, "endpoints."+name+": "+s)
		}
	}
	return w
}

// Login resolves the credentials for one user of this endpoint. It is called
// inside activities only; the result never leaves the worker process.
func (ep Endpoint) Login(user string) (imapconn.Login, error) {
	switch ep.Auth {
	case AuthMaster, AuthMasterLogin:
		pw, err := ep.MasterPassword.ResolveString()
		if err != nil {
			return imapconn.Login{}, err
		}
		if ep.Auth == AuthMaster {
			return imapconn.Login{Username: ep.MasterUser, Password: pw, AuthzID: user}, nil
		}
		return imapconn.Login{Username: user + ep.MasterSeparator + ep.MasterUser, Password: pw}, nil
	default:
		tab, err := ep.Passwords.Table()
		if err != nil {
			return imapconn.Login{}, err
		}
		pw, ok := tab[user]
		if !ok {
			return imapconn.Login{}, fmt.Errorf("%s: no password for user %q: %w", ep.Passwords, user, secrets.ErrNotFound)
		}
		return imapconn.Login{Username: user, Password: pw}, nil
	}
}

// withFields prefixes each "line N: ..." of a YAML type error with the
// dotted path of the key on that line (limits.max_message_size), so that
// every error names its field.
func withFields(b []byte, err error) error {
	var te *yaml.TypeError
	var root yaml.Node
	if !errors.As(err, &te) || yaml.Unmarshal(b, &root) != nil {
		return err
	}
	paths := map[int]string{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				path := strings.TrimPrefix(prefix+"."+k.Value, ".")
				lines := []int{k.Line}
				if v.Kind != yaml.MappingNode { // a block mapping starts on its first key's line
					lines = append(lines, v.Line)
				}
				for _, line := range lines {
					if _, ok := paths[line]; !ok {
						paths[line] = path
					}
				}
				walk(v, path)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", prefix, i))
			}
		}
	}
	walk(&root, "")
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		var line int
		if _, serr := fmt.Sscanf(msg, "line %d:", &line); serr == nil && paths[line] != "" {
			_, rest, _ := strings.Cut(msg, ": ")
			msg = fmt.Sprintf("%s: %s (line %d)", paths[line], rest, line)
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}

// ByteSize accepts "35MB", "150MiB", "512KB", "1048576".
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler. A bad value is reported as a
// type error (with its line) so the decoder reports it along with the others
// and Parse can name the field.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a size such as 35MB", n.Line)}}
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*b = ByteSize(v)
	return nil
}

// ParseByteSize parses a size with an optional binary unit (KB = KiB, MB = MiB).
func ParseByteSize(raw string) (int64, error) {
	s := strings.TrimSpace(raw)
	mult := int64(1)
	up := strings.ToUpper(s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(up, u.suffix) {
			mult = u.mult
			s = strings.TrimSpace(s[:len(s)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	// NaN, Inf and sizes beyond int64 would convert to arbitrary numbers.
	if err != nil || !(n >= 0) || n*float64(mult) >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit such as 35MB", raw)
	}
	return int64(n * float64(mult)), nil
}
