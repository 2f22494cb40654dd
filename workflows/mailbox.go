package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// Mailbox runs one pass over one mailbox as its own workflow, so each
// mailbox's history, retries and failures are visible on their own in the
// Web UI. It reports the pass to its organization through its result: the
// run that started it books it from the child's completion. Only when that
// run has continued as new meanwhile (it says so with the hand-over signal)
// does the mailbox report by signal to the organization's current run.
// Reporting by completion saves a signal and a workflow task per pass, a
// third of the server's work for a small mailbox.
func Mailbox(ctx workflow.Context, in MailboxInput) (MailboxOutcome, error) {
	handedOver := workflow.GetSignalChannel(ctx, signalReportToCurrentRun)
	res, err := mailboxPass(ctx, in)
	out := outcome(in, res, err)
	// The server does not let a workflow close while a signal it has not
	// seen is pending, so a hand-over is never missed here.
	if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; parent != nil && (!in.ReportByResult || handedOver.ReceiveAsync(nil)) {
		// Canceled or not, the organization must hear of it.
		sctx, _ := workflow.NewDisconnectedContext(ctx)
		if serr := workflow.SignalExternalWorkflow(sctx, parent.ID, "", signalMailboxDone, out).Get(sctx, nil); serr != nil {
			workflow.GetLogger(ctx).Warn("could not report to the organization", "error", serr)
		}
	}
	return out, err
}

// outcome summarises a pass for the organization.
func outcome(in MailboxInput, res MailboxResult, err error) MailboxOutcome {
	out := MailboxOutcome{Index: in.Index, Seq: in.Seq, Pass: in.Pass, Address: in.Mailbox.Address, Chain: in.Chain}
	if err != nil {
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) {
			out.Canceled = true
		} else {
			out.Error = rootCause(err)
		}
		return out
	}
	if r := res.Readiness; r != nil {
		out.Ready, out.SourceMessages, out.SourceBytes, out.LargeItems = r.Ready, r.Messages, r.Bytes, r.LargeItems
		out.Problems = activities.BriefProblems(r.Problems)
	}
	if t := res.Transfer; t != nil {
		out.Copied, out.Bytes, out.Skipped, out.SkippedByReason, out.Staged = t.Copied, t.Bytes, t.SkippedTotal, t.SkippedByReason, t.Staged
		out.Throttled, out.ThrottledFor = t.Throttled, t.ThrottledFor
		out.KeywordsDropped = t.KeywordsDropped
	}
	if r := res.Import; r != nil {
		out.Imported, out.Bytes, out.Copied = r.Imported+r.Present, r.Bytes, int64(r.Imported)
	}
	if r := res.Archive; r != nil {
		out.ArchivedMessages, out.ArchivedBytes = int64(r.Messages), r.Bytes
	}
	if v := res.Validation; v != nil {
		out.Consistency, out.Rules = Score(*v)
		out.ValidationLevel = v.Level
	}
	return out
}

// mailboxRetry is how a mailbox's activities are retried.
func mailboxRetry() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        2 * time.Minute,
		MaximumAttempts:        10,
		NonRetryableErrorTypes: activities.NonRetryable,
	}
}

// heartbeatOrDefault is an organization's heartbeat timeout, 20 s unless
// set: a killed worker's mailbox is retried on another within half a
// minute. Running activities heartbeat every 5 s whatever they are doing
// (activities.pulseEvery), so a slow message is not taken for a death.
func heartbeatOrDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultHeartbeatTimeout
	}
	return d
}

// DefaultHeartbeatTimeout is heartbeatOrDefault's default.
const DefaultHeartbeatTimeout = 20 * time.Second

