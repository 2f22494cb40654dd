package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdktest "go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/transfer"
)

func newEnv(t *testing.T) *sdktest.TestWorkflowEnvironment {
	t.Helper()
	var s sdktest.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Organization, workflow.RegisterOptions{Name: OrganizationWorkflowName})
	env.RegisterWorkflowWithOptions(Mailbox, workflow.RegisterOptions{Name: MailboxWorkflowName})
	env.RegisterActivity(&activities.Activities{})
	return env
}

func orgInput(n int) OrganizationInput {
	in := OrganizationInput{Code: "RXH", Name: "Test Trust", Wave: "w1", SourceEndpoint: "source", TargetEndpoint: "target", Concurrency: 3}
	for i := 0; i < n; i++ {
		a := fmt.Sprintf("user%02d@rxh.example", i)
		in.Mailboxes = append(in.Mailboxes, MailboxSpec{Address: a, SourceUser: a, TargetUser: a})
	}
	return in
}

// fakeData stubs the four activities: every mailbox is ready, copies 10
// messages of 1000 bytes (one staged large item) and validates, except
// those named in the maps.
type fakeData struct {
	notReady  map[string]bool
	authFail  map[string]bool
	badValid  map[string]bool
	transfers int
	routed    []string
}

func (f *fakeData) install(env *sdktest.TestWorkflowEnvironment) {
	var a *activities.Activities
	env.OnActivity(a.CheckReadiness, mock.Anything, mock.Anything, mock.Anything).Return(
		func(_ context.Context, m activities.MailboxRef, _ activities.Policy) (activities.ReadinessResult, error) {
			if f.authFail[m.Address] {
				return activities.ReadinessResult{}, temporal.NewNonRetryableApplicationError("login refused", activities.ErrTypeAuth, nil)
			}
			if f.notReady[m.Address] {
				return activities.ReadinessResult{Problems: []string{"target mailbox not provisioned"}}, nil
			}
			return activities.ReadinessResult{Ready: true, Folders: 3, Messages: 11, Bytes: 11000}, nil
		})
	env.OnActivity(a.TransferMailbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.TransferInput) (activities.TransferResult, error) {
			f.transfers++
			r := activities.TransferResult{SkippedTotal: 1, SkippedByReason: map[string]int{transfer.ReasonTooLarge: 1},
				Skipped: []transfer.SkippedItem{{Folder: "INBOX", UID: 9, Size: 50 << 20, Reason: transfer.ReasonTooLarge, StagedAs: in.Mailbox.Address + "/INBOX/1/9.eml"}}}
			if in.Pass == string(PassPreStage) {
				r.Copied, r.Bytes = 10, 10000
			}
			return r, nil
		})
	env.OnActivity(a.ValidateMailbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ValidateInput) (activities.ValidateResult, error) {
			if f.badValid[in.Mailbox.Address] {
				return activities.ValidateResult{OK: false, Missing: 2, Problems: []string{"folder INBOX: 2 missing"}}, nil
			}
			return activities.ValidateResult{OK: true, Messages: 10}, nil
		})
	env.OnActivity(a.SwitchRouting, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RoutingInput) (activities.RoutingResult, error) {
			f.routed = append(f.routed, in.Addresses...)
			return activities.RoutingResult{Router: "test", Changed: len(in.Addresses)}, nil
		})
}

func result(t *testing.T, env *sdktest.TestWorkflowEnvironment) Progress {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var p Progress
	require.NoError(t, env.GetWorkflowResult(&p))
	return p
}

func TestOrganizationMigratesEveryMailbox(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	var phases []string
	var last temporal.SearchAttributes
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		last = args.Get(0).(temporal.SearchAttributes)
		ph, _ := last.GetKeyword(SAMigrationPhase)
		phases = append(phases, ph)
	}).Return(nil)
	env.ExecuteWorkflow(Organization, orgInput(7))
	p := result(t, env)
	require.Equal(t, []string{"Readiness", "PreStage", "AwaitingCutover", "Cutover", "Validation", "Completed"}, phases)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.True(t, p.Validated())
	require.Equal(t, 7, p.MailboxesDone)
	require.Equal(t, 7, p.MailboxesValidated)
	require.EqualValues(t, 70, p.Messages)
	require.EqualValues(t, 70000, p.Bytes)
	require.Equal(t, 7, p.Skipped)
	require.Equal(t, map[string]int{transfer.ReasonTooLarge: 7}, p.SkippedByReason)
	require.Len(t, p.StagedItems, 7)
	require.Equal(t, 14, f.transfers, "a pre-stage and a final pass per mailbox")
	require.Len(t, f.routed, 7)
	require.Equal(t, "auto", p.Approval.Approver)
	require.InDelta(t, 1.0, p.ReadinessScore, 1e-9)

	sa := last
	phase, _ := sa.GetKeyword(SAMigrationPhase)
	require.Equal(t, string(PhaseCompleted), phase)
	done, _ := sa.GetInt64(SAMailboxesDone)
	require.EqualValues(t, 7, done)
	bytes, _ := sa.GetFloat64(SABytesCopied)
	require.EqualValues(t, 70000, bytes)
	code, _ := sa.GetKeyword(SAOrganizationCode)
	require.Equal(t, "RXH", code)
}

