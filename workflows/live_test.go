package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// rollBackAt runs an organization of n mailboxes that an operator rolls
// back while it waits for its cutover, counting its upserts and whether
// any of them set MigrationPaused; before lists version ids forced to
// their default (a run that predates them).
func rollBackAt(t *testing.T, n int, before ...string) (err error, upserts int, pausedSA bool, p Progress) {
	t.Helper()
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	for _, c := range before {
		env.OnGetVersion(c, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	}
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		upserts++
		if _, ok := args.Get(0).(temporal.SearchAttributes).GetBool(SAMigrationPaused); ok {
			pausedSA = true
		}
	}).Return(nil)
	in := orgInput(n)
	in.Approval = ApprovalManual
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateRollback, "ok", &updateResult{}, Approval{Approver: "erin", Reason: "postponed"})
	}, 24*time.Hour)
	env.ExecuteWorkflow(Organization, in)
	require.True(t, env.IsWorkflowCompleted())
	err = env.GetWorkflowError()
	if err == nil {
		require.NoError(t, env.GetWorkflowResult(&p))
	}
	return err, upserts, pausedSA, p
}

// A live-progress organization that rolls back fails its workflow with a
// non-retryable error of its own type that carries the final Progress.
func TestRolledBackOrganizationFailsWithItsProgress(t *testing.T) {
	err, _, pausedSA, _ := rollBackAt(t, 3)
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "%v", err)
	require.Equal(t, activities.ErrTypeOrganizationRolledBack, app.Type())
	require.True(t, app.NonRetryable())
	p, ok := OrganizationEnded(err)
	require.True(t, ok)
	require.Equal(t, PhaseRolledBack, p.Phase)
	require.Equal(t, "rolled back by erin: postponed", p.Reason)
	require.Equal(t, 3, p.MailboxesCopied, "pre-staged before the rollback")
	require.True(t, pausedSA, "MigrationPaused is upserted")
	_, ok = OrganizationEnded(temporal.NewNonRetryableApplicationError("bad input", activities.ErrTypeConfig, nil))
	require.False(t, ok, "another failure is no organization's end")
}

// A run from before live-progress keeps its ending: completed, with the
// Progress as its result, no MigrationPaused, no MailboxesCopied.
func TestRollbackBeforeLiveProgressCompletesWithItsProgress(t *testing.T) {
	err, _, pausedSA, p := rollBackAt(t, 3, versionLiveProgress)
	require.NoError(t, err)
	require.Equal(t, PhaseRolledBack, p.Phase)
	require.False(t, pausedSA)
	require.Zero(t, p.MailboxesCopied)
}

// Progress upserts are bounded: mailboxes that all finish inside 10 s of
// workflow time add one upsert to what the phase changes cost, however
// many there are.
func TestProgressUpsertsAreBounded(t *testing.T) {
	_, before, _, _ := rollBackAt(t, 40, versionLiveProgress)
	_, live, _, _ := rollBackAt(t, 40)
	require.LessOrEqual(t, live, before+3, "old %d upserts, live %d", before, live)
}

// The details say what an organization waits for.
func TestDetailsSayWhatTheOrganizationWaitsFor(t *testing.T) {
	o := &organization{in: orgInput(2), live: true}
	o.p = Progress{Organization: "RXH", Phase: PhaseAwaitingCutover, MailboxesTotal: 2, MailboxesCopied: 2, Messages: 20, Bytes: 2e6}
	require.Contains(t, o.details(), "**Waiting for approval**: `approve-cutover`")
	require.Contains(t, o.details(), "| 2 | 2 | 0 | 0 | 0 | 20 | 2.0 |")
	o.p.Paused = true
	require.Contains(t, o.details(), "(paused)")
	require.Contains(t, o.details(), "**Paused**")
	o.p.Phase = PhasePreStage
	require.Equal(t, 2, o.listedNow().done, "copied mailboxes while running")
	o.p.Phase = PhaseRolledBack
	require.Zero(t, o.listedNow().done, "validated ones once ended")
}
