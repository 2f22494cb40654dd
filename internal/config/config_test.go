package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/secrets"
)

const valid = `
task_queue: nhs-migration
endpoints:
  source:
    url: imaps://imap.trust.example
    auth: password
    passwords: file:/run/secrets/source.passwd
    max_connections: 4
    tls_insecure_skip_verify: true
  target:
    url: imap://imap.cloud.example:1143
    auth: master
    master_user: migration-admin
    master_password: env:TARGET_MASTER_PASSWORD
staging:
  kind: local
  path: /var/lib/mailshift
routing:
  kind: file
  path: /etc/postfix/transport
  nexthop: smtp:[cloud.example]:25
limits:
  max_message_size: 35MB
  max_large_items: 10
  max_bad_items: -1
`

func TestParseValid(t *testing.T) {
	c, err := config.Parse([]byte(valid), "valid.yaml")
	require.NoError(t, err)
	require.Equal(t, "nhs-migration", c.TaskQueue)
	require.Equal(t, []string{"source", "target"}, c.EndpointNames())

	src := c.Endpoints["source"]
	require.Equal(t, "imaps://imap.trust.example", src.URL)
	require.Equal(t, config.AuthPassword, src.Auth)
	require.Equal(t, secrets.Ref("file:/run/secrets/source.passwd"), src.Passwords)
	require.Equal(t, 4, src.MaxConnections)
	require.True(t, src.TLSInsecureSkipVerify)

	tgt := c.Endpoints["target"]
	require.Equal(t, config.AuthMaster, tgt.Auth)
	require.Equal(t, "migration-admin", tgt.MasterUser)
	require.Equal(t, secrets.Ref("env:TARGET_MASTER_PASSWORD"), tgt.MasterPassword)
	require.Equal(t, config.DefaultMaxConnections, tgt.MaxConnections, "default applied")
	require.Equal(t, "*", tgt.MasterSeparator, "default applied")
	require.False(t, tgt.TLSInsecureSkipVerify)

	require.Equal(t, config.Staging{Kind: "local", Path: "/var/lib/mailshift"}, c.Staging)
	require.Equal(t, config.Routing{Kind: "file", Path: "/etc/postfix/transport", Nexthop: "smtp:[cloud.example]:25"}, c.Routing)
	require.Equal(t, config.ByteSize(35<<20), c.Limits.MaxMessageSize)
	require.NotNil(t, c.Limits.MaxLargeItems)
	require.Equal(t, 10, *c.Limits.MaxLargeItems)
	require.NotNil(t, c.Limits.MaxBadItems)
	require.Equal(t, -1, *c.Limits.MaxBadItems)
}

func TestParseDefaults(t *testing.T) {
	c, err := config.Parse([]byte("endpoints:\n  only:\n    url: imap://127.0.0.1\n    passwords: env:PW\n"), "min.yaml")
	require.NoError(t, err)
	require.Equal(t, config.DefaultTaskQueue, c.TaskQueue)
	ep := c.Endpoints["only"]
	require.Equal(t, config.AuthPassword, ep.Auth)
	require.Equal(t, config.DefaultMaxConnections, ep.MaxConnections)
	require.Equal(t, "local", c.Staging.Kind)
	require.NotEmpty(t, c.Staging.Path)
	require.Equal(t, "none", c.Routing.Kind)
	require.Equal(t, config.ByteSize(config.DefaultMaxMessageSize), c.Limits.MaxMessageSize)
	require.Nil(t, c.Limits.MaxLargeItems, "left to the worker's default (no limit)")
	require.Nil(t, c.Limits.MaxBadItems, "left to the worker's default (0)")
}

// TestParseExchangeProfile: the profile sets what Exchange Online is as a
// target, and an endpoint's own settings win.
func TestParseExchangeProfile(t *testing.T) {
	c, err := config.Parse([]byte(`endpoints:
  plain: {url: imap://127.0.0.1, passwords: env:PW}
  exo:
    url: imaps://outlook.office365.com
    profile: exchange-online
    auth: oauth2
    oauth2: {tenant_id: t, client_id: c, client_secret: env:S, max_connections: 40}
  exo2:
    url: imaps://outlook.office365.com
    profile: Exchange-Online
    mime: keep
    max_connections_per_mailbox: 6
    auth: oauth2
    oauth2: {tenant_id: t, client_id: c, client_secret: env:S}
`), "exo.yaml")
	require.NoError(t, err)
	plain, exo, exo2 := c.Endpoints["plain"], c.Endpoints["exo"], c.Endpoints["exo2"]
	require.Equal(t, config.MIMEKeep, plain.MIME)
	require.Zero(t, plain.MaxConnectionsPerMailbox)
	require.Equal(t, "exchange-online", exo.Profile)
	require.Equal(t, config.MIMERerender, exo.MIME)
	require.Equal(t, 3, exo.MaxConnectionsPerMailbox)
	require.Equal(t, 40, exo.OAuth2.MaxConnections)
	require.Equal(t, "exchange-online", exo2.Profile)
	require.Equal(t, config.MIMEKeep, exo2.MIME)
	require.Equal(t, 6, exo2.MaxConnectionsPerMailbox)
}

