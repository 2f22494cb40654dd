package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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
	badValid  map[string]bool // validation cannot log in
	missing   map[string]bool // validation finds 2 messages missing: Poor
	rejected  map[string]bool // one bad item skipped: Investigate
	transfers int
	passes    map[string]int
	routed    []string
	reverted  []string
	delay     time.Duration // how long each readiness check takes
	reported  []string
	// localStops: a local (budgeted) pre-stage copies 4 of the 10
	// messages and runs out of budget; the regular activity copies the rest.
	localStops bool
	budgeted   int                 // transfers that ran with a budget (local attempts)
	batches    int                 // readiness batches
	sizes      map[string]int64    // readiness's measure, default 11,000 bytes
	byMailbox  map[string][]string // transfer passes per mailbox
	failOn     map[string]string   // address -> the transfer pass that fails for good
	// mu: the test environment runs activities of concurrent children on
	// goroutines of their own.
	mu sync.Mutex
}

func (f *fakeData) install(env *sdktest.TestWorkflowEnvironment) {
	var a *activities.Activities
	readiness := func(address string) (activities.ReadinessResult, error) {
		if f.authFail[address] {
			return activities.ReadinessResult{}, temporal.NewNonRetryableApplicationError("login refused", activities.ErrTypeAuth, nil)
		}
		if f.notReady[address] {
			return activities.ReadinessResult{Problems: []string{"login: target mailbox not provisioned", "quota: no room"}}, nil
		}
		r := activities.ReadinessResult{Ready: true, Folders: 3, Messages: 11, Bytes: 11000}
		if b, ok := f.sizes[address]; ok {
			r.Bytes = b
		}
		return r, nil
	}
	env.OnActivity(a.CheckReadiness, mock.Anything, mock.Anything, mock.Anything).After(f.delay).Return(
		func(_ context.Context, m activities.MailboxRef, _ activities.Policy) (activities.ReadinessResult, error) {
			return readiness(m.Address)
		})
	env.OnActivity(a.CheckReadinessBatch, mock.Anything, mock.Anything).After(f.delay).Return(
		func(_ context.Context, in activities.ReadinessBatchInput) ([]activities.ReadinessBrief, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.batches++
			var out []activities.ReadinessBrief
			for _, m := range in.Mailboxes {
				r, err := readiness(m.Address)
				b := activities.ReadinessBrief{Ready: r.Ready, Messages: r.Messages, Bytes: r.Bytes, LargeItems: r.LargeItems, Problems: r.Problems}
				if !r.Ready {
					b.Address = m.Address
				}
				if err != nil {
					b.Error = err.Error()
				}
				out = append(out, b)
			}
			return out, nil
		})
	env.OnActivity(a.TransferMailbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.TransferInput) (activities.TransferResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.transfers++
			if f.failOn[in.Mailbox.Address] == in.Pass {
				return activities.TransferResult{}, temporal.NewNonRetryableApplicationError("target refused the login", activities.ErrTypeAuth, nil)
			}
			if f.passes == nil {
				f.passes, f.byMailbox = map[string]int{}, map[string][]string{}
			}
			if in.Budget > 0 {
				f.budgeted++
				if f.localStops && in.Pass == string(PassPreStage) {
					return activities.TransferResult{Copied: 4, Bytes: 4000, Incomplete: true, StopReason: "budget spent"}, nil
				}
			}
			f.passes[in.Pass]++
			f.byMailbox[in.Mailbox.Address] = append(f.byMailbox[in.Mailbox.Address], in.Pass)
			r := activities.TransferResult{SkippedTotal: 1, SkippedByReason: map[string]int{transfer.ReasonTooLarge: 1}, Staged: 1,
				Skipped: []transfer.SkippedItem{{Folder: "INBOX", UID: 9, Size: 50 << 20, Reason: transfer.ReasonTooLarge, StagedAs: in.Mailbox.Address + "/INBOX/1/9.eml"}}}
			if in.Pass == string(PassPreStage) {
				// The ledger's tally of the pass: the local attempt's 4
				// copies and the 6 this attempt made.
				r.Copied, r.Bytes = 10, 10000
				if f.localStops && in.PassID == "" {
					r.Copied, r.Bytes = 6, 6000
				}
			}
			return r, nil
		})
	env.OnActivity(a.ValidateMailbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ValidateInput) (activities.ValidateResult, error) {
			if f.badValid[in.Mailbox.Address] {
				return activities.ValidateResult{}, temporal.NewNonRetryableApplicationError("login refused", activities.ErrTypeAuth, nil)
			}
			staged := map[string]int{transfer.ReasonTooLarge: 1}
			if f.missing[in.Mailbox.Address] {
				return activities.ValidateResult{OK: false, Messages: 8, Missing: 2, SkippedByReason: staged, Staged: 1, Problems: []string{"folder INBOX: 2 missing"}}, nil
			}
			if f.rejected[in.Mailbox.Address] {
				return activities.ValidateResult{OK: true, Messages: 9, SkippedByReason: map[string]int{transfer.ReasonTooLarge: 1, transfer.ReasonRejected: 1}, Staged: 1}, nil
			}
			return activities.ValidateResult{OK: true, Messages: 10, SkippedByReason: staged, Staged: 1}, nil
		})
	env.OnActivity(a.WriteOrganizationReport, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.OrganizationReportInput) (activities.OrganizationReportResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.reported = in.Mailboxes
			return activities.OrganizationReportResult{CSV: "reports/" + in.Org + "/mailboxes.csv", SkippedCSV: "reports/" + in.Org + "/skipped-items.csv", JSON: "reports/" + in.Org + "/mailboxes.json", Mailboxes: len(in.Mailboxes)}, nil
		})
	env.OnActivity(a.SwitchRouting, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RoutingInput) (activities.RoutingResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if in.Revert {
				f.reverted = append(f.reverted, in.Addresses...)
			} else {
				f.routed = append(f.routed, in.Addresses...)
			}
			return activities.RoutingResult{Router: "test", Changed: len(in.Addresses)}, nil
		})
}

