package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/activities"
)

type updateResult struct {
	accepted bool
	err      error
	value    Approval
	raw      any
}

func (u *updateResult) Accept()                 { u.accepted = true }
func (u *updateResult) Reject(err error)        { u.err = err }
func (u *updateResult) Complete(v any, e error) { u.err = e; u.value, _ = v.(Approval); u.raw = v }

func query(t *testing.T, env *sdktest.TestWorkflowEnvironment) Progress {
	t.Helper()
	v, err := env.QueryWorkflow(QueryProgress)
	require.NoError(t, err)
	var p Progress
	require.NoError(t, v.Get(&p))
	return p
}

func TestManualApprovalWaitsAndValidatorRejectsWrongPhase(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	in := orgInput(3)
	in.Approval = ApprovalManual
	early, empty, ok, twice := &updateResult{}, &updateResult{}, &updateResult{}, &updateResult{}
	var waiting Progress
	transfersBeforeApproval := -1
	// Approval during readiness is refused by the validator.
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateApproveCutover, "early", early, Approval{Approver: "alice"})
	}, 0)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryProgress)
		require.NoError(t, err)
		require.NoError(t, v.Get(&waiting))
		transfersBeforeApproval = f.transfers
		env.UpdateWorkflow(UpdateApproveCutover, "empty", empty, Approval{Approver: "  "})
		env.UpdateWorkflow(UpdateApproveCutover, "ok", ok, Approval{Approver: "bob", Reason: "CAB-1234"})
		env.UpdateWorkflow(UpdateApproveCutover, "twice", twice, Approval{Approver: "carol"})
	}, 48*time.Hour)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)

	require.ErrorContains(t, early.err, "cutover can only be approved in AwaitingCutover")
	require.Equal(t, PhaseAwaitingCutover, waiting.Phase, "the organization waits for approval")
	require.Equal(t, 3, transfersBeforeApproval, "only pre-stage ran before approval")
	require.Equal(t, 9, f.transfers, "approved two days after the pre-stage: the final pass runs")
	require.False(t, p.FinalPassSkipped)
	require.ErrorContains(t, empty.err, "approver is required")
	require.NoError(t, ok.err)
	require.Equal(t, "bob", ok.value.Approver)
	require.ErrorContains(t, twice.err, "already approved by bob")
	require.Equal(t, PhaseCompleted, p.Phase)
	require.Equal(t, "bob", p.Approval.Approver)
	require.Equal(t, "CAB-1234", p.Approval.Reason)
	require.False(t, p.Approval.At.IsZero())
}

func TestPauseStopsRunningMailboxesAndResumeContinues(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{delay: 10 * time.Minute}
	f.install(env)
	in := orgInput(5)
	in.Concurrency = 2
	var paused Progress
	zero, four := &updateResult{}, &updateResult{}
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalPause, nil)
	}, 5*time.Minute)
	env.RegisterDelayedCallback(func() {
		paused = query(t, env)
		env.UpdateWorkflow(UpdateSetConcurrency, "zero", zero, ConcurrencyRequest{Concurrency: 0})
		env.UpdateWorkflow(UpdateSetConcurrency, "four", four, ConcurrencyRequest{Concurrency: 4, Operator: "ops"})
		env.SignalWorkflow(SignalResume, nil)
	}, 6*time.Hour)
	start := env.Now()
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.True(t, paused.Paused)
	require.Equal(t, PhaseReadiness, paused.Phase)
	require.Zero(t, paused.PassDone, "the two running checks were stopped, not finished")
	require.Zero(t, paused.MailboxesRunning, "nothing runs while paused")
	require.ErrorContains(t, zero.err, "concurrency 0 is outside 1..1000")
	require.NoError(t, four.err)
	require.EqualValues(t, 2, four.raw, "set-concurrency answers the previous value")
	require.Equal(t, 4, p.Concurrency)
	require.False(t, p.Paused)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.Equal(t, 5, p.MailboxesDone, "the stopped mailboxes ran again after resume")
	require.GreaterOrEqual(t, p.FinishedAt.Sub(start), 6*time.Hour, "nothing finished while paused")
}

func TestProgressQueryDuringRun(t *testing.T) {
	env := newEnv(t)
	var a *activities.Activities
	var seen []Progress
	env.OnActivity(a.CheckReadinessBatch, mock.Anything, mock.Anything).Return([]activities.ReadinessBrief{{Ready: true, Messages: 5, Bytes: 500}, {Ready: true, Messages: 5, Bytes: 500}}, nil)
	env.OnActivity(a.TransferMailbox, mock.Anything, mock.Anything).After(time.Minute).Return(activities.TransferResult{Copied: 5, Bytes: 500}, nil)
	env.OnActivity(a.ValidateMailbox, mock.Anything, mock.Anything).Return(activities.ValidateResult{OK: true}, nil)
	env.OnActivity(a.SwitchRouting, mock.Anything, mock.Anything).Return(activities.RoutingResult{}, nil)
	for _, at := range []time.Duration{30 * time.Second, 90 * time.Second} {
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(QueryProgress)
			require.NoError(t, err)
			var p Progress
			require.NoError(t, v.Get(&p))
			seen = append(seen, p)
		}, at)
	}
	in := orgInput(2)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Len(t, seen, 2)
	require.Equal(t, PhasePreStage, seen[0].Phase)
	require.Equal(t, 2, seen[0].MailboxesRunning)
	require.EqualValues(t, 10, seen[0].SourceMessages)
	require.Equal(t, PhaseCutover, seen[1].Phase)
	require.EqualValues(t, 10, seen[1].Messages)
	require.True(t, p.Validated())
}

