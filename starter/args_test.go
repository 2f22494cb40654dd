package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseAnyOrder(t *testing.T) {
	for _, args := range [][]string{
		{"RXH", "--approver", "alice", "--reason", "CAB-9"},
		{"--approver", "alice", "RXH", "--reason", "CAB-9"},
		{"--approver=alice", "--reason", "CAB-9", "RXH"},
	} {
		fs := flag.NewFlagSet("approve", flag.ContinueOnError)
		who := fs.String("approver", "", "")
		why := fs.String("reason", "", "")
		pos, err := parseAnyOrder(fs, args)
		if err != nil || !slices.Equal(pos, []string{"RXH"}) || *who != "alice" || *why != "CAB-9" {
			t.Fatalf("%v: positional %v, approver %q, reason %q, err %v", args, pos, *who, *why, err)
		}
	}
	fs := flag.NewFlagSet("skip-mailbox", flag.ContinueOnError)
	op := fs.String("operator", "", "")
	pos, err := parseAnyOrder(fs, []string{"RXH", "a@b.example", "--operator", "ops"})
	if err != nil || !slices.Equal(pos, []string{"RXH", "a@b.example"}) || *op != "ops" {
		t.Fatalf("two positionals: %v %q %v", pos, *op, err)
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseAnyOrder(fs, []string{"RXH", "--nope"}); err == nil {
		t.Fatal("an unknown flag after the code is still an error")
	}
}

func TestControlsNeedThePersonAndTheReasonBeforeDialling(t *testing.T) {
	for _, c := range []struct{ cmd, who, reason, want string }{
		{"approve", "alice", "", "approve: --reason is required (the change ticket, or why)"},
		{"rollback", "alice", " ", "rollback: --reason is required (the change ticket, or why)"},
		{"set-concurrency", "", "", "set-concurrency: --approver is required (who does it, for the audit trail)"},
		{"skip-mailbox", "", "leaver", "skip-mailbox: --approver is required (who does it, for the audit trail)"},
		{"approve", "alice", "CAB-9", ""},
		{"set-concurrency", "ops", "", ""},
		{"pause", "", "", ""},
	} {
		err := requireDecision(c.cmd, c.who, c.reason)
		if got := errText(err); got != c.want {
			t.Errorf("%s who=%q reason=%q: got %q, want %q", c.cmd, c.who, c.reason, got, c.want)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestMigrateRefusesAnUnknownEndpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailshift.yaml")
	if err := os.WriteFile(cfg, []byte("endpoints:\n  source: {url: \"imap://127.0.0.1:1143\", passwords: \"file:"+dir+"/p\"}\n  target: {url: \"imap://127.0.0.1:2143\", passwords: \"file:"+dir+"/p\"}\nstaging: {kind: local, path: \""+dir+"/s\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := checkEndpoints(cfg, "source", "nosuch")
	if err == nil || !strings.Contains(err.Error(), `endpoint "nosuch" is not in `+cfg+" (its endpoints: source, target)") {
		t.Fatalf("got %v", err)
	}
	if err := checkEndpoints(cfg, "source", "target"); err != nil {
		t.Fatal(err)
	}
}
