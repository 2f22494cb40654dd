package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// recheckUnchanged asks again, a page at a time, whether the mailboxes
// readiness found unchanged still are. One that changed loses the mark and
// takes the passes still to come like any other. With book (after the
// routing switch: no more mail reaches the source), one that still is
// unchanged is booked as validated with its sealed result, which is what
// its last validation found. A page whose check fails as a whole is taken
// as changed: the passes are always safe, only slower.
func (o *organization) recheckUnchanged(ctx workflow.Context, book bool) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: heartbeatOrDefault(o.in.HeartbeatTimeout),
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: activities.NonRetryable},
	})
	var a *activities.Activities
	p := &o.p
	for o.steps.position() < o.total {
		if o.rollingBack() {
			return nil
		}
		if o.shouldContinueAsNew(ctx) {
			return errContinueAsNew
		}
		end := min(o.steps.position()+inventoryPage, o.total)
		var idx []int
		in := activities.UnchangedInput{
			Org: o.in.Code, SourceEndpoint: o.in.SourceEndpoint, TargetEndpoint: o.in.TargetEndpoint,
			Policy: o.in.Policy, Parallel: p.Concurrency,
		}
		for i := o.steps.position(); i < end; i++ {
			if !o.table.isUnchanged(i) || o.table.state(i) != mbActive {
				continue
			}
			spec, err := o.table.spec(ctx, i)
			if err != nil {
				return err
			}
			idx = append(idx, i)
			in.Mailboxes = append(in.Mailboxes, spec)
		}
		if len(idx) > 0 {
			var briefs []activities.UnchangedBrief
			err := workflow.ExecuteActivity(actx, a.CheckUnchanged, in).Get(ctx, &briefs)
			if err != nil || len(briefs) != len(idx) {
				workflow.GetLogger(ctx).Warn("unchanged mailboxes could not be checked again; they take the passes", "error", err)
				briefs = make([]activities.UnchangedBrief, len(idx))
			}
			for k, i := range idx {
				if o.table.state(i) != mbActive {
					continue // failed or skipped meanwhile
				}
				b := briefs[k]
				if !b.Unchanged || b.Validation == nil {
					o.forgetUnchanged(i)
					continue
				}
				if book {
					o.bookSealed(i, in.Mailboxes[k].Address, *b.Validation)
				}
			}
			o.progressed(ctx)
		}
		o.steps.moveTo(end)
	}
	o.steps.moveTo(0)
	return nil
}

// forgetUnchanged takes mailbox i's unchanged mark away: it changed, or
// an operator skipped or retried it (a retried mailbox takes every pass
// still to come, so mail that came meanwhile is copied).
func (o *organization) forgetUnchanged(i int) {
	if o.table.isUnchanged(i) {
		o.table.unmarkUnchanged(i)
		o.p.MailboxesUnchanged--
	}
}

// bookSealed books an unchanged mailbox as its last validation found it.
func (o *organization) bookSealed(i int, address string, v activities.ValidateResult) {
	o.markCopied(i)
	o.setSkips(i, skipCount{Total: v.Skipped, ByReason: v.SkippedByReason, Staged: v.Staged})
	out := MailboxOutcome{Index: i, Pass: PassValidate, Address: address, ValidationLevel: v.Level}
	out.Consistency, out.Rules = Score(v)
	o.bookValidation(out)
}
