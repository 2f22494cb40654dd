package demo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/config"
)

// A work directory that does not exist yet is created; one a previous demo
// run left has its staging store and transport map cleared (the mail
// servers start empty each run, so its ledgers would be false) and says
// so; the password files and anything else are left alone.
func TestPrepareWorkDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "workdir")
	notice, err := prepareWorkDir(dir)
	require.NoError(t, err)
	require.Empty(t, notice)
	require.DirExists(t, dir)

	ledger := filepath.Join(dir, "staging", "RXH", "alice", "ledger.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(ledger), 0o700))
	require.NoError(t, os.WriteFile(ledger, []byte("{}"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "transport"), []byte("alice@rxh.example smtp:[x]\\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600))
	notice, err = prepareWorkDir(dir)
	require.NoError(t, err)
	require.Contains(t, notice, "held a previous demo run (staging, transport): cleared")
	require.NoDirExists(t, filepath.Join(dir, "staging"))
	require.NoFileExists(t, filepath.Join(dir, "transport"))
	require.FileExists(t, filepath.Join(dir, "notes.txt"))
}

// The demo's payload key is made once, owner-only, 32 bytes in base64, and
// kept: beside a database file when there is one, else in the work directory.
func TestEnsureKey(t *testing.T) {
	dir := t.TempDir()
	require.Equal(t, filepath.Join(dir, KeyFile), keyPath("", dir))
	require.Equal(t, filepath.Join(dir, KeyFile), keyPath(":memory:", dir))
	require.Equal(t, "/var/db/demo.db."+KeyFile, keyPath("/var/db/demo.db", dir))

	path := filepath.Join(dir, "db", "demo.db."+KeyFile)
	ref, err := ensureKey(path)
	require.NoError(t, err)
	require.Equal(t, "file:"+path, string(ref))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	first, err := os.ReadFile(path)
	require.NoError(t, err)
	pe := config.PayloadEncryption{ActiveKey: KeyID, Keys: []config.EncryptionKey{{ID: KeyID, Key: ref}}}
	keys, err := pe.ResolveKeys()
	require.NoError(t, err)
	require.Len(t, keys[KeyID], 32)

	_, err = ensureKey(path)
	require.NoError(t, err)
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, first, again, "an existing key is kept")
}