// Every error names the field it is about.
func TestParseErrorsNameTheirField(t *testing.T) {
	base := func(endpoint string) string {
		return "endpoints:\n  src:\n" + endpoint
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
		notWant    string
	}{
		{"bad url scheme", base("    url: http://imap.example\n    passwords: env:PW\n"),
			[]string{"endpoints.src: url:", "scheme must be imap or imaps"}, ""},
		{"url with credentials", base("    url: imap://admin:hunter2@imap.example\n    passwords: env:PW\n"),
			[]string{"endpoints.src: url:", "credentials must not be embedded"}, "hunter2"},
		{"unknown auth", base("    url: imap://imap.example\n    auth: kerberos\n    passwords: env:PW\n"),
			[]string{"endpoints.src: auth:", `"kerberos"`}, ""},
		{"inline password table", base("    url: imap://imap.example\n    passwords: alice:hunter2\n"),
			[]string{"endpoints.src: passwords:", "env: or file:"}, "hunter2"},
		{"inline master password", base("    url: imap://imap.example\n    auth: master\n    master_user: admin\n    master_password: hunter2\n"),
			[]string{"endpoints.src: master_password:", "env: or file:"}, "hunter2"},
		{"master without user", base("    url: imap://imap.example\n    auth: master-login\n    master_password: env:M\n"),
			[]string{"endpoints.src: master_user:"}, ""},
		{"missing secret", base("    url: imap://imap.example\n"),
			[]string{"endpoints.src: passwords:"}, ""},
		{"negative connections", base("    url: imap://imap.example\n    passwords: env:PW\n    max_connections: -2\n"),
			[]string{"endpoints.src: max_connections:"}, ""},
		{"unknown top-level key", base("    url: imap://imap.example\n    passwords: env:PW\n") + "stagging:\n  kind: local\n",
			[]string{"stagging"}, ""},
		{"unknown endpoint key", base("    url: imap://imap.example\n    passwords: env:PW\n    pasword: env:X\n"),
			[]string{"endpoints.src.pasword", "line 5"}, ""},
		{"relative tls_ca_file", base("    url: imaps://imap.example\n    passwords: env:PW\n    tls_ca_file: ca.pem\n"),
			[]string{"endpoints.src: tls_ca_file:", "absolute"}, ""},
		{"tls_ca_file and skip verify", base("    url: imaps://imap.example\n    passwords: env:PW\n    tls_ca_file: /etc/ssl/ca.pem\n    tls_insecure_skip_verify: true\n"),
			[]string{"endpoints.src: tls_ca_file:", "tls_insecure_skip_verify"}, ""},
		{"allow_plaintext on imaps", base("    url: imaps://imap.example\n    passwords: env:PW\n    allow_plaintext: true\n"),
			[]string{"endpoints.src: allow_plaintext:", "imap://"}, ""},
		{"tls_server_name", base("    url: imaps://10.0.0.5\n    passwords: env:PW\n    tls_server_name: imap example\n"),
			[]string{"endpoints.src: tls_server_name:"}, ""},
		{"oauth2 without its block", base("    url: imaps://outlook.office365.com\n    auth: oauth2\n"),
			[]string{"endpoints.src: oauth2: required"}, ""},
		{"oauth2 without ids", base("    url: imaps://outlook.office365.com\n    auth: oauth2\n    oauth2:\n      client_secret: env:S\n"),
			[]string{"endpoints.src: oauth2.tenant_id: required", "endpoints.src: oauth2.client_id: required"}, ""},
		{"oauth2 inline secret", base("    url: imaps://outlook.office365.com\n    auth: oauth2\n    oauth2:\n      tenant_id: t\n      client_id: c\n      client_secret: s3cr3t-value\n"),
			[]string{"endpoints.src: oauth2.client_secret:", "env: or file:"}, "s3cr3t-value"},
		{"oauth2 two credentials", base("    url: imaps://outlook.office365.com\n    auth: oauth2\n    oauth2:\n      tenant_id: t\n      client_id: c\n      client_secret: env:S\n      client_certificate: file:/c.pem\n"),
			[]string{"endpoints.src: oauth2: client_secret and client_certificate are both set"}, ""},
		{"oauth2 plain http authority", base("    url: imaps://outlook.office365.com\n    auth: oauth2\n    oauth2:\n      tenant_id: t\n      client_id: c\n      credential: default\n      authority_host: http://login.example\n"),
			[]string{"endpoints.src: oauth2.authority_host:", "https://"}, ""},
		{"oauth2 block with password auth", base("    url: imap://h\n    passwords: env:PW\n    oauth2:\n      tenant_id: t\n"),
			[]string{"endpoints.src: oauth2: set, but auth is password"}, ""},
		{"unknown profile", base("    url: imap://h\n    passwords: env:PW\n    profile: gmail\n"),
			[]string{`endpoints.src: profile: unknown profile "gmail" (known: exchange-online)`}, ""},
		{"unknown mime", base("    url: imap://h\n    passwords: env:PW\n    mime: mapi\n"),
			[]string{`endpoints.src: mime: "mapi" is not one of keep, rerender`}, ""},
		{"negative per-mailbox cap", base("    url: imap://h\n    passwords: env:PW\n    max_connections_per_mailbox: -1\n"),
			[]string{"endpoints.src: max_connections_per_mailbox: must be > 0"}, ""},
		{"no endpoints", "task_queue: x\n", []string{"endpoints:"}, ""},
		{"empty file", "", []string{"endpoints:"}, ""},
		{"staging kind", base("    url: imap://h\n    passwords: env:PW\n") + "staging:\n  kind: s3\n",
			[]string{"staging.kind:", `"s3"`}, ""},
		{"azblob container", base("    url: imap://h\n    passwords: env:PW\n") + "staging:\n  kind: azblob\n  connection_string: DefaultEndpointsProtocol=https;AccountKey=hunter2\n",
			[]string{"staging.container:", "staging.connection_string:"}, "hunter2"},
		{"routing kind", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: dns\n",
			[]string{"routing.kind:", `"dns"`}, ""},
		{"routing file path", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: file\n  nexthop: smtp:[x]\n",
			[]string{"routing.path:"}, ""},
		{"routing file nexthop", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: file\n  path: /etc/postfix/transport\n",
			[]string{"routing.nexthop:"}, ""},
		{"routing kind lists webhook", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: http\n",
			[]string{"routing.kind:", "none, file, webhook"}, ""},
		{"routing webhook url", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n",
			[]string{"routing.url: required"}, ""},
		{"routing webhook scheme", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n  url: ftp://hooks.example/r\n",
			[]string{"routing.url:", "https://"}, ""},
		{"routing webhook plain http", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n  url: http://hooks.example/r\n",
			[]string{"routing.url:", "loopback"}, ""},
		{"routing webhook credentials", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n  url: https://ops:hunter2@hooks.example/r\n",
			[]string{"routing.url:", "token_file"}, "hunter2"},
		{"routing webhook query", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n  url: https://hooks.example/r?code=hunter2\n",
			[]string{"routing.url:", "query"}, "hunter2"},
		{"routing webhook token file", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n  url: https://hooks.example/r\n  token_file: token\n",
			[]string{"routing.token_file:", "absolute"}, ""},
		{"routing webhook timeout", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n  url: https://hooks.example/r\n  timeout: 10m\n",
			[]string{"routing.timeout:", "1s..5m"}, ""},
		{"routing webhook timeout unit", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n  url: https://hooks.example/r\n  timeout: 30\n",
			[]string{"routing.timeout:"}, ""},
		{"routing webhook timeout syntax", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n  url: https://hooks.example/r\n  timeout: soon\n",
			[]string{"routing.timeout:", "line 8"}, ""},
		{"routing webhook batch", base("    url: imap://h\n    passwords: env:PW\n") + "routing:\n  kind: webhook\n  url: https://hooks.example/r\n  batch: -1\n",
			[]string{"routing.batch:", "-1"}, ""},
		{"bad size", base("    url: imap://h\n    passwords: env:PW\n") + "limits:\n  max_message_size: 35XB\n",
			[]string{"limits.max_message_size:", `"35XB"`, "line 6"}, ""},
		{"size not a scalar", base("    url: imap://h\n    passwords: env:PW\n") + "limits:\n  max_message_size: [35]\n",
			[]string{"limits.max_message_size:"}, ""},
		{"size too big", base("    url: imap://h\n    passwords: env:PW\n") + "limits:\n  max_message_size: 1GB\n",
			[]string{"limits.max_message_size:", "150MB"}, ""},
		{"bad item limit", base("    url: imap://h\n    passwords: env:PW\n") + "limits:\n  max_bad_items: -5\n",
			[]string{"limits.max_bad_items:"}, ""},
		{"item limit not a number", base("    url: imap://h\n    passwords: env:PW\n") + "limits:\n  max_large_items: lots\n",
			[]string{"limits.max_large_items:"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml), "bad.yaml")
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), "config bad.yaml: "), err.Error())
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			if tc.notWant != "" {
				require.NotContains(t, err.Error(), tc.notWant, "a secret is never echoed")
			}
		})
	}

	// Several problems are reported at once.
	_, err := config.Parse([]byte(base("    url: ftp://h\n    auth: x\n")+"routing:\n  kind: file\n"), "multi.yaml")
	require.Error(t, err)
	for _, w := range []string{"endpoints.src: url:", "endpoints.src: auth:", "routing.path:", "routing.nexthop:"} {
		require.Contains(t, err.Error(), w)
	}
}

