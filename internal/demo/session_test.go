package demo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/secrets"
)

// The configuration the demo writes reads back through config.Load as the
// same configuration (file: references, sizes and all), so `starter
// report` and a separate worker see the demo's staging store.
func TestWriteConfigRoundTrips(t *testing.T) {
	dir := t.TempDir()
	large := 3
	cfg := &config.Config{
		Endpoints: map[string]config.Endpoint{
			"source": {URL: "imap://127.0.0.1:1143", Auth: config.AuthPassword, Passwords: secrets.Ref("file:" + filepath.Join(dir, "source.passwd")), MaxConnections: 16},
			"target": {URL: "imap://127.0.0.1:2143", Auth: config.AuthPassword, Passwords: secrets.Ref("file:" + filepath.Join(dir, "target.passwd")), MaxConnections: 16},
		},
		Staging: config.Staging{Kind: "local", Path: filepath.Join(dir, "staging")},
		Routing: config.Routing{Kind: "file", Path: filepath.Join(dir, "transport"), Nexthop: "smtp:[cloud-target.example]"},
		Limits:  config.Limits{MaxMessageSize: 3 << 20, MaxLargeItems: &large},
	}
	require.NoError(t, cfg.Validate())
	path, err := writeConfig(dir, cfg)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, ConfigFile), path)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "it names the password files")

	got, err := config.Load(path)
	require.NoError(t, err)
	require.Equal(t, cfg, got)
}
