package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every command that starts or plans organizations checks the whole
// inventory first: a bad row on the last line stops it before it dials
// Temporal (the address given is one where nothing listens) or stages
// anything.
func TestCommandsCheckTheInventoryBeforeAnything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.csv")
	in := "organization,mailbox,source_user,target_user,wave\n" +
		"RXH,a@rxh.example,a,a@cloud.example,1\n" +
		"GP7,b@gp7.example,Andr\xe9,b@cloud.example,1\n" +
		"GP8,c@gp8.example,c,c@cloud.example,1,extra\n"
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAILSHIFT_CONFIG", "")
	want := []string{
		"line 3: field source_user is not valid UTF-8 (byte 0xE9 at byte 5 of the field); save the inventory as UTF-8",
		"line 4: the row has 6 fields, the header has 5",
	}
	for _, args := range [][]string{
		{"migrate", "--inventory", path, "--address", "127.0.0.1:1", "--wait=false"},
		{"migrate", "--inventory", path, "--address", "127.0.0.1:1", "--org", "RXH"},
		{"campaign", "--inventory", path, "--name", "c1", "--address", "127.0.0.1:1", "--start", "2030-01-07"},
		{"plan", "--inventory", path, "--start", "2030-01-07"},
	} {
		err := run(context.Background(), args)
		if err == nil {
			t.Errorf("%s: no error", args[0])
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error does not say %q:\n%v", args, w, err)
			}
		}
		if strings.Contains(err.Error(), "connect to Temporal") {
			t.Errorf("%v: dialled Temporal before checking the inventory: %v", args, err)
		}
	}
}
