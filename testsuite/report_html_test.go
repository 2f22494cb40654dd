package testsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/embedded"
	"github.com/mailshift/mailshift/internal/estate"
)

// lockedBuffer is the demo's terminal, read while the demo writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReportHTMLBesideTheDemo runs `starter demo --keep` (in process, on
// a small estate), then the starter binary's `report ORG --format html`
// with no --config and no MAILSHIFT_CONFIG: it finds the demo's worker
// configuration through the session the demo recorded for the address in
// TEMPORAL_ADDRESS, reads the staging store, asks the demo's Temporal for
// the outcome and score, and writes a page with the organization, its
// counts and every section. After the demo stops the record stays (its
// work directory does), and the report still renders from the store,
// saying Temporal did not answer.
func TestReportHTMLBesideTheDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server and builds the starter")
	}
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	bin := buildStarter(t)

	const scale, seed = 0.3, 1
	workdir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{Seed: seed, Scale: scale, TemporalAddr: "127.0.0.1:0", UIAddr: "off",
			WorkDir: workdir, Keep: true, Concurrency: 8, MaxMessageSize: 2 << 20}, &out)
	}()
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("demo ended before --keep: %v\n%s", err, out.String())
		default:
		}
		return strings.Contains(out.String(), "--keep:")
	}, 3*time.Minute, 200*time.Millisecond, "the demo migrates and waits")
	require.Contains(t, out.String(), "go run ./starter report RXH --format html --out "+filepath.Join(workdir, "RXH-report.html")+" --address 127.0.0.1:")

	records, err := filepath.Glob(filepath.Join(state, "mailshift", "embedded-*.json"))
	require.NoError(t, err)
	require.Len(t, records, 1, "the demo recorded its session")
	b, err := os.ReadFile(records[0])
	require.NoError(t, err)
	var sess embedded.Session
	require.NoError(t, json.Unmarshal(b, &sess))
	require.Equal(t, "demo", sess.Kind)
	require.Equal(t, filepath.Join(workdir, demo.ConfigFile), sess.Config)

	spec := estate.DefaultSpec(seed).Scale(scale)
	var rxh estate.Org
	for _, o := range estate.Generate(spec).Orgs {
		if o.Code == "RXH" {
			rxh = o
		}
	}
	require.NotEmpty(t, rxh.Mailboxes)

	report := func(name string) (page, stderr string) {
		t.Helper()
		file := filepath.Join(t.TempDir(), name)
		cmd := exec.CommandContext(ctx, bin, "report", "RXH", "--format", "html", "--out", file)
		cmd.Env = append(withoutEnv("MAILSHIFT_CONFIG", "TEMPORAL_ADDRESS"), "TEMPORAL_ADDRESS="+sess.Address)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		start := time.Now()
		require.NoError(t, cmd.Run(), "starter report: %s", errb.String())
		st, err := os.Stat(file)
		require.NoError(t, err)
		t.Logf("%s: %d bytes in %s", name, st.Size(), time.Since(start).Round(time.Millisecond))
		pb, err := os.ReadFile(file)
		require.NoError(t, err)
		_, err = html.Parse(bytes.NewReader(pb))
		require.NoError(t, err)
		return string(pb), errb.String()
	}
	tile := func(value int, label string) string {
		return fmt.Sprintf(`<div class="v">%d</div><div class="l">%s</div>`, value, label)
	}

	page, stderr := report("live.html")
	require.Contains(t, stderr, "report: using the worker configuration of the starter demo at "+sess.Address+": "+sess.Config)
	require.Contains(t, page, "<h1>RXH — "+html.EscapeString(rxh.Name))
	require.Contains(t, page, `<span class="badge ok">Validated</span>`)
	require.Contains(t, page, tile(len(rxh.Mailboxes), "Mailboxes"))
	require.Contains(t, page, tile(len(rxh.Mailboxes), "Done (validated)"))
	require.Contains(t, page, tile(0, "Failed"))
	for _, section := range []string{`id="progress"`, `id="skipped"`, `id="score"`, `id="failures"`, "Throughput", "Score from the organization&#39;s workflow"} {
		require.Contains(t, page, section)
	}
	require.GreaterOrEqual(t, strings.Count(page, "<svg"), 4, "progress, bytes, throughput, scores")
	require.NotContains(t, page, "No chart")

	cancel()
	require.NoError(t, <-done)
	_, ok, err := embedded.Lookup(sess.Address)
	require.NoError(t, err)
	require.True(t, ok, "the record outlives a demo whose work directory stays")
	ctx = context.Background()
	page, _ = report("after.html")
	require.Contains(t, page, "cannot reach Temporal at "+sess.Address)
	require.Contains(t, page, "the workflow&#39;s own score is unavailable")
	require.Contains(t, page, tile(len(rxh.Mailboxes), "Done (validated)"), "the store alone has the counts")
}

// withoutEnv is the environment without the named variables.
func withoutEnv(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
