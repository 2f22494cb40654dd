package workflows

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdktest "go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// TestMailboxThatFailsWithoutAResultFreesItsSlot: a Mailbox workflow that
// ends without its outcome (terminated by someone, failed) frees its slot,
// and the mailbox is failed with the workflow's own error.
func TestMailboxThatFailsWithoutAResultFreesItsSlot(t *testing.T) {
	var s sdktest.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Organization, workflow.RegisterOptions{Name: OrganizationWorkflowName})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in MailboxInput) (MailboxOutcome, error) {
		return MailboxOutcome{}, temporal.NewApplicationError("terminated by an operator", "Terminated")
	}, workflow.RegisterOptions{Name: MailboxWorkflowName})
	env.RegisterActivity(&activities.Activities{})
	var a *activities.Activities
	env.OnActivity(a.WriteOrganizationReport, mock.Anything, mock.Anything).Return(activities.OrganizationReportResult{}, nil)
	env.OnActivity(a.CheckReadinessBatch, mock.Anything, mock.Anything).Return([]activities.ReadinessBrief{{Ready: true}, {Ready: true}, {Ready: true}}, nil)
	env.OnActivity(a.SwitchRouting, mock.Anything, mock.Anything).Return(activities.RoutingResult{}, nil)
	in := orgInput(3)
	in.Concurrency = 1
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseFailed, p.Phase, "no mailbox left to cut over")
	require.Equal(t, "no mailbox is left to cut over: 3 failed, 0 skipped by an operator", p.Reason)
	require.Equal(t, 3, p.MailboxesFailed)
	require.Zero(t, p.MailboxesRunning)
	require.Equal(t, "Terminated: terminated by an operator", p.Failures[0].Error)
}

// TestContinueAsNewDuringArchiveResumesTheArchive: a run that continues as
// new during its archive pass carries the pass and the mailbox in flight
// over; the next run books that mailbox's report, archives the others and
// goes on without copying the pre-stage again.
func TestContinueAsNewDuringArchiveResumesTheArchive(t *testing.T) {
	in := orgInput(3)
	in.Archive = true
	in.MailboxesPerRun = 4 // pre-stage 3 + the first archive (readiness runs in a batch)
	install := func(env *sdktest.TestWorkflowEnvironment, f *fakeData, archived *[]string) {
		f.install(env)
		var a *activities.Activities
		env.OnActivity(a.ArchiveMailbox, mock.Anything, mock.Anything).Return(
			func(_ context.Context, in activities.ArchiveInput) (activities.ArchiveResult, error) {
				*archived = append(*archived, in.Mailbox.Address)
				return activities.ArchiveResult{Messages: 10, Bytes: 10000}, nil
			})
	}
	env := newEnv(t)
	f1, archived1 := &fakeData{}, []string{}
	install(env, f1, &archived1)
	env.ExecuteWorkflow(Organization, in)
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "want continue-as-new, got %v", env.GetWorkflowError())
	var next OrganizationInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	st := next.State
	require.NotNil(t, st)
	require.Equal(t, PhasePreStage, st.P.Phase)
	require.Equal(t, "archive", st.Step)
	require.Equal(t, PassArchive, st.P.Pass)
	require.Len(t, st.InFlight, 1, "the archive started in run 1 is carried over")
	require.Equal(t, 1, st.Runs)
	require.Equal(t, map[string]int{"prestage": 3}, f1.passes)

	// In run 2 the mailbox started by run 1 reports (as its workflow
	// would, to whichever run is current).
	env2 := newEnv(t)
	f2, archived2 := &fakeData{}, []string{}
	install(env2, f2, &archived2)
	fl := st.InFlight[0]
	env2.RegisterDelayedCallback(func() {
		env2.SignalWorkflow(signalMailboxDone, MailboxOutcome{Index: fl.Index, Seq: fl.Seq, Pass: PassArchive, Address: fl.Address, ArchivedMessages: 10, ArchivedBytes: 10000})
	}, time.Minute)
	next.MailboxesPerRun = 100
	env2.ExecuteWorkflow(Organization, next)
	p := result(t, env2)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.Len(t, archived2, 2, "run 2 archived the two mailboxes run 1 had not started")
	require.NotContains(t, archived2, fl.Address)
	require.Equal(t, map[string]int{"final": 3, "post-switch": 3}, f2.passes, "no second pre-stage")
	require.EqualValues(t, 30, p.ArchivedMessages)
	require.Equal(t, 2, p.Runs)
}