// TestMailboxWorkflowIDNamesNoOne: the id is the target mailbox's key,
// the same whichever organization asks and whatever the case of the user.
func TestMailboxWorkflowIDNamesNoOne(t *testing.T) {
	id := MailboxWorkflowID("exo", "Alice.Smith@RXH.example")
	require.Equal(t, id, MailboxWorkflowID("exo", "alice.smith@rxh.example"))
	require.NotEqual(t, id, MailboxWorkflowID("exo2", "alice.smith@rxh.example"))
	require.Equal(t, "mailbox/"+activities.MailboxKey("exo", "alice.smith@rxh.example"), id)
	require.NotContains(t, strings.ToLower(id), "alice")
	require.NotContains(t, id, "rxh")
}

func TestPoorValidationRollsBackTheRoutingSwitch(t *testing.T) {
	env := newEnv(t)
	in := orgInput(4)
	f := &fakeData{missing: map[string]bool{in.Mailboxes[2].Address: true}}
	f.install(env)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseRolledBack, p.Phase)
	require.Equal(t, Poor, p.Consistency)
	require.Equal(t, 1, p.RulesFired[RuleMissing])
	require.True(t, p.RoutingReverted)
	require.ElementsMatch(t, f.routed, f.reverted, "every switched address is switched back")
	require.Len(t, f.reverted, 4)
	require.Equal(t, "mailshift", p.RollbackRequested.Approver)
	require.Contains(t, p.Reason, "validation scored Poor: missing in 1 mailboxes")
	require.Len(t, p.Findings, 4, "the Poor mailbox and the three Good ones are listed")
}

func TestInvestigateWaitsForSkippedItemsApproval(t *testing.T) {
	env := newEnv(t)
	in := orgInput(3)
	f := &fakeData{rejected: map[string]bool{in.Mailboxes[0].Address: true}}
	f.install(env)
	early, ok, skipLate, retryLate, noWho := &updateResult{}, &updateResult{}, &updateResult{}, &updateResult{}, &updateResult{}
	var waiting Progress
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateApproveSkippedItems, "early", early, Approval{Approver: "dana"})
	}, 0)
	env.RegisterDelayedCallback(func() {
		waiting = query(t, env)
		env.UpdateWorkflow(UpdateSkipMailbox, "skip-late", skipLate, MailboxControl{Address: in.Mailboxes[0].Address, Operator: "ops"})
		env.UpdateWorkflow(UpdateRetryMailbox, "retry-late", retryLate, MailboxControl{Address: in.Mailboxes[0].Address, Operator: "ops"})
		env.UpdateWorkflow(UpdateApproveSkippedItems, "no-who", noWho, Approval{Reason: "x"})
		env.UpdateWorkflow(UpdateApproveSkippedItems, "ok", ok, Approval{Approver: "dana", Reason: "the rejected item is a known virus"})
	}, 12*time.Hour)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.ErrorContains(t, early.err, "skipped items are approved in AwaitingSkippedApproval")
	require.ErrorContains(t, skipLate.err, "past its routing switch")
	require.ErrorContains(t, retryLate.err, "past its routing switch")
	require.ErrorContains(t, noWho.err, "approver is required")
	require.Equal(t, PhaseAwaitingSkippedApproval, waiting.Phase)
	require.Equal(t, Investigate, waiting.Consistency)
	require.Contains(t, waiting.Reason, "bad-items in 1 mailboxes")
	require.NoError(t, ok.err)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.Equal(t, "dana", p.SkippedItemsApproval.Approver)
	require.Equal(t, map[Consistency]int{Good: 2, Investigate: 1}, p.ConsistencyCounts)
	require.Empty(t, f.reverted)
}

func TestOperatorRollbackBeforeCutoverKeepsRoutingUntouched(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	in := orgInput(3)
	in.Approval = ApprovalManual
	noWho, ok := &updateResult{}, &updateResult{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateRollback, "no-who", noWho, Approval{Reason: "x"})
		env.UpdateWorkflow(UpdateRollback, "ok", ok, Approval{Approver: "erin", Reason: "trust postponed"})
	}, 24*time.Hour)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.ErrorContains(t, noWho.err, "approver is required")
	require.NoError(t, ok.err)
	require.Equal(t, PhaseRolledBack, p.Phase)
	require.Equal(t, "rolled back by erin: trust postponed", p.Reason)
	require.Empty(t, f.routed)
	require.Empty(t, f.reverted)
	require.False(t, p.RoutingReverted)
	require.Equal(t, 3, f.transfers, "only the pre-stage ran")
}

