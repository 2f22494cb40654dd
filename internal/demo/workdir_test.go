package demo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
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
