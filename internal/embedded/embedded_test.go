package embedded

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLookupRemove(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	cfg := filepath.Join(t.TempDir(), "mailshift.yaml")
	if err := os.WriteFile(cfg, []byte("endpoints: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := Lookup("127.0.0.1:7233"); err != nil || ok {
		t.Fatalf("lookup before save: ok=%v err=%v", ok, err)
	}
	s := Session{Kind: "serve", Address: "127.0.0.1:7233", Namespace: "default", Config: cfg, PID: 42}
	if err := Save(s); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Lookup("127.0.0.1:7233")
	if err != nil || !ok || got.Config != cfg || got.Kind != "serve" {
		t.Fatalf("lookup: %+v ok=%v err=%v", got, ok, err)
	}
	if _, ok, _ := Lookup("127.0.0.1:7234"); ok {
		t.Fatal("another address must not match")
	}
	if err := Remove("127.0.0.1:7233", 7); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := Lookup("127.0.0.1:7233"); !ok {
		t.Fatal("a remove by another pid must keep the record")
	}
	if err := Remove("127.0.0.1:7233", 42); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := Lookup("127.0.0.1:7233"); ok {
		t.Fatal("record still there after its owner removed it")
	}
}

func TestLookupIgnoresAGoneConfig(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	cfg := filepath.Join(t.TempDir(), "gone.yaml")
	if err := Save(Session{Kind: "demo", Address: "127.0.0.1:7233", Config: cfg, PID: 1}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := Lookup("127.0.0.1:7233"); err != nil || ok {
		t.Fatalf("a record whose config is gone must not be used: ok=%v err=%v", ok, err)
	}
}
