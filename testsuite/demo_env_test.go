package testsuite

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/demo"
)

// startDemo starts a demo environment for one test: the embedded server on
// a free loopback port, no Web UI, a work directory of the test's own, all
// closed when the test ends. The returned context ends after within.
func startDemo(t *testing.T, within time.Duration, opts demo.Options) (context.Context, *demo.Env) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	opts.TemporalAddr, opts.UIAddr = "127.0.0.1:0", "off"
	if opts.WorkDir == "" {
		opts.WorkDir = t.TempDir()
	}
	env, err := demo.Setup(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(env.Close)
	return ctx, env
}
