package serve

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/codec"
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

func TestDescribeEncryption(t *testing.T) {
	if got := describeEncryption(nil, ""); !strings.Contains(got, "in clear") {
		t.Errorf("no codec: %q", got)
	}
	c, err := codec.New("k2", map[string][]byte{"k1": make([]byte, 32), "k2": make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	got := describeEncryption(c, "http://127.0.0.1:40000")
	for _, want := range []string{"encrypted with key k2", "keys k1, k2", "http://127.0.0.1:40000"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}
