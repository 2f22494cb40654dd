package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// readinessBatches checks the mailboxes a page at a time, each page in one
// CheckReadinessBatch activity: readiness only reads, so a Mailbox workflow
// per check would cost the server more than the check itself. A pause or
// rollback cancels the page under way; it is checked again on resume.
// Mailboxes an operator retried meanwhile wait in the pass window's
// requeue and are checked once every page is done.
func (o *organization) readinessBatches(ctx workflow.Context) error {
	p := &o.p
	if o.steps.enter(stepReadiness) {
		o.window.clearRequeue()
		o.openPass(ctx, PassReadiness)
	}
	for o.steps.position() < o.total || o.window.anyRequeued() {
		if err := workflow.Await(ctx, func() bool { return !o.paused || o.rollingBack() }); err != nil {
			return err
		}
		if o.rollingBack() {
			return nil
		}
		if o.shouldContinueAsNew(ctx) {
			return errContinueAsNew
		}
		in := activities.ReadinessBatchInput{
			Org: o.in.Code, SourceEndpoint: o.in.SourceEndpoint, TargetEndpoint: o.in.TargetEndpoint,
			Policy: o.in.Policy, Parallel: p.Concurrency, Sealed: o.sealed,
		}
		// The next page, or, once every page is done, the mailboxes an
		// operator retried meanwhile.
		var idx []int
		if cur := o.steps.position(); cur < o.total {
			end := min(cur+inventoryPage, o.total)
			for i := cur; i < end; i++ {
				idx = append(idx, i)
			}
			in.Offset, in.Limit = cur, end-cur
			if o.in.Inventory != nil {
				in.Inventory = o.in.Inventory
			} else {
				in.Mailboxes = o.in.Mailboxes[cur:end]
			}
		} else {
			idx = o.window.requeuedFirst(inventoryPage)
			for _, i := range idx {
				spec, err := o.table.spec(ctx, i)
				if err != nil {
					return err
				}
				in.Mailboxes = append(in.Mailboxes, spec)
			}
		}
		briefs, err := o.checkReadiness(ctx, in, len(idx))
		if temporal.IsCanceledError(err) {
			continue // paused or rolled back: decided again at the top
		}
		if err != nil && !isBatchFailure(err) {
			return err
		}
		for k, i := range idx {
			if o.table.state(i) != mbActive {
				continue // skipped by an operator meanwhile
			}
			out := MailboxOutcome{Index: i, Pass: PassReadiness}
			if err != nil {
				// The page could not be checked at all: its mailboxes fail,
				// the other pages go on.
				spec, serr := o.table.spec(ctx, i)
				if serr != nil {
					return serr
				}
				out.Address, out.Error = spec.Address, "readiness: "+rootCause(err)
			} else {
				b := briefs[k]
				out.Address, out.Ready, out.Problems = b.Address, b.Ready, b.Problems
				out.SourceMessages, out.SourceBytes, out.LargeItems = b.Messages, b.Bytes, b.LargeItems
				out.Error = b.Error
			}
			o.book(out)
			switch {
			case err != nil || !briefs[k].Unchanged || o.table.state(i) != mbActive:
				o.forgetUnchanged(i) // checked again after a retry, and changed
			case o.sealed && !o.table.isUnchanged(i):
				o.table.markUnchanged(i)
				p.MailboxesUnchanged++
			}
		}
		o.progressed(ctx)
		if cur := o.steps.position(); cur < o.total {
			o.steps.moveTo(cur + len(idx))
		} else {
			o.window.dropRequeued(len(idx))
		}
	}
	o.window.clearRequeue()
	o.steps.clear()
	p.Pass = ""
	return nil
}

// checkingReadiness: the readiness phase is checking pages (see
// readinessBatches); skip-mailbox and retry-mailbox adjust to it.
func (o *organization) checkingReadiness() bool {
	return o.steps.in(stepReadiness) && o.p.Phase == PhaseReadiness
}

// errBatch wraps the error of a readiness batch that failed as a whole.
type errBatch struct{ error }

func isBatchFailure(err error) bool {
	var b errBatch
	return errors.As(err, &b)
}

// checkReadiness runs one CheckReadinessBatch; a pause or rollback
// cancels it (see stopBatch).
func (o *organization) checkReadiness(ctx workflow.Context, in activities.ReadinessBatchInput, want int) ([]activities.ReadinessBrief, error) {
	bctx, cancel := workflow.WithCancel(ctx)
	o.cancelBatch = cancel
	defer o.stopBatch()
	bctx = workflow.WithActivityOptions(bctx, workflow.ActivityOptions{
		StartToCloseTimeout: 6 * time.Hour, HeartbeatTimeout: heartbeatOrDefault(o.in.HeartbeatTimeout), WaitForCancellation: true,
		RetryPolicy: mailboxRetry(),
	})
	o.p.MailboxesRunning = want
	defer func() { o.p.MailboxesRunning = 0 }()
	var a *activities.Activities
	var briefs []activities.ReadinessBrief
	err := workflow.ExecuteActivity(bctx, a.CheckReadinessBatch, in).Get(ctx, &briefs)
	switch {
	case temporal.IsCanceledError(err):
		return nil, err
	case err != nil:
		return nil, errBatch{err}
	case len(briefs) != want:
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("readiness of %d mailboxes from %d returned %d results", want, in.Offset+1, len(briefs)), activities.ErrTypeConfig, nil)
	}
	return briefs, nil
}

// stopBatch cancels the readiness batch under way; it only reads, so the
// page is simply checked again later.
func (o *organization) stopBatch() {
	if o.cancelBatch != nil {
		o.cancelBatch()
		o.cancelBatch = nil
	}
}