func result(t *testing.T, env *sdktest.TestWorkflowEnvironment) Progress {
	t.Helper()
	return resultOf[Progress](t, env)
}

// resultOf is a finished workflow's result; a panic fails with its stack.
func resultOf[T any](t *testing.T, env *sdktest.TestWorkflowEnvironment) T {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	var panicked *temporal.PanicError
	if errors.As(env.GetWorkflowError(), &panicked) {
		t.Fatalf("workflow panicked: %v\n%s", panicked, panicked.StackTrace())
	}
	require.NoError(t, env.GetWorkflowError())
	var p T
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
		if len(phases) == 0 || phases[len(phases)-1] != ph {
			phases = append(phases, ph)
		}
	}).Return(nil)
	env.ExecuteWorkflow(Organization, orgInput(7))
	p := result(t, env)
	require.Equal(t, []string{"Readiness", "PreStage", "AwaitingCutover", "Cutover", "Validation", "Completed"}, phases)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.True(t, p.Validated())
	require.Equal(t, 7, p.MailboxesDone)
	require.EqualValues(t, 70, p.Messages)
	require.EqualValues(t, 70000, p.Bytes)
	require.Equal(t, 7, p.Skipped)
	require.Equal(t, map[string]int{transfer.ReasonTooLarge: 7}, p.SkippedByReason)
	require.Equal(t, 7, p.StagedCount)
	require.Equal(t, map[string]int{"prestage": 7, "final": 7, "post-switch": 7}, f.passes, "pre-stage, final and post-switch pass per mailbox")
	require.Equal(t, 1, f.batches, "readiness of all 7 in one batch")
	require.Equal(t, 3*7, p.MailboxRuns, "validation runs in the post-switch workflow")
	require.Equal(t, Good, p.Consistency, "staged large items make it Good, not Perfect")
	require.Equal(t, map[string]int{RuleStaged: 7}, p.RulesFired)
	require.Equal(t, []string{"reports/RXH/mailboxes.csv", "reports/RXH/skipped-items.csv", "reports/RXH/mailboxes.json"}, p.Reports)
	require.Len(t, f.reported, 7, "the report covers every mailbox")
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
	approver, _ := sa.GetKeyword(SACutoverApprovedBy)
	require.Equal(t, "auto", approver)
	score, _ := sa.GetKeyword(SAConsistency)
	require.Equal(t, "Good", score)
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
	require.Equal(t, 12, f.transfers, "3 passes of the 4 ready mailboxes")
}

