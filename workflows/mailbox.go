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
// Web UI. It reports the pass to its organization with a signal (see
// Organization), also when it fails or is canceled by a pause.
func Mailbox(ctx workflow.Context, in MailboxInput) (MailboxResult, error) {
	res, err := mailboxPass(ctx, in)
	if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; parent != nil {
		out := outcome(in, res, err)
		// Canceled or not, the organization must hear of it.
		sctx, _ := workflow.NewDisconnectedContext(ctx)
		if serr := workflow.SignalExternalWorkflow(sctx, parent.ID, "", signalMailboxDone, out).Get(sctx, nil); serr != nil {
			workflow.GetLogger(ctx).Warn("could not report to the organization", "error", serr)
		}
	}
	return res, err
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
		out.Problems = r.Problems
		if len(out.Problems) > 5 {
			out.Problems = append(out.Problems[:5:5], fmt.Sprintf("and %d more", len(r.Problems)-5))
		}
	}
	if t := res.Transfer; t != nil {
		out.Copied, out.Bytes, out.Skipped, out.SkippedByReason, out.Staged = t.Copied, t.Bytes, t.SkippedTotal, t.SkippedByReason, t.Staged
	}
	if r := res.Import; r != nil {
		out.Imported, out.Bytes, out.Copied = r.Imported+r.Present, r.Bytes, int64(r.Imported)
	}
	if r := res.Archive; r != nil {
		out.ArchivedMessages, out.ArchivedBytes = int64(r.Messages), r.Bytes
	}
	if v := res.Validation; v != nil {
		out.Consistency, out.Rules = Score(*v)
	}
	return out
}

func mailboxPass(ctx workflow.Context, in MailboxInput) (MailboxResult, error) {
	res := MailboxResult{Address: in.Mailbox.Address, Pass: in.Pass}
	var a *activities.Activities
	retry := &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        2 * time.Minute,
		MaximumAttempts:        10,
		NonRetryableErrorTypes: activities.NonRetryable,
	}
	heartbeat := in.HeartbeatTimeout
	if heartbeat <= 0 {
		heartbeat = 2 * time.Minute
	}
	switch in.Pass {
	case PassReadiness:
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: heartbeat, RetryPolicy: retry, WaitForCancellation: true,
		})
		var r activities.ReadinessResult
		if err := workflow.ExecuteActivity(ctx, a.CheckReadiness, in.Mailbox, in.Policy).Get(ctx, &r); err != nil {
			return res, err
		}
		res.Readiness = &r
	case PassPreStage, PassDelta, PassFinal, PassPostSwitch:
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			// A mailbox of tens of GB takes hours; the heartbeat, not this
			// timeout, is what notices a dead worker. A pause cancels the
			// transfer, which stops at its next checkpoint; waiting for
			// that keeps two passes of one mailbox from overlapping.
			StartToCloseTimeout: 24 * time.Hour, HeartbeatTimeout: heartbeat, RetryPolicy: retry,
			WaitForCancellation: true,
		})
		var r activities.TransferResult
		if err := workflow.ExecuteActivity(ctx, a.TransferMailbox, activities.TransferInput{Mailbox: in.Mailbox, Pass: string(in.Pass), Policy: in.Policy}).Get(ctx, &r); err != nil {
			return res, err
		}
		res.Transfer = &r
	case PassValidate:
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 12 * time.Hour, HeartbeatTimeout: heartbeat, RetryPolicy: retry, WaitForCancellation: true,
		})
		var r activities.ValidateResult
		if err := workflow.ExecuteActivity(ctx, a.ValidateMailbox, activities.ValidateInput{Mailbox: in.Mailbox, Policy: in.Policy}).Get(ctx, &r); err != nil {
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