// TestPassBeyondItsLocalBudgetGoesOnAsAnActivity: a small mailbox's pass
// tries locally first; one that stops at its budget is finished by a regular activity,
// and the organization counts the copies of both attempts once.
func TestPassBeyondItsLocalBudgetGoesOnAsAnActivity(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{localStops: true}
	f.install(env)
	env.ExecuteWorkflow(Organization, orgInput(3))
	p := result(t, env)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.EqualValues(t, 30, p.Messages, "4 local + 6 regular per mailbox, tallied by the ledger")
	require.EqualValues(t, 30000, p.Bytes)
	require.Equal(t, 2*3, f.budgeted, "pre-stage and post-switch tried locally")
	require.Equal(t, map[string]int{"prestage": 3, "post-switch": 3}, f.passes, "the cutover came right after the pre-stage: no final pass")
	require.True(t, p.FinalPassSkipped)

	// A negative budget runs every pass as a regular activity.
	env = newEnv(t)
	f = &fakeData{}
	f.install(env)
	in := orgInput(3)
	in.LocalPassBudget = -1
	env.ExecuteWorkflow(Organization, in)
	p = result(t, env)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.Zero(t, f.budgeted)

	// Mailboxes larger than LocalPassMaxBytes (readiness measured 11,000
	// bytes) pre-stage as regular activities straight away; their
	// post-switch pass, which moves only what came since, tries locally.
	env = newEnv(t)
	f = &fakeData{localStops: true}
	f.install(env)
	in = orgInput(3)
	in.LocalPassMaxBytes = 10000
	env.ExecuteWorkflow(Organization, in)
	p = result(t, env)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.Equal(t, 3, f.budgeted, "only the post-switch passes tried locally")
	require.Equal(t, map[string]int{"prestage": 3, "post-switch": 3}, f.passes)
}

// runBefore runs an organization as a run recorded before the changes
// would (GetVersion's default for each) and checks that it completes.
// shippedVersions are the version ids in the order they shipped.
var shippedVersions = []string{versionReportByResult, versionLean, versionLiveProgress, versionTruth, versionOpaqueIDs, versionSealed, versionFreshRecheck}

func runBefore(t *testing.T, in OrganizationInput, changes ...string) (Progress, *fakeData) {
	t.Helper()
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	// A run that predates a change predates every later one too.
	for i, v := range shippedVersions {
		if slices.Contains(changes, v) {
			for _, later := range shippedVersions[i:] {
				env.OnGetVersion(later, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			break
		}
	}
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseCompleted, p.Phase)
	return p, f
}

// TestRunOfTheSignalOnlyVersionStillCompletes: an organization run recorded
// before mailboxes reported through their result (GetVersion default)
// keeps its behaviour on replay: its children report by signal and run no
// local passes.
func TestRunOfTheSignalOnlyVersionStillCompletes(t *testing.T) {
	// A run that predates report-by-result predates the lean lifecycle too.
	p, f := runBefore(t, orgInput(3), versionReportByResult, versionLean)
	require.EqualValues(t, 30, p.Messages)
	require.Equal(t, 3, p.MailboxesDone)
	require.Zero(t, f.budgeted, "no local passes in the old version")
}

// TestDirectMailboxesMoveInOnePass: with DirectMaxBytes, mailboxes that
// readiness measured small skip pre-stage and final: the post-switch pass
// copies and validates them in one Mailbox workflow. Larger ones keep
// every pass.
func TestDirectMailboxesMoveInOnePass(t *testing.T) {
	env := newEnv(t)
	in := orgInput(4)
	big := in.Mailboxes[1].Address
	f := &fakeData{sizes: map[string]int64{big: 50 << 20}}
	f.install(env)
	in.DirectMaxBytes = 1 << 20
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseCompleted, p.Phase, p.Reason)
	require.Equal(t, 4, p.MailboxesDone)
	for _, m := range in.Mailboxes {
		want := []string{"post-switch"}
		if m.Address == big {
			want = []string{"prestage", "post-switch"}
		}
		require.Equal(t, want, f.byMailbox[m.Address], m.Address)
	}
	require.Equal(t, 3+2, p.MailboxRuns, "one workflow per small mailbox, two for the large one (no final pass right after its pre-stage)")
	require.Len(t, f.routed, 4, "every mailbox is switched, direct ones too")
	require.Equal(t, 4, p.ConsistencyCounts[Good])

	env = newEnv(t)
	in.DirectMaxBytes = -1
	env.ExecuteWorkflow(Organization, in)
	require.ErrorContains(t, env.GetWorkflowError(), "direct_max_bytes -1 is negative")
}

// TestPauseCancelsTheReadinessBatch: a pause stops the readiness batch
// under way; resume checks that page again.
func TestPauseCancelsTheReadinessBatch(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{delay: time.Hour}
	f.install(env)
	var during Progress
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPause, nil) }, time.Minute)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryProgress)
		require.NoError(t, err)
		require.NoError(t, v.Get(&during))
		env.SignalWorkflow(SignalResume, nil)
	}, 10*time.Minute)
	env.ExecuteWorkflow(Organization, orgInput(3))
	p := result(t, env)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.True(t, during.Paused)
	require.Equal(t, PhaseReadiness, during.Phase)
	require.Zero(t, during.MailboxesRunning, "the batch stopped at the pause")
	require.Equal(t, 2, f.batches, "checked again after resume")
	require.EqualValues(t, 33, p.SourceMessages, "the canceled batch is not counted")
}