func TestReadinessBelowThresholdWaitsForOverride(t *testing.T) {
	env := newEnv(t)
	in := orgInput(4)
	f := &fakeData{notReady: map[string]bool{in.Mailboxes[0].Address: true}}
	f.install(env)
	var blocked Progress
	early, noReason, ok := &updateResult{}, &updateResult{}, &updateResult{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateOverrideReadiness, "early", early, Approval{Approver: "alice", Reason: "known"})
	}, 0)
	env.RegisterDelayedCallback(func() {
		blocked = query(t, env)
		transfers := f.transfers
		env.UpdateWorkflow(UpdateOverrideReadiness, "no-reason", noReason, Approval{Approver: "alice"})
		env.UpdateWorkflow(UpdateOverrideReadiness, "ok", ok, Approval{Approver: "alice", Reason: "user00 leaves this month"})
		require.Zero(t, transfers, "nothing is copied while readiness is blocked")
	}, 24*time.Hour)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseReadinessBlocked, blocked.Phase)
	require.Contains(t, blocked.Reason, "readiness 75.0% (3 of 4 mailboxes ready) is below the threshold 100.0%")
	require.ErrorContains(t, early.err, "readiness can only be overridden in ReadinessBlocked")
	require.ErrorContains(t, noReason.err, "a reason is required")
	require.NoError(t, ok.err)
	require.Equal(t, PhaseCompletedWithFailures, p.Phase)
	require.Equal(t, "alice", p.ReadinessOverride.Approver)
	require.Equal(t, map[string]int{"login": 1, "quota": 1}, p.ReadinessProblems)
	require.Equal(t, 9, f.transfers, "the 3 ready mailboxes went on")
}

func TestNoReadyMailboxFails(t *testing.T) {
	env := newEnv(t)
	in := orgInput(2)
	f := &fakeData{notReady: map[string]bool{in.Mailboxes[0].Address: true, in.Mailboxes[1].Address: true}}
	f.install(env)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.Equal(t, PhaseFailed, p.Phase)
	require.Contains(t, p.Reason, "no mailbox of 2 is ready")
	require.Zero(t, f.transfers)
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
	require.Equal(t, 9, f.transfers)
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
	require.True(t, strings.HasPrefix(MailboxWorkflowID("RXH", "A@B.example"), "mailbox/RXH/a@b.example"))
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
	require.Equal(t, 3*3, f.budgeted, "pre-stage, final and post-switch tried locally")
	require.Equal(t, map[string]int{"prestage": 3, "final": 3, "post-switch": 3}, f.passes)

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
	// bytes) copy as regular activities straight away.
	env = newEnv(t)
	f = &fakeData{localStops: true}
	f.install(env)
	in = orgInput(3)
	in.LocalPassMaxBytes = 10000
	env.ExecuteWorkflow(Organization, in)
	p = result(t, env)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.Zero(t, f.budgeted)
	require.EqualValues(t, 30, p.Messages, "no local attempt: the regular activity copies all 10")
}

// runBefore runs an organization as a run recorded before the changes
// would (GetVersion's default for each) and checks that it completes.
func runBefore(t *testing.T, in OrganizationInput, changes ...string) (Progress, *fakeData) {
	t.Helper()
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	for _, c := range changes {
		env.OnGetVersion(c, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
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
			want = []string{"prestage", "final", "post-switch"}
		}
		require.Equal(t, want, f.byMailbox[m.Address], m.Address)
	}
	require.Equal(t, 3+3, p.MailboxRuns, "one workflow per small mailbox, three for the large one")
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
