package workerapp

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/dovecottest"
)

// Build hands each endpoint its TLS options (the CA file read at start) and
// logs one warning per endpoint setting that weakens transport security.
func TestBuildEndpointTLS(t *testing.T) {
	dir := t.TempDir()
	pki, err := dovecottest.NewPKI(filepath.Join(dir, "pki"), "workerapp")
	if err != nil {
		t.Fatal(err)
	}
	yaml := `
endpoints:
  source:
    url: imap://10.255.255.1
    passwords: env:PW
    allow_plaintext: true
  target:
    url: imaps://10.255.255.2
    passwords: env:PW
    tls_ca_file: ` + pki.CAFile + `
  lab:
    url: imaps://lab.example
    passwords: env:PW
    tls_insecure_skip_verify: true
staging:
  kind: local
  path: ` + filepath.Join(dir, "staging") + `
`
	cfg, err := config.Parse([]byte(yaml), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := Build(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Endpoints["source"].Options.AllowPlaintext || a.Endpoints["target"].Options.RootCAs == nil || !a.Endpoints["lab"].Options.TLSInsecureSkipVerify {
		t.Errorf("endpoint options not passed on: %+v %+v %+v", a.Endpoints["source"].Options, a.Endpoints["target"].Options, a.Endpoints["lab"].Options)
	}
	out := logs.String()
	for _, want := range []string{"endpoints.source: allow_plaintext: if imap://10.255.255.1:143 does not offer STARTTLS", "endpoints.lab: tls_insecure_skip_verify:"} {
		if strings.Count(out, want) != 1 {
			t.Errorf("want one warning %q in:\n%s", want, out)
		}
	}
	if n := strings.Count(out, `level=WARN msg="insecure endpoint setting`); n != 2 {
		t.Errorf("%d endpoint warnings, want 2:\n%s", n, out)
	}
	// No payload_encryption: said once at start.
	if n := strings.Count(out, "payload_encryption is not configured"); n != 1 {
		t.Errorf("%d warnings about payloads in clear, want 1:\n%s", n, out)
	}

	// An unreadable CA file stops the worker, naming the endpoint.
	ep := cfg.Endpoints["target"]
	ep.TLSCAFile = filepath.Join(dir, "missing.pem")
	cfg.Endpoints["target"] = ep
	if _, err := Build(cfg, nil); err == nil || !strings.Contains(err.Error(), "endpoints.target.tls_ca_file: ") {
		t.Fatalf("missing CA file: %v", err)
	}
}

func TestCodecFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(`endpoints:
  source:
    url: imap://127.0.0.1:143
    passwords: env:PW
staging:
  kind: local
  path: `+filepath.Join(dir, "staging")+`
payload_encryption:
  active_key: k1
  keys:
    - {id: k1, key: env:MAILSHIFT_TEST_PAYLOAD_K1}
`), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if _, err := Build(cfg, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "payload_encryption") {
		t.Errorf("warned with encryption configured:\n%s", logs.String())
	}

	var opts client.Options
	if _, err := Codec(cfg, &opts); err == nil || !strings.Contains(err.Error(), "keys[k1]") {
		t.Fatalf("unset key: %v", err)
	}
	t.Setenv("MAILSHIFT_TEST_PAYLOAD_K1", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	c, err := Codec(cfg, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Encrypts() || opts.DataConverter == nil || opts.FailureConverter == nil {
		t.Errorf("client options not encrypting: %+v", opts)
	}

	cfg.PayloadEncryption = nil
	opts = client.Options{}
	if c, err := Codec(cfg, &opts); err != nil || c != nil || opts.DataConverter != nil {
		t.Errorf("without payload_encryption: %v %v %v", c, err, opts.DataConverter)
	}
}

// Build gives an exchange-online endpoint its profile, and makes the
// endpoints of one app registration share one connection limit.
func TestBuildExchangeEndpoints(t *testing.T) {
	t.Setenv("S", "secret")
	t.Setenv("PW", "pw")
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(`
endpoints:
  onprem: {url: imap://127.0.0.1:1143, passwords: env:PW, max_connections: 12}
  exo-a:
    url: imaps://outlook.office365.com
    profile: exchange-online
    auth: oauth2
    max_connections: 20
    oauth2: {tenant_id: t, client_id: app, client_secret: env:S, max_connections: 30}
  exo-b:
    url: imaps://outlook.office365.com
    profile: exchange-online
    auth: oauth2
    max_connections: 20
    oauth2: {tenant_id: t, client_id: app, client_secret: env:S}
  exo-other:
    url: imaps://outlook.office365.com
    auth: oauth2
    max_connections: 5
    oauth2: {tenant_id: t, client_id: other-app, client_secret: env:S}
staging: {kind: local, path: `+filepath.Join(dir, "staging")+`}
`), "exo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	onprem, exoA, exoB, other := a.Endpoints["onprem"], a.Endpoints["exo-a"], a.Endpoints["exo-b"], a.Endpoints["exo-other"]
	if !exoA.Target.Rerenders || !exoA.Target.NoKeywords || !exoA.WellKnown || exoA.SizeCeiling != 45_000_000 || exoA.PerMailbox != 3 {
		t.Fatalf("exo-a: %+v", exoA)
	}
	if onprem.Target.Rerenders || onprem.WellKnown || onprem.SizeCeiling != 0 || onprem.PerMailbox != 0 {
		t.Fatalf("onprem has no profile: %+v", onprem)
	}
	if other.Target.Rerenders || other.WellKnown {
		t.Fatalf("oauth2 alone is no profile: %+v", other)
	}
	if !exoA.SharesSlots(exoB) || exoA.MaxConnections() != 30 {
		t.Fatalf("one app, one limit of 30: shared %v, %d", exoA.SharesSlots(exoB), exoA.MaxConnections())
	}
	if exoA.SharesSlots(other) || other.MaxConnections() != 5 || onprem.MaxConnections() != 12 {
		t.Fatalf("other apps and endpoints keep their own: %d, %d", other.MaxConnections(), onprem.MaxConnections())
	}
}
