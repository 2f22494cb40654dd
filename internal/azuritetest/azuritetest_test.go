package azuritetest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartAndClose(t *testing.T) {
	start := time.Now()
	s := Require(t)
	t.Logf("azurite ready on port %d in %s", s.Port, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(s.ConnectionString(), fmt.Sprintf("BlobEndpoint=http://127.0.0.1:%d/%s;", s.Port, Account)) {
		t.Fatalf("connection string %q", s.ConnectionString())
	}
	s.Close()
	s.Close() // idempotent
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second); err == nil {
		c.Close()
		t.Fatal("azurite still listening after Close")
	}
}

type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestMissingAzuriteSkipsOrFails(t *testing.T) {
	t.Setenv("MAILSHIFT_AZURITE_DIR", t.TempDir())
	t.Setenv("CI", "")
	t.Setenv("MAILSHIFT_REQUIRE_AZURITE", "")
	f := &fakeTB{TB: t}
	SkipIfMissing(f)
	if f.skip == "" || f.fatal != "" || !strings.Contains(f.skip, "install-test-deps.sh") {
		t.Fatalf("without CI: skip %q, fatal %q", f.skip, f.fatal)
	}
	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	SkipIfMissing(f)
	if f.fatal == "" || f.skip != "" || !strings.Contains(f.fatal, "install-test-deps.sh") {
		t.Fatalf("with CI: skip %q, fatal %q", f.skip, f.fatal)
	}
	t.Setenv("CI", "")
	t.Setenv("MAILSHIFT_REQUIRE_AZURITE", "1")
	f = &fakeTB{TB: t}
	SkipIfMissing(f)
	if f.fatal == "" {
		t.Fatal("MAILSHIFT_REQUIRE_AZURITE=1 did not make a missing Azurite fatal")
	}
}