// TestRunBeforeTheLeanVersionStillCompletes: a run recorded before
// versionLean checks readiness and validates in Mailbox workflows of their
// own, as it did, and ignores DirectMaxBytes.
func TestRunBeforeTheLeanVersionStillCompletes(t *testing.T) {
	in := orgInput(3)
	in.DirectMaxBytes = 1 << 30
	p, f := runBefore(t, in, versionLean)
	require.Zero(t, f.batches)
	require.Equal(t, map[string]int{"prestage": 3, "final": 3, "post-switch": 3}, f.passes)
	require.Equal(t, 5*3, p.MailboxRuns, "readiness, pre-stage, final, post-switch, validation")
}

// TestFailedDirectMailboxGoesBackToTheSource: a direct mailbox has nothing
// on the target before its post-switch pass; when that pass fails its mail
// is routed back to the source, where all of it still is.
func TestFailedDirectMailboxGoesBackToTheSource(t *testing.T) {
	env := newEnv(t)
	in := orgInput(3)
	in.DirectMaxBytes = 1 << 20
	bad := in.Mailboxes[2].Address
	f := &fakeData{failOn: map[string]string{bad: string(PassPostSwitch)}}
	f.install(env)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseCompletedWithFailures, p.Phase)
	require.Equal(t, 1, p.MailboxesFailed)
	require.Equal(t, 2, p.MailboxesDone)
	require.Len(t, f.routed, 3, "all three were switched")
	require.Equal(t, []string{bad}, f.reverted, "only the failed direct mailbox goes back")
	require.Equal(t, 1, p.RoutingRestored)
	require.Equal(t, 3, p.RoutingChanged)
	require.Equal(t, PassPostSwitch, p.Failures[0].Pass)
}

// TestSkipAndRetryDuringReadinessBatches: a mailbox retried after its page
// was checked is checked again before readiness ends; one skipped before
// its page is not booked; the pass's counts add up.
func TestSkipAndRetryDuringReadinessBatches(t *testing.T) {
	env := newEnv(t)
	in := orgInput(inventoryPage + 20)
	in.Concurrency = 50
	first, later := in.Mailboxes[0].Address, in.Mailboxes[inventoryPage+5].Address
	f := &fakeData{delay: time.Hour, notReady: map[string]bool{first: true}}
	f.install(env)
	retry, skip := &updateResult{}, &updateResult{}
	var after Progress
	env.RegisterDelayedCallback(func() {
		// Page 1 is booked (first failed), page 2 is being checked.
		env.UpdateWorkflow(UpdateRetryMailbox, "retry", retry, MailboxControl{Address: first, Operator: "ops"})
		env.UpdateWorkflow(UpdateSkipMailbox, "skip", skip, MailboxControl{Address: later, Operator: "ops", Reason: "leaver"})
	}, 90*time.Minute)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryProgress)
		require.NoError(t, err)
		require.NoError(t, v.Get(&after))
		rb := &updateResult{}
		env.UpdateWorkflow(UpdateRollback, "rb", rb, Approval{Approver: "ops", Reason: "test over"})
	}, 10*time.Hour)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.NoError(t, retry.err)
	require.NoError(t, skip.err)
	require.Equal(t, PhaseRolledBack, p.Phase)
	require.Equal(t, PhaseReadinessBlocked, after.Phase, "the retried mailbox is still not ready")
	require.Equal(t, 3, f.batches, "two pages, then the retried mailbox")
	require.Equal(t, 1, after.MailboxesFailed)
	require.Equal(t, 1, after.MailboxesSkipped)
	require.Equal(t, after.PassTotal, after.PassDone, "every check booked")
	require.Equal(t, inventoryPage+20, after.PassTotal, "520 mailboxes, one skipped, one checked twice")
	require.Zero(t, after.MailboxRuns, "readiness starts no Mailbox workflow")
}

// TestThrottlingIsCountedNotFailed: a pre-stage that the target throttled
// (and that waited as asked) is a pass like any other; the organization
// counts how often and how long.
func TestThrottlingIsCountedNotFailed(t *testing.T) {
	env := newEnv(t)
	in := orgInput(3)
	f := &fakeData{throttled: map[string]time.Duration{in.Mailboxes[1].Address: 3 * time.Second, in.Mailboxes[2].Address: time.Second}}
	f.install(env)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseCompleted, p.Phase, p.Reason)
	require.Equal(t, 3, p.MailboxesDone)
	require.Empty(t, p.Failures)
	require.Equal(t, 4, p.Throttled)
	require.Equal(t, 4*time.Second, p.ThrottledFor)
}
