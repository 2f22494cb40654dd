package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	budgeted   int                      // transfers that ran with a budget (local attempts)
	batches    int                      // readiness batches
	sizes      map[string]int64         // readiness's measure, default 11,000 bytes
	byMailbox  map[string][]string      // transfer passes per mailbox
	failOn     map[string]string        // address -> the transfer pass that fails for good
	throttled  map[string]time.Duration // address -> its pre-stage waited this long, throttled twice
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
				if d := f.throttled[in.Mailbox.Address]; d > 0 {
					r.Throttled, r.ThrottledFor = 2, d
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
	var p T
	if ended, ok := OrganizationEnded(env.GetWorkflowError()); ok {
		// A rolled-back or failed organization ends with its Progress in
		// the error (versionLiveProgress).
		if pp, isOrg := any(&p).(*Progress); isOrg {
			*pp = ended
			return p
		}
	}
	require.NoError(t, env.GetWorkflowError())
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
	require.Equal(t, map[string]int{"prestage": 7, "post-switch": 7}, f.passes, "pre-stage and post-switch pass per mailbox; the cutover came right after the pre-stage, so no final pass")
	require.True(t, p.FinalPassSkipped)
	require.Equal(t, 1, f.batches, "readiness of all 7 in one batch")
	require.Equal(t, 2*7, p.MailboxRuns, "validation runs in the post-switch workflow")
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
	require.Equal(t, 8, f.transfers, "pre-stage and post-switch passes of the 4 ready mailboxes")
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
	require.Equal(t, 6, f.transfers, "the 3 ready mailboxes went on (pre-stage and post-switch)")
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

// An altered target message (the copy's digest disagrees) is Poor at any
// level, so it rolls back like a missing one.
func TestAlteredMessagesArePoor(t *testing.T) {
	c, rules := Score(activities.ValidateResult{OK: false, Altered: 2, Level: "sample"})
	require.Equal(t, Poor, c)
	require.Len(t, rules, 1)
	require.Equal(t, RuleAltered, rules[0].ID)
	require.Contains(t, rules[0].Detail, "2 target messages differ")
}