func mailboxPass(ctx workflow.Context, in MailboxInput) (MailboxResult, error) {
	res := MailboxResult{Address: in.Mailbox.Address, Pass: in.Pass}
	var a *activities.Activities
	retry := mailboxRetry()
	heartbeat := heartbeatOrDefault(in.HeartbeatTimeout)
	switch in.Pass {
	case PassReadiness:
		var r activities.ReadinessResult
		if !readOnlyLocal(ctx, in.LocalBudget, a.CheckReadiness, &r, in.Mailbox, in.Policy) {
			ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: heartbeat, RetryPolicy: retry, WaitForCancellation: true,
			})
			if err := workflow.ExecuteActivity(ctx, a.CheckReadiness, in.Mailbox, in.Policy).Get(ctx, &r); err != nil {
				return res, err
			}
		}
		res.Readiness = &r
	case PassPreStage, PassDelta, PassFinal, PassPostSwitch:
		tin := activities.TransferInput{Mailbox: in.Mailbox, Pass: string(in.Pass), Policy: in.Policy}
		if in.ReportByResult {
			tin.PassID = workflow.GetInfo(ctx).WorkflowExecution.RunID
		}
		r, done, err := localTransfer(ctx, in.LocalBudget, tin)
		if err != nil {
			return res, err
		}
		if !done {
			ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				// A mailbox of tens of GB takes hours; the heartbeat, not this
				// timeout, is what notices a dead worker. A pause cancels the
				// transfer, which stops at its next checkpoint; waiting for
				// that keeps two passes of one mailbox from overlapping.
				StartToCloseTimeout: 24 * time.Hour, HeartbeatTimeout: heartbeat, RetryPolicy: retry,
				WaitForCancellation: true,
			})
			var rest activities.TransferResult
			if err := workflow.ExecuteActivity(ctx, a.TransferMailbox, tin).Get(ctx, &rest); err != nil {
				return res, err
			}
			// The ledger tallies the pass by PassID: rest counts the local
			// attempt's copies too.
			rest.BodiesRead += r.BodiesRead
			rest.Throttled += r.Throttled
			rest.ThrottledFor += r.ThrottledFor
			if !r.Started.IsZero() {
				rest.Started = r.Started
			}
			r = rest
		}
		res.Transfer = &r
		if in.Validate && in.Pass == PassPostSwitch {
			// The copy is done and counted whatever the check says: a check
			// that fails is left to the organization's validation pass.
			v, err := validate(ctx, in, heartbeat, retry)
			if err != nil {
				workflow.GetLogger(ctx).Warn("validation after the post-switch pass failed; the validation phase checks again", "error", err)
			} else {
				res.Validation = &v
			}
		}
	case PassValidate:
		r, err := validate(ctx, in, heartbeat, retry)
		if err != nil {
			return res, err
		}
		res.Validation = &r
	case PassArchive:
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 24 * time.Hour, HeartbeatTimeout: heartbeat, RetryPolicy: retry, WaitForCancellation: true,
		})
		var r activities.ArchiveResult
		if err := workflow.ExecuteActivity(ctx, a.ArchiveMailbox, activities.ArchiveInput{Mailbox: in.Mailbox, RetainDays: in.RetainDays}).Get(ctx, &r); err != nil {
			return res, err
		}
		res.Archive = &r
	case PassImport:
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 12 * time.Hour, HeartbeatTimeout: heartbeat, RetryPolicy: retry, WaitForCancellation: true,
		})
		var r activities.ImportResult
		if err := workflow.ExecuteActivity(ctx, a.ImportStagedItems, activities.ImportInput{Mailbox: in.Mailbox, Policy: in.Policy}).Get(ctx, &r); err != nil {
			return res, err
		}
		res.Import = &r
	default:
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox %s: unknown pass %q", in.Mailbox.Address, in.Pass), activities.ErrTypeConfig, nil)
	}
	return res, nil
}

// validate compares the mailbox's source and target, locally first.
func validate(ctx workflow.Context, in MailboxInput, heartbeat time.Duration, retry *temporal.RetryPolicy) (activities.ValidateResult, error) {
	var a *activities.Activities
	var r activities.ValidateResult
	vin := activities.ValidateInput{Mailbox: in.Mailbox, Policy: in.Policy}
	if readOnlyLocal(ctx, in.LocalBudget, a.ValidateMailbox, &r, vin) {
		return r, nil
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 12 * time.Hour, HeartbeatTimeout: heartbeat, RetryPolicy: retry, WaitForCancellation: true,
	})
	err := workflow.ExecuteActivity(ctx, a.ValidateMailbox, vin).Get(ctx, &r)
	return r, err
}

// Small mailboxes - most of them, in a programme of care homes and GP
// practices - are done in seconds. Each pass first tries as a local
// activity within the mailbox's local budget: no activity task, no
// matching round trip, and the pass ends in the workflow task that started
// it, which halves the server's work per mailbox. Whatever does not finish
// in the budget goes on as a regular activity, with heartbeats, retries and
// resumption from the ledger.

// readOnlyLocal tries a read-only step (readiness, validation) locally. A
// step that fails or runs out of time is simply done again as a regular
// activity: reading twice is harmless.
func readOnlyLocal(ctx workflow.Context, budget time.Duration, fn, out any, args ...any) bool {
	if budget <= 0 {
		return false
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: budget, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	return workflow.ExecuteLocalActivity(lctx, fn, args...).Get(ctx, out) == nil
}

// localTransferGrace is how long past its budget a local transfer may take
// to stop at a checkpoint before the SDK gives up on it.
const localTransferGrace = time.Minute

// localTransfer tries a transfer pass locally. The activity stops itself
// at a checkpoint when the budget is spent and says so (Incomplete); done
// is false then, or when the local attempt failed, and the pass goes on as
// a regular activity from the ledger. A pause or rollback does not cut the
// local attempt short (the SDK would not wait for it to stop, and the next
// pass could overlap it): it ends within the budget, then the pass reports
// itself canceled.
func localTransfer(ctx workflow.Context, budget time.Duration, in activities.TransferInput) (r activities.TransferResult, done bool, err error) {
	if budget <= 0 {
		return r, false, nil
	}
	var a *activities.Activities
	in.Budget = budget
	lctx, _ := workflow.NewDisconnectedContext(ctx)
	lctx = workflow.WithLocalActivityOptions(lctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: budget + localTransferGrace, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	lerr := workflow.ExecuteLocalActivity(lctx, a.TransferMailbox, in).Get(lctx, &r)
	if lerr == nil && !r.Incomplete {
		return r, true, nil // done, even if a pause came meanwhile: its copies count
	}
	if ctx.Err() != nil {
		return r, false, temporal.NewCanceledError()
	}
	return r, false, nil // incomplete or failed: a regular activity goes on
}
