package testsuite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/htmlreport"
	"github.com/mailshift/mailshift/internal/orgload"
	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/workflows"
)

// TestLargeOrganizationContinuesAsNewWithBoundedHistory runs one
// organization of tiny mailboxes (staged inventory, paged by activity)
// through the real workflows on the embedded server with the default
// MailboxesPerRun. The mailboxes are under DirectMaxBytes, so each is one
// Mailbox workflow (post-switch copy and validation); readiness and the
// routing switch go a page at a time. It checks that every message arrived
// once, that the organization continued as new, and that no run's history
// came near Temporal's limits. By default (go test, make test) it runs
// 2,000 mailboxes: at least four runs, 1.5 to 2.5 minutes on 2 cores.
// MAILSHIFT_SCALE_MAILBOXES sets another size; make scale runs an NHS
// trust's 50,000 (about 32 minutes).
func TestLargeOrganizationContinuesAsNewWithBoundedHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	n := 2000
	if v := os.Getenv("MAILSHIFT_SCALE_MAILBOXES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "MAILSHIFT_SCALE_MAILBOXES")
	}
	// About 25 ms a mailbox on 2 cores; the bound is twice that.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*50*time.Millisecond+5*time.Minute)
	defer cancel()
	opts := orgload.Options{Mailboxes: n, Concurrency: 50, WorkDir: t.TempDir(), DirectMaxBytes: 1 << 20}
	env, err := orgload.Setup(ctx, opts)
	require.NoError(t, err)
	defer env.Close()
	res, err := env.Organization(ctx, opts)
	require.NoError(t, err)
	p := res.Progress
	require.Equal(t, workflows.PhaseCompleted, p.Phase, "reason %s, failures %v", p.Reason, p.Failures)
	require.Equal(t, n, p.MailboxesDone)
	require.EqualValues(t, n, p.SourceMessages, "readiness measured every mailbox")
	require.EqualValues(t, n, p.Messages, "one message per mailbox, copied once")
	require.Equal(t, n, p.RoutingChanged, "every mailbox switched")
	require.Equal(t, workflows.Perfect, p.Consistency)
	require.Equal(t, n, p.ConsistencyCounts[workflows.Perfect])
	require.Equal(t, n, res.MailboxWorkflows, "one Mailbox workflow per direct mailbox")
	require.Greater(t, res.Runs, 1, "continued as new")
	require.GreaterOrEqual(t, res.Runs, n/workflows.DefaultMailboxesPerRun, "one run per %d mailbox workflows started", workflows.DefaultMailboxesPerRun)
	require.Less(t, res.MaxHistory, 10000, "longest run")
	t.Logf("%d mailboxes: %d Mailbox workflows in %s (%.1f/s), %d runs, longest run %d events",
		n, res.MailboxWorkflows, res.Wall.Round(time.Second), float64(res.MailboxWorkflows)/res.Wall.Seconds(), res.Runs, res.MaxHistory)

	// The HTML report of the whole organization stays small and quick:
	// charts in buckets, tables capped, the store read a few mailboxes at
	// a time.
	in := env.Inputs[0]
	mailboxes := make([]string, len(in.Mailboxes))
	for i, mb := range in.Mailboxes {
		mailboxes[i] = mb.Address
	}
	path := filepath.Join(t.TempDir(), in.Code+".html")
	f, err := os.Create(path)
	require.NoError(t, err)
	start := time.Now()
	o, err := htmlreport.WriteOrganization(ctx, f, env.Activities.Staging, in.Code, mailboxes, htmlreport.Options{Progress: &p})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	took := time.Since(start)
	st, err := os.Stat(path)
	require.NoError(t, err)
	t.Logf("HTML report of %d mailboxes: %d bytes in %s", o.Mailboxes, st.Size(), took.Round(time.Millisecond))
	require.Equal(t, n, o.Mailboxes)
	require.Equal(t, n, o.States[report.Completed], "every mailbox validated, as the store shows it")
	require.Less(t, st.Size(), int64(5<<20), "bounded whatever the organization's size")
	page, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(page), `<span class="badge ok">Validated</span>`)
	require.Equal(t, 2, strings.Count(string(page), `<path class="line"`), "mailboxes done and bytes over time")
	require.Contains(t, string(page), "Throughput")
}
