package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// report on an organization the staging store knows nothing of fails,
// naming the organization, instead of printing an empty report.
func TestReportUnknownOrganization(t *testing.T) {
	dir := t.TempDir()
	staging := filepath.Join(dir, "staging")
	if err := os.MkdirAll(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "worker.yaml")
	yaml := `
endpoints:
  source:
    url: imap://127.0.0.1:1143
    passwords: env:PW
  target:
    url: imap://127.0.0.1:2143
    passwords: env:PW
staging:
  kind: local
  path: ` + staging + `
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.csv")
	err := run(context.Background(), []string{"report", "NOPE", "--config", cfg, "--out", out})
	if err == nil {
		t.Fatal("report on an unknown organization succeeded")
	}
	for _, want := range []string{`report NOPE: no organization "NOPE" in local:`, "no mailbox of it has a ledger or a report"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a report file was written: %v", err)
	}
}
