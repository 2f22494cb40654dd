package testsuite

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/orgload"
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
// trust's 50,000 (about 21 minutes).
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
}
