package dovecottest

import (
	"os"
	"strings"
	"testing"
)

// Required reports whether a missing Dovecot must fail tests instead of
// skipping them: when CI is set (and not "false"/"0") or
// MAILSHIFT_REQUIRE_DOVECOT=1.
func Required() bool {
	if os.Getenv("MAILSHIFT_REQUIRE_DOVECOT") == "1" {
		return true
	}
	ci := strings.ToLower(os.Getenv("CI"))
	return ci != "" && ci != "false" && ci != "0"
}

// RequireOrSkip skips t when Dovecot is not installed, or fails it when
// Required.
func RequireOrSkip(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if Required() {
			t.Fatalf("%v (CI or MAILSHIFT_REQUIRE_DOVECOT=1 is set, so this is a failure)", err)
		}
		t.Skipf("skipping Dovecot-backed test: %v", err)
	}
}

// StartT starts an instance for a test (skipping as RequireOrSkip does),
// stops it at cleanup and logs the tail of its log if the test failed.
func StartT(t testing.TB, opts ...Options) *Instance {
	t.Helper()
	RequireOrSkip(t)
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Name == "" {
		o.Name = t.Name()
	}
	o.Name = sanitize(o.Name)
	inst, err := Start(o)
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dovecot %s (%s) log tail:\n%s", o.Name, inst.Addr(), inst.Log(6000))
		}
		if err := inst.Stop(); err != nil {
			t.Error(err)
		}
	})
	return inst
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > 40 {
		out = out[:40]
	}
	if out == "" {
		out = "dovecot"
	}
	return out
}
