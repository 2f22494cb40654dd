package azuritetest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/staging"
)

// TestRestartKeepsDataAndPort: Restart SIGKILLs Azurite and brings it back
// on the same port and data directory, and a blob committed and saved
// before is read back, verified, from the restarted server.
func TestRestartKeepsDataAndPort(t *testing.T) {
	s := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	open := func() *staging.Azure {
		st, err := staging.NewAzure(staging.AzureOptions{ConnectionString: s.ConnectionString(), Container: "restart", CreateContainer: true})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	body := bytes.Repeat([]byte("kept across a restart\n"), 1000)
	if _, err := open().Put(ctx, "a/b.eml", bytes.NewReader(body), nil); err != nil {
		t.Fatal(err)
	}
	// Azurite keeps its metadata (containers, blobs, blocks) in a LokiJS
	// database that it saves every 5 s: a SIGKILL loses what it acknowledged
	// since. Wait until the blob is in the saved file.
	db := filepath.Join(s.dir, "__azurite_db_blob__.json")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(db)
		if bytes.Contains(b, []byte(`"a/b.eml"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the blob is not in %s 30 s after its commit", db)
		}
	}
	port := s.Port
	start := time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Azurite answering again %s after its SIGKILL", time.Since(start).Round(time.Millisecond))
	if s.Port != port || !strings.Contains(s.ConnectionString(), s.BlobURL) {
		t.Fatalf("port %d after Restart, want %d", s.Port, port)
	}
	rc, _, err := open().Get(ctx, "a/b.eml")
	if err != nil {
		t.Fatalf("the blob committed before the restart: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(body))
	}
}
