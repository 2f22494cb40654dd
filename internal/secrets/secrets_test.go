package secrets

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
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

func TestTableIsCachedUntilTheFileChanges(t *testing.T) {
	p := filepath.Join(t.TempDir(), "passwords")
	if err := os.WriteFile(p, []byte("alice:one\nbob:two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := Ref("file:" + p)
	first, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := r.Table()
	if err != nil || tab["alice"] != "one" {
		t.Fatalf("first read: %v %v", tab, err)
	}
	again, _ := r.Table()
	if reflect.ValueOf(again).Pointer() != reflect.ValueOf(tab).Pointer() {
		t.Fatal("second read parsed the unchanged file again")
	}
	// A rotated password (same size even) is seen once the file changes.
	if err := os.WriteFile(p, []byte("alice:ONE\nbob:two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Even with the old modification time put back (cp -p, rsync -t):
	// the inode's change time tells, where the platform gives it.
	if runtime.GOOS == "linux" {
		if err := os.Chtimes(p, first.ModTime(), first.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	if tab, err = r.Table(); err != nil || tab["alice"] != "ONE" {
		t.Fatalf("after rotation: %v %v", tab, err)
	}
	// A file others can read is refused, cached or not.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Table(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable: %v", err)
	}
	t.Setenv("MAILSHIFT_TEST_TABLE", "carol:x")
	if tab, err = Ref("env:MAILSHIFT_TEST_TABLE").Table(); err != nil || tab["carol"] != "x" {
		t.Fatalf("env: %v %v", tab, err)
	}
	t.Setenv("MAILSHIFT_TEST_TABLE", "carol:y")
	if tab, _ = Ref("env:MAILSHIFT_TEST_TABLE").Table(); tab["carol"] != "y" {
		t.Fatalf("env changed: %v", tab)
	}
}
