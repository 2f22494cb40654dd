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
// MailboxesPerRun, and checks that it continued as new and that no run's
// history came near Temporal's limits. A run's length depends on
// MailboxesPerRun, not on the organization's size, so 600 mailboxes (6 runs
// at the default 500 starts per run) exercise the same bound a 50,000-mailbox
// organization does; MAILSHIFT_SCALE_MAILBOXES runs it bigger (make scale).
func TestLargeOrganizationContinuesAsNewWithBoundedHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	n := 600
	if v := os.Getenv("MAILSHIFT_SCALE_MAILBOXES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "MAILSHIFT_SCALE_MAILBOXES")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n/2+300)*time.Second)
	defer cancel()
	opts := orgload.Options{Mailboxes: n, Concurrency: 100, WorkDir: t.TempDir()}
	env, err := orgload.Setup(ctx, opts)
	require.NoError(t, err)
	defer env.Close()
	res, err := env.Organization(ctx, opts)
	require.NoError(t, err)
	p := res.Progress
	require.Equal(t, workflows.PhaseCompleted, p.Phase, "reason %s, failures %v", p.Reason, p.Failures)
	require.Equal(t, n, p.MailboxesDone)
	require.EqualValues(t, n, p.Messages, "one message per mailbox, copied once")
	require.Equal(t, workflows.Perfect, p.Consistency)
	wantRuns := res.MailboxWorkflows / workflows.DefaultMailboxesPerRun
	require.GreaterOrEqual(t, res.Runs, wantRuns, "one run per %d mailbox workflows started", workflows.DefaultMailboxesPerRun)
	require.Less(t, res.MaxHistory, 10000, "longest run")
	t.Logf("%d mailboxes: %d Mailbox workflows in %s (%.1f/s), %d runs, longest run %d events",
		n, res.MailboxWorkflows, res.Wall.Round(time.Second), float64(res.MailboxWorkflows)/res.Wall.Seconds(), res.Runs, res.MaxHistory)
}
