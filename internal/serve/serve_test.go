package serve

import (
	"path/filepath"
	"testing"
)

func TestDefaultDBPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/state")
	if p, err := DefaultDBPath(); err != nil || p != filepath.Join("/state", "mailshift", DBFileName) {
		t.Fatalf("DefaultDBPath() = %q, %v", p, err)
	}
}

func TestOrphanedBy(t *testing.T) {
	self := workerIdentity(200)
	for _, c := range []struct {
		last string
		want bool
	}{
		{workerIdentity(100), true}, // a previous serve process: dead, it held the lock
		{self, false},               // this one
		{"4242@host@", false},       // a `go run ./worker` beside serve may be alive
		{"", false},                 // never started
		{"mailshift-serve", false},  // not the prefix
	} {
		if got := orphanedBy(c.last, self); got != c.want {
			t.Errorf("orphanedBy(%q) = %v, want %v", c.last, got, c.want)
		}
	}
}

func TestRunRefusesAnInMemoryDatabase(t *testing.T) {
	err := Run(t.Context(), Options{ConfigPath: "x.yaml", DBPath: ":memory:"}, nil)
	if err == nil {
		t.Fatal("serve must refuse a database that does not survive a restart")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/mailshift/m.yaml": "/etc/mailshift/m.yaml",
		"/home/a b/m.yaml":      "'/home/a b/m.yaml'",
		"/tmp/it's.yaml":        `'/tmp/it'\''s.yaml'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