func TestSkipAndRetryMailbox(t *testing.T) {
	env := newEnv(t)
	in := orgInput(4)
	in.Approval = ApprovalManual
	f := &fakeData{authFail: map[string]bool{}}
	f.install(env)
	// user01 fails readiness at first; it is fixed and retried while the
	// organization waits for approval; user02 is skipped by an operator.
	f.authFail[in.Mailboxes[1].Address] = true
	skip, retry, retryActive, unknown, approve := &updateResult{}, &updateResult{}, &updateResult{}, &updateResult{}, &updateResult{}
	in.ReadinessThreshold = 0.5
	noOperator, badAddress := &updateResult{}, &updateResult{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateSkipMailbox, "no-operator", noOperator, MailboxControl{Address: in.Mailboxes[2].Address})
		env.UpdateWorkflow(UpdateSkipMailbox, "bad-address", badAddress, MailboxControl{Address: "not-an-address", Operator: "ops"})
		delete(f.authFail, in.Mailboxes[1].Address)
		env.UpdateWorkflow(UpdateSkipMailbox, "skip", skip, MailboxControl{Address: in.Mailboxes[2].Address, Operator: "ops", Reason: "leaver"})
		env.UpdateWorkflow(UpdateRetryMailbox, "retry", retry, MailboxControl{Address: strings.ToUpper(in.Mailboxes[1].Address), Operator: "ops"})
		env.UpdateWorkflow(UpdateRetryMailbox, "retry-active", retryActive, MailboxControl{Address: in.Mailboxes[0].Address, Operator: "ops"})
		env.UpdateWorkflow(UpdateSkipMailbox, "unknown", unknown, MailboxControl{Address: "nobody@rxh.example", Operator: "ops"})
	}, 24*time.Hour)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateApproveCutover, "approve", approve, Approval{Approver: "bob", Reason: "CAB-9"})
	}, 48*time.Hour)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.ErrorContains(t, noOperator.err, "operator is required")
	require.ErrorContains(t, badAddress.err, `address "not-an-address" is not an e-mail address`)
	require.NoError(t, skip.err)
	require.Equal(t, MailboxControlResult{Address: in.Mailboxes[2].Address, Index: 2, Was: "active", Now: "skipped"}, skip.raw)
	require.NoError(t, retry.err)
	require.Equal(t, "failed", retry.raw.(MailboxControlResult).Was)
	require.ErrorContains(t, retryActive.err, "only failed or skipped mailboxes can be retried")
	require.ErrorContains(t, unknown.err, "nobody@rxh.example is not in organization RXH")
	require.NoError(t, approve.err)
	require.Equal(t, PhaseCompleted, p.Phase, "no mailbox failed in the end")
	require.Equal(t, 1, p.MailboxesSkipped)
	require.Equal(t, 3, p.MailboxesDone)
	require.Zero(t, p.MailboxesFailed)
	require.True(t, p.Validated())
	require.NotContains(t, f.routed, in.Mailboxes[2].Address)
	require.Contains(t, f.routed, in.Mailboxes[1].Address, "the retried mailbox was migrated")
}

func TestDeltaPassesRepeatUntilApprovedAndWindowOpens(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	in := orgInput(2)
	in.Approval = ApprovalManual
	in.DeltaInterval = 4 * time.Hour
	// The test clock starts on 2026-11-28 (a Saturday) at some time of day;
	// the cutover may only happen on a weekday evening in London.
	in.CutoverWindow = "Mon-Fri 18:00-23:00 Europe/London"
	env.SetStartTime(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC))
	ok := &updateResult{}
	var cutoverAt time.Time
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateApproveCutover, "ok", ok, Approval{Approver: "bob", Reason: "CAB-77"})
	}, 10*time.Hour) // Saturday 19:00: approved, but the window opens on Monday
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	cutoverAt = p.FrozenAt
	require.NoError(t, ok.err)
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 30, 18, 0, 0, 0, london), cutoverAt.In(london), "cutover at the window's opening")
	// Saturday 09:00 to Monday 18:00 is 57 h: a delta pass every 4 h.
	require.Equal(t, 14, p.DeltaPasses)
	require.Equal(t, 14*2, f.passes["delta"])
	require.Equal(t, PhaseCompleted, p.Phase)
}

func TestInvalidWindowIsRejected(t *testing.T) {
	in := orgInput(1)
	in.CutoverWindow = "Mon-Fri 18:00-25:00"
	require.ErrorContains(t, ValidateOrganizationInput(in), "organization RXH: cutover window:")
}
