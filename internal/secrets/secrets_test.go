package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveEnvAndFile(t *testing.T) {
	t.Setenv("MAILSHIFT_TEST_SECRET", "s3cret\n")
	got, err := Ref("env:MAILSHIFT_TEST_SECRET").ResolveString()
	if err != nil || got != "s3cret" {
		t.Fatalf("env: got %q, %v", got, err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "pw")
	if err := os.WriteFile(p, []byte("alice:a:b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Ref("file:" + p).Resolve()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := PasswordTable(b)
	if err != nil || tab["alice"] != "a:b" {
		t.Fatalf("table %v %v", tab, err)
	}
}

func TestResolveRefusesWorldReadableFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Ref("file:" + p).Resolve()
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("want a mode error, got %v", err)
	}
}

func TestInlineSecretIsRejectedWithoutEchoingIt(t *testing.T) {
	err := Ref("hunter2").Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("want an error that does not echo the value, got %v", err)
	}
	if err := Ref("env:MISSING_VAR_FOR_TEST").Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Ref("env:MISSING_VAR_FOR_TEST").Resolve(); err == nil {
		t.Fatal("want error for unset variable")
	}
}

func TestPasswordTableErrors(t *testing.T) {
	if _, err := PasswordTable([]byte("# c\n\nnocolon\n")); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("want line 3 error, got %v", err)
	}
	if _, err := PasswordTable([]byte("a:1\na:2\n")); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("want duplicate error, got %v", err)
	}
}
