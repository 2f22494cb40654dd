package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// runPass runs one Mailbox workflow per mailbox the pass covers through a
// window of Concurrency; pause and set-concurrency take effect at once. A
// failed mailbox is recorded and never stops the others.
func (o *organization) runPass(ctx workflow.Context, pass Pass) error {
	p := &o.p
	if o.window.isOpen() && p.Pass != pass {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("pass %s is open; cannot start %s", p.Pass, pass), activities.ErrTypeConfig, nil)
	}
	if !o.window.isOpen() {
		o.window.begin()
		o.openPass(ctx, pass)
		if pass == PassPreStage || pass == PassDelta {
			o.copyPassAt = workflow.Now(ctx)
		}
	}
	covers := func(i int) bool { return o.covers(i, pass) }
	for {
		var next int
		err := workflow.Await(ctx, func() bool {
			if o.rollingBack() || o.shouldContinueAsNew(ctx) {
				return true
			}
			next = o.window.nextToStart(o.total, covers)
			if next < 0 {
				return o.window.idle()
			}
			return !o.paused && o.window.size() < o.p.Concurrency
		})
		if err != nil {
			return err
		}
		if o.rollingBack() {
			return nil
		}
		if o.shouldContinueAsNew(ctx) {
			return errContinueAsNew
		}
		if next < 0 {
			break
		}
		if err := o.start(ctx, next, pass); err != nil {
			return err
		}
	}
	o.window.end()
	p.Pass = ""
	return nil
}

// openPass resets the pass's progress to the mailboxes it covers and
// shows it.
func (o *organization) openPass(ctx workflow.Context, pass Pass) {
	p := &o.p
	p.Pass, p.PassDone, p.PassTotal = pass, 0, 0
	for i := range o.total {
		if o.covers(i, pass) {
			p.PassTotal++
		}
	}
	o.publish(ctx)
}

// covers: mailbox i takes part in pass. Direct mailboxes are moved by the
// post-switch pass alone.
func (o *organization) covers(i int, pass Pass) bool {
	if o.table.state(i) != mbActive {
		return false
	}
	switch pass {
	case PassPreStage, PassDelta, PassFinal:
		return !o.table.isDirect(i) && !o.table.isUnchanged(i)
	case PassImport:
		return !o.table.isDirect(i)
	case PassPostSwitch:
		return !o.table.isUnchanged(i)
	}
	return true
}

// start starts mailbox i's pass.
func (o *organization) start(ctx workflow.Context, i int, pass Pass) error {
	spec, err := o.table.spec(ctx, i)
	if err != nil {
		return err
	}
	// spec may have run an activity: a skip, pause or rollback may have
	// come meanwhile. Then the caller decides again.
	if !o.covers(i, pass) || o.paused || o.rollingBack() || o.window.running(i) {
		return nil
	}
	var id string
	if o.opaqueIDs {
		id = MailboxWorkflowID(o.in.TargetEndpoint, spec.TargetUser)
	}
	seq := o.window.take(i, spec.Address, id)
	o.p.MailboxesRunning = o.window.size()
	o.p.MailboxRuns++
	in := MailboxInput{
		Mailbox: activities.MailboxRef{
			Org: o.in.Code, Address: spec.Address,
			SourceEndpoint: o.in.SourceEndpoint, SourceUser: spec.SourceUser,
			TargetEndpoint: o.in.TargetEndpoint, TargetUser: spec.TargetUser,
		},
		Pass:             pass,
		Policy:           o.in.Policy,
		HeartbeatTimeout: o.in.HeartbeatTimeout,
		RetainDays:       o.in.ArchiveRetainDays,
		LocalBudget:      o.localBudget(i, pass),
		Index:            i,
		Seq:              seq,
		Chain:            o.chain,
		ReportByResult:   o.byResult,
		Validate:         o.lean && pass == PassPostSwitch,
	}
	want := MailboxOutcome{Index: i, Seq: seq, Pass: pass, Address: spec.Address, Chain: in.Chain}
	opts := workflow.ChildWorkflowOptions{WorkflowID: id, StaticSummary: fmt.Sprintf("%s %s: %s", o.in.Code, spec.Address, pass)}
	if o.opaqueIDs {
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(SAOrganizationCode.ValueSet(o.in.Code))
	}
	o.window.launch(ctx, opts, in, o.byResult,
		func(ctx workflow.Context, out MailboxOutcome, err error) {
			o.drainOutcomes(ctx)
			if o.window.holds(i, seq) {
				o.onOutcome(ctx, o.closedOutcome(want, out, err))
			}
		},
		func(ctx workflow.Context, reason string) {
			want.Error = "start: " + reason
			o.onOutcome(ctx, want)
		})
	return nil
}

// closedOutcome is the outcome of a mailbox pass (want names it) whose
// workflow closed without reporting by signal: its result, or what its
// close says. A child that closes without any report (terminated by
// someone, its signal failed) must not hold its slot forever.
func (o *organization) closedOutcome(want, out MailboxOutcome, err error) MailboxOutcome {
	const noReport = "mailbox workflow closed without reporting its pass"
	switch {
	case !o.byResult:
		// A child of the signal-only version whose signal never came.
		want.Error = noReport
		if err != nil {
			want.Error += ": " + rootCause(err)
		}
	case err == nil && out.Index == want.Index && out.Seq == want.Seq && out.Address != "":
		return out
	case err == nil:
		want.Error = noReport
	case temporal.IsCanceledError(err):
		want.Canceled = true
	default:
		want.Error = rootCause(err)
	}
	return want
}

// localBudget is the local attempt a pass gets: readiness always (it only
// reads, and it is what measures the mailbox); a mailbox readiness found
// small, every pass but archive and import; any other mailbox, the delta,
// final and post-switch passes, which move only the mail that came since
// its pre-stage. A large mailbox's pre-stage would spend the budget and
// stop mid-message, so it goes straight to a regular activity; a delta
// that outlasts the budget stops at a checkpoint and goes on as one,
// reading nothing twice. The post-switch pass's validation tries locally
// too: one that outlasts the budget (a mailbox of tens of thousands of
// messages) is read again as a regular activity, at most the budget lost.
// At 8 mailboxes at once, the local attempt took 0.1 s of Temporal work
// off each mailbox's cutover (docs/benchmarks.md).
func (o *organization) localBudget(i int, pass Pass) time.Duration {
	if o.in.LocalPassBudget <= 0 || !o.byResult {
		return 0
	}
	switch {
	case pass == PassReadiness:
		return o.in.LocalPassBudget
	case pass == PassArchive || pass == PassImport:
		return 0
	case o.table.isSmall(i):
		return o.in.LocalPassBudget
	case (pass == PassDelta || pass == PassFinal || pass == PassPostSwitch) && !o.table.isDirect(i):
		return o.in.LocalPassBudget
	}
	return 0
}