func TestFailedMailboxesDoNotStopTheOthers(t *testing.T) {
	env := newEnv(t)
	in := orgInput(6)
	in.ReadinessThreshold = 0.5
	f := &fakeData{
		authFail: map[string]bool{in.Mailboxes[1].Address: true},
		notReady: map[string]bool{in.Mailboxes[2].Address: true},
		badValid: map[string]bool{in.Mailboxes[4].Address: true},
	}
	f.install(env)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseCompletedWithFailures, p.Phase)
	require.False(t, p.Validated())
	require.Equal(t, 3, p.MailboxesFailed)
	require.Equal(t, 3, p.MailboxesDone)
	require.Len(t, p.Failures, 3)
	byAddr := map[string]MailboxFailure{}
	for _, fl := range p.Failures {
		byAddr[fl.Address] = fl
	}
	require.Contains(t, byAddr[in.Mailboxes[1].Address].Error, activities.ErrTypeAuth)
	require.Contains(t, byAddr[in.Mailboxes[2].Address].Error, "not provisioned")
	require.Equal(t, PassValidate, byAddr[in.Mailboxes[4].Address].Pass)
	require.Len(t, f.routed, 4, "only mailboxes that got through are switched")
	require.Equal(t, 8, f.transfers)
}

func TestReadinessBelowThresholdStopsBeforeCopying(t *testing.T) {
	env := newEnv(t)
	in := orgInput(4)
	f := &fakeData{notReady: map[string]bool{in.Mailboxes[0].Address: true}}
	f.install(env)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseFailed, p.Phase)
	require.Contains(t, p.Reason, "readiness 75% (3 of 4 mailboxes) is below the threshold 100%")
	require.Zero(t, f.transfers)
	require.Empty(t, f.routed)
}

func TestInvalidInputIsRejectedWithTheField(t *testing.T) {
	in := orgInput(2)
	in.Mailboxes[1].Address = in.Mailboxes[0].Address
	err := ValidateOrganizationInput(in)
	require.ErrorContains(t, err, "listed twice")
	in = orgInput(1)
	in.Mailboxes[0].TargetUser = ""
	require.ErrorContains(t, ValidateOrganizationInput(in), "mailbox user00@rxh.example: source_user and target_user are required")
	in = orgInput(1)
	in.Approval = "sometimes"
	require.ErrorContains(t, ValidateOrganizationInput(in), `approval "sometimes"`)

	env := newEnv(t)
	bad := orgInput(0)
	env.ExecuteWorkflow(Organization, bad)
	require.True(t, env.IsWorkflowCompleted())
	var app *temporal.ApplicationError
	require.True(t, errors.As(env.GetWorkflowError(), &app))
	require.Equal(t, activities.ErrTypeConfig, app.Type())
}

type updateResult struct {
	accepted bool
	err      error
	value    Approval
}

func (u *updateResult) Accept()                 { u.accepted = true }
func (u *updateResult) Reject(err error)        { u.err = err }
func (u *updateResult) Complete(v any, e error) { u.err = e; u.value, _ = v.(Approval) }

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
	require.Equal(t, 6, f.transfers)
	require.ErrorContains(t, empty.err, "approver is required")
	require.NoError(t, ok.err)
	require.Equal(t, "bob", ok.value.Approver)
	require.ErrorContains(t, twice.err, "already approved by bob")
	require.Equal(t, PhaseCompleted, p.Phase)
	require.Equal(t, "bob", p.Approval.Approver)
	require.Equal(t, "CAB-1234", p.Approval.Reason)
	require.False(t, p.Approval.At.IsZero())
}

func TestPauseStopsNewMailboxesAndResumeContinues(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	in := orgInput(5)
	in.Concurrency = 1
	var paused Progress
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalPause, nil)
	}, 0)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryProgress)
		require.NoError(t, err)
		require.NoError(t, v.Get(&paused))
		env.SignalWorkflow(SignalSetConcurrency, 4)
		env.SignalWorkflow(SignalResume, nil)
	}, 6*time.Hour)
	start := env.Now()
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.True(t, paused.Paused)
	require.Equal(t, PhaseReadiness, paused.Phase)
	require.LessOrEqual(t, paused.PassDone, 1, "at most the mailbox already running finished while paused")
	require.Equal(t, 4, p.Concurrency)
	require.False(t, p.Paused)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.GreaterOrEqual(t, p.FinishedAt.Sub(start), 6*time.Hour, "nothing finished while paused")
}

func TestProgressQueryDuringRun(t *testing.T) {
	env := newEnv(t)
	var a *activities.Activities
	var seen []Progress
	env.OnActivity(a.CheckReadiness, mock.Anything, mock.Anything, mock.Anything).Return(activities.ReadinessResult{Ready: true, Messages: 5, Bytes: 500}, nil)
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
	require.True(t, strings.HasPrefix(MailboxWorkflowID("RXH", "A@B.example"), "mailbox/RXH/a@b.example"))
}