func TestParseRoutingWebhook(t *testing.T) {
	const eps = "endpoints:\n  src:\n    url: imap://h\n    passwords: env:PW\n"
	c, err := config.Parse([]byte(eps+`routing:
  kind: webhook
  url: https://hooks.example/mail/routes
  token_file: /run/secrets/mailshift/routing.token
  timeout: 45s
  batch: 250
`), "webhook.yaml")
	require.NoError(t, err)
	require.Equal(t, config.Routing{Kind: "webhook", URL: "https://hooks.example/mail/routes",
		TokenFile: "/run/secrets/mailshift/routing.token", Timeout: 45 * time.Second, Batch: 250}, c.Routing)

	c, err = config.Parse([]byte(eps+"routing:\n  kind: webhook\n  url: http://127.0.0.1:8080/routes\n"), "defaults.yaml")
	require.NoError(t, err)
	require.Equal(t, config.DefaultRoutingTimeout, c.Routing.Timeout)
	require.Equal(t, config.DefaultRoutingBatch, c.Routing.Batch)
	require.Empty(t, c.Routing.TokenFile, "the token is optional")
	require.Equal(t, 30*time.Second, config.DefaultRoutingTimeout, "the routing package's default")
	require.Equal(t, 1000, config.DefaultRoutingBatch, "the routing package's default")
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"35MB":    35 << 20,
		"35mb":    35 << 20,
		" 35 MB ": 35 << 20,
		"150MiB":  150 << 20,
		"512KB":   512 << 10,
		"512K":    512 << 10,
		"1KiB":    1 << 10,
		"1048576": 1 << 20,
		"100B":    100,
		"1.5GB":   3 << 29,
		"2G":      2 << 30,
		"0":       0,
		"0.5MB":   1 << 19,
	} {
		got, err := config.ParseByteSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "MB", "-1", "-1MB", "35XB", "thirty", "NaN", "Inf", "+Inf", "1e30", "9999999999999GB", "35 M B"} {
		_, err := config.ParseByteSize(in)
		require.Error(t, err, in)
		require.Contains(t, err.Error(), "35MB", "the error shows an example")
		require.Contains(t, err.Error(), `"`+in+`"`, "the error quotes the input as given")
	}
}

