package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// Mailbox runs one pass over one mailbox as its own workflow, so each
// mailbox's history, retries and failures are visible on their own in the
// Web UI and an organization's history grows by one event pair per mailbox.
func Mailbox(ctx workflow.Context, in MailboxInput) (MailboxResult, error) {
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
			StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: heartbeat, RetryPolicy: retry,
		})
		var r activities.ReadinessResult
		if err := workflow.ExecuteActivity(ctx, a.CheckReadiness, in.Mailbox, in.Policy).Get(ctx, &r); err != nil {
			return res, err
		}
		res.Readiness = &r
	case PassPreStage, PassFinal:
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			// A mailbox of tens of GB takes hours; the heartbeat, not this
			// timeout, is what notices a dead worker.
			StartToCloseTimeout: 24 * time.Hour, HeartbeatTimeout: heartbeat, RetryPolicy: retry,
		})
		var r activities.TransferResult
		if err := workflow.ExecuteActivity(ctx, a.TransferMailbox, activities.TransferInput{Mailbox: in.Mailbox, Pass: string(in.Pass), Policy: in.Policy}).Get(ctx, &r); err != nil {
			return res, err
		}
		res.Transfer = &r
	case PassValidate:
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 12 * time.Hour, RetryPolicy: retry,
		})
		var r activities.ValidateResult
		if err := workflow.ExecuteActivity(ctx, a.ValidateMailbox, activities.ValidateInput{Mailbox: in.Mailbox, Policy: in.Policy}).Get(ctx, &r); err != nil {
			return res, err
		}
		res.Validation = &r
	case PassArchive:
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 24 * time.Hour, HeartbeatTimeout: heartbeat, RetryPolicy: retry,
		})
		var r activities.ArchiveResult
		if err := workflow.ExecuteActivity(ctx, a.ArchiveMailbox, activities.ArchiveInput{Mailbox: in.Mailbox, RetainDays: in.RetainDays}).Get(ctx, &r); err != nil {
			return res, err
		}
		res.Archive = &r
	case PassImport:
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 12 * time.Hour, HeartbeatTimeout: heartbeat, RetryPolicy: retry,
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
