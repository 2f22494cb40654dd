// Package config reads the worker's configuration: named IMAP endpoints, the
// staging store, the router and transfer limits. Secrets appear only as
// references (env:VAR, file:/path) and are resolved when a connection is made.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/secrets"
)

// Config is the worker configuration file (MAILSHIFT_CONFIG).
type Config struct {
	TaskQueue string              `yaml:"task_queue"`
	Endpoints map[string]Endpoint `yaml:"endpoints"`
	Staging   Staging             `yaml:"staging"`
	Routing   Routing             `yaml:"routing"`
	Limits    Limits              `yaml:"limits"`
}

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
)

// Endpoint is an IMAP server known by name; workflows refer to it by that name.
type Endpoint struct {
	URL             string      `yaml:"url"`
	Auth            string      `yaml:"auth"`
	Passwords       secrets.Ref `yaml:"passwords"`
	MasterUser      string      `yaml:"master_user"`
	MasterPassword  secrets.Ref `yaml:"master_password"`
	MasterSeparator string      `yaml:"master_separator"`
	MaxConnections  int         `yaml:"max_connections"`
	// TLSInsecureSkipVerify is for lab servers with self-signed certificates.
	TLSInsecureSkipVerify bool `yaml:"tls_insecure_skip_verify"`
}

// Staging selects the staging store.
type Staging struct {
	Kind             string      `yaml:"kind"` // local | azblob
	Path             string      `yaml:"path"` // local
	Container        string      `yaml:"container"`
	ConnectionString secrets.Ref `yaml:"connection_string"`
	AccountURL       string      `yaml:"account_url"`
}

// Routing selects how the cutover switches mail delivery.
type Routing struct {
	Kind string `yaml:"kind"` // file | none
	Path string `yaml:"path"` // file: a Postfix-style transport map
	// Nexthop is written for migrated addresses, e.g. "smtp:[cloud.example]:25".
	Nexthop string `yaml:"nexthop"`
}

// Limits bound what one mailbox may skip and what the target accepts.
type Limits struct {
	MaxMessageSize ByteSize `yaml:"max_message_size"`
	// MaxLargeItems defaults to no limit (large items are staged, not lost);
	// MaxBadItems to 0, as Exchange's BadItemLimit does. -1 means no limit.
	MaxLargeItems *int `yaml:"max_large_items"`
	MaxBadItems   *int `yaml:"max_bad_items"`
}

// Defaults applied where the file is silent.
const (
	DefaultTaskQueue      = "mailshift"
	DefaultMaxMessageSize = 35 << 20 // Exchange Online's default receive limit
	MaxMaxMessageSize     = 150 << 20
	DefaultMaxConnections = 8
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
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
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
		if err := ep.validate(); err != nil {
			errs = append(errs, fmt.Errorf("endpoints.%s: %w", name, err))
		}
		c.Endpoints[name] = ep
	}
	switch c.Staging.Kind {
	case "", "local":
		c.Staging.Kind = "local"
		if c.Staging.Path == "" {
			c.Staging.Path = "mailshift-staging"
		}
	case "azblob":
		if c.Staging.Container == "" {
			errs = append(errs, errors.New("staging.container: required for azblob"))
		}
		if c.Staging.ConnectionString == "" && c.Staging.AccountURL == "" {
			errs = append(errs, errors.New("staging: azblob needs connection_string or account_url"))
		}
		if c.Staging.ConnectionString != "" {
			if err := c.Staging.ConnectionString.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("staging.connection_string: %w", err))
			}
		}
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
	default:
		errs = append(errs, fmt.Errorf("routing.kind: %q is not one of none, file", c.Routing.Kind))
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
	return errors.Join(errs...)
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

func (ep *Endpoint) validate() error {
	var errs []error
	if _, err := imapconn.ParseAddress(ep.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if ep.MaxConnections == 0 {
		ep.MaxConnections = DefaultMaxConnections
	}
	if ep.MaxConnections < 0 {
		errs = append(errs, errors.New("max_connections: must be > 0"))
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
	default:
		errs = append(errs, fmt.Errorf("auth: %q is not one of password, master, master-login", ep.Auth))
	}
	return errors.Join(errs...)
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
		b, err := ep.Passwords.Resolve()
		if err != nil {
			return imapconn.Login{}, err
		}
		tab, err := secrets.PasswordTable(b)
		if err != nil {
			return imapconn.Login{}, fmt.Errorf("%s: %w", ep.Passwords, err)
		}
		pw, ok := tab[user]
		if !ok {
			return imapconn.Login{}, fmt.Errorf("%s: no password for user %q: %w", ep.Passwords, user, secrets.ErrNotFound)
		}
		return imapconn.Login{Username: user, Password: pw}, nil
	}
}

// ByteSize accepts "35MB", "150MiB", "512KB", "1048576".
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// ParseByteSize parses a size with an optional binary unit (KB = KiB, MB = MiB).
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
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
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit such as 35MB", s)
	}
	return int64(n * float64(mult)), nil
}