func writeSecret(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

func TestEndpointLogin(t *testing.T) {
	table := writeSecret(t, "# per-user passwords\nalice@rxh.nhs.example:pa:ss\nbob@rxh.nhs.example\tb0b\n", 0o600)
	ep := config.Endpoint{URL: "imap://h", Auth: config.AuthPassword, Passwords: secrets.Ref("file:" + table)}

	l, err := ep.Login("alice@rxh.nhs.example")
	require.NoError(t, err)
	require.Equal(t, imapconn.Login{Username: "alice@rxh.nhs.example", Password: "pa:ss"}, l)
	l, err = ep.Login("bob@rxh.nhs.example")
	require.NoError(t, err)
	require.Equal(t, "b0b", l.Password)
	_, err = ep.Login("carol@rxh.nhs.example")
	require.ErrorIs(t, err, secrets.ErrNotFound)
	require.Contains(t, err.Error(), "carol@rxh.nhs.example")
	require.NotContains(t, err.Error(), "pa:ss")

	t.Run("world-readable file refused", func(t *testing.T) {
		open := writeSecret(t, "alice@rxh.nhs.example:pass\n", 0o644)
		ep := config.Endpoint{Auth: config.AuthPassword, Passwords: secrets.Ref("file:" + open)}
		_, err := ep.Login("alice@rxh.nhs.example")
		require.ErrorContains(t, err, "0644")
		require.NotContains(t, err.Error(), "pass\n")
	})

	t.Run("master", func(t *testing.T) {
		master := writeSecret(t, "m4ster\n", 0o400)
		ep := config.Endpoint{Auth: config.AuthMaster, MasterUser: "migration-admin", MasterPassword: secrets.Ref("file:" + master)}
		l, err := ep.Login("alice@rxh.nhs.example")
		require.NoError(t, err)
		require.Equal(t, imapconn.Login{Username: "migration-admin", Password: "m4ster", AuthzID: "alice@rxh.nhs.example"}, l)
	})

	t.Run("master-login", func(t *testing.T) {
		t.Setenv("MAILSHIFT_TEST_MASTER", "m4ster")
		c, err := config.Parse([]byte("endpoints:\n  t:\n    url: imap://h\n    auth: master-login\n    master_user: admin\n    master_password: env:MAILSHIFT_TEST_MASTER\n"), "t.yaml")
		require.NoError(t, err)
		l, err := c.Endpoints["t"].Login("alice@rxh.nhs.example")
		require.NoError(t, err)
		require.Equal(t, imapconn.Login{Username: "alice@rxh.nhs.example*admin", Password: "m4ster"}, l)
	})

	t.Run("unset env", func(t *testing.T) {
		ep := config.Endpoint{Auth: config.AuthMaster, MasterUser: "a", MasterPassword: "env:MAILSHIFT_TEST_SURELY_UNSET"}
		_, err := ep.Login("x")
		require.ErrorContains(t, err, "MAILSHIFT_TEST_SURELY_UNSET")
	})
}

// The example shipped in deploy/ must stay loadable.
func TestDeployExample(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "mailshift.yaml")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		t.Skip("deploy/mailshift.yaml does not exist yet")
	}
	c, err := config.Load(path)
	require.NoError(t, err)
	require.NotEmpty(t, c.Endpoints)
	for _, name := range c.EndpointNames() {
		_, err := imapconn.ParseAddress(c.Endpoints[name].URL)
		require.NoError(t, err, name)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TLS settings: imap:// to a host that is not loopback is valid without
// allow_plaintext (STARTTLS is then required when connecting); the worker
// reads tls_ca_file when it starts and warns about weakening settings.
func TestEndpointTLS(t *testing.T) {
	dir := t.TempDir()
	pki, err := dovecottest.NewPKI(dir, "config")
	require.NoError(t, err)
	c, err := config.Parse([]byte(`
endpoints:
  strict:
    url: imap://10.255.255.1:143
    passwords: env:PW
  private:
    url: imaps://10.255.255.2
    passwords: env:PW
    tls_ca_file: `+pki.CAFile+`
    tls_server_name: imap.internal.example
  legacy:
    url: imap://10.255.255.3
    passwords: env:PW
    allow_plaintext: true
  lab:
    url: imaps://lab.example
    passwords: env:PW
    tls_insecure_skip_verify: true
  local:
    url: imap://127.0.0.1:1143
    passwords: env:PW
    allow_plaintext: true
`), "tls.yaml")
	require.NoError(t, err)
	require.Equal(t, []string{
		"endpoints.lab: tls_insecure_skip_verify: the certificate of imaps://lab.example:993 is not verified, so anyone on the path can pose as the server and read the passwords (lab use only)",
		"endpoints.legacy: allow_plaintext: if imap://10.255.255.3:143 does not offer STARTTLS, passwords and mail cross the network in clear text",
	}, c.Warnings(), "strict, private and local (loopback) need no warning")

	o, err := c.Endpoints["strict"].IMAPOptions()
	require.NoError(t, err)
	require.Equal(t, imapconn.Options{}, o, "system roots, STARTTLS required")
	o, err = c.Endpoints["private"].IMAPOptions()
	require.NoError(t, err)
	require.NotNil(t, o.RootCAs)
	require.Equal(t, "imap.internal.example", o.TLSServerName)
	want, err := imapconn.LoadCAFile(pki.CAFile)
	require.NoError(t, err)
	require.True(t, o.RootCAs.Equal(want))
	o, err = c.Endpoints["legacy"].IMAPOptions()
	require.NoError(t, err)
	require.True(t, o.AllowPlaintext)
	o, err = c.Endpoints["lab"].IMAPOptions()
	require.NoError(t, err)
	require.True(t, o.TLSInsecureSkipVerify)

	// A missing or wrong CA file is found when the worker starts, not when
	// the file is parsed (the starter reads the same file elsewhere).
	ep := c.Endpoints["private"]
	ep.TLSCAFile = filepath.Join(dir, "missing.pem")
	_, err = ep.IMAPOptions()
	require.ErrorContains(t, err, "tls_ca_file: ")
	require.ErrorContains(t, err, "missing.pem")
	ep.TLSCAFile = pki.KeyFile
	_, err = ep.IMAPOptions()
	require.ErrorContains(t, err, "PRIVATE KEY")
}

func TestParsePayloadEncryption(t *testing.T) {
	const eps = "endpoints:\n  src:\n    url: imap://h\n    passwords: env:PW\n"
	c, err := config.Parse([]byte(eps+`payload_encryption:
  active_key: k2
  keys:
    - {id: k1, key: file:/run/secrets/mailshift/k1}
    - {id: k2, key: env:MAILSHIFT_KEY_K2}
`), "enc.yaml")
	require.NoError(t, err)
	require.Equal(t, &config.PayloadEncryption{ActiveKey: "k2", Keys: []config.EncryptionKey{
		{ID: "k1", Key: "file:/run/secrets/mailshift/k1"}, {ID: "k2", Key: "env:MAILSHIFT_KEY_K2"}}}, c.PayloadEncryption)

	c, err = config.Parse([]byte(eps), "none.yaml")
	require.NoError(t, err)
	require.Nil(t, c.PayloadEncryption, "encryption is optional")

	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown active": {"active_key: k3\n  keys:\n    - {id: k1, key: env:K1}\n", `payload_encryption.active_key: "k3" is not the id of a listed key`},
		"no active":      {"keys:\n    - {id: k1, key: env:K1}\n", "payload_encryption.active_key: required"},
		"duplicate id":   {"active_key: k1\n  keys:\n    - {id: k1, key: env:K1}\n    - {id: k1, key: env:K2}\n", `payload_encryption.keys[1].id: "k1" is listed twice`},
		"no keys":        {"active_key: k1\n", "payload_encryption.keys: at least one key is required"},
		"inline key":     {"active_key: k1\n  keys:\n    - {id: k1, key: c2VjcmV0}\n", "payload_encryption.keys[k1].key: secret reference must start with env: or file:"},
		"missing id":     {"active_key: k1\n  keys:\n    - {key: env:K1}\n", "payload_encryption.keys[0].id: required"},
		"bad id":         {"active_key: k 1\n  keys:\n    - {id: k 1, key: env:K1}\n", `payload_encryption.keys[0].id: "k 1": want letters`},
	} {
		_, err := config.Parse([]byte(eps+"payload_encryption:\n  "+tc.yaml), name)
		require.ErrorContains(t, err, tc.want, name)
		require.NotContains(t, err.Error(), "c2VjcmV0", "%s: an inline secret is echoed", name)
	}
}

func TestResolvePayloadKeys(t *testing.T) {
	good := writeSecret(t, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", 0o600) // 32 bytes
	short := writeSecret(t, "MDEyMzQ1Njc4OWFiY2RlZg==", 0o600)                      // 16 bytes
	pe := config.PayloadEncryption{ActiveKey: "k1", Keys: []config.EncryptionKey{{ID: "k1", Key: secrets.Ref("file:" + good)}}}
	keys, err := pe.ResolveKeys()
	require.NoError(t, err)
	require.Equal(t, "0123456789abcdef0123456789abcdef", string(keys["k1"]))

	pe.Keys = append(pe.Keys, config.EncryptionKey{ID: "old", Key: secrets.Ref("file:" + short)})
	_, err = pe.ResolveKeys()
	require.ErrorContains(t, err, "payload_encryption.keys[old].key: file:"+short+" holds 16 bytes, want 32")
}
