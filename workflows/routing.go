package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// route switches (or reverts) delivery one inventory page of addresses at
// a time, so no activity input grows with the organization.
func (o *organization) route(ctx workflow.Context, revert bool) error {
	return o.routeWhere(ctx, revert, &o.p.RoutingChanged, func(i int) bool {
		// A revert covers every address, also mailboxes that failed
		// after the switch; routers revert idempotently, so addresses
		// never switched are left as they are.
		st := o.table.state(i)
		return revert || st == mbActive || st == mbValidated
	})
}

// restoreFailedDirect sends the mail of direct mailboxes whose post-switch
// pass failed back to the source: nothing of theirs was copied before the
// switch, so leaving them switched would leave their users without their
// mail. Every message is still on the source; the failure is reported.
func (o *organization) restoreFailedDirect(ctx workflow.Context) error {
	return o.routeWhere(ctx, true, &o.p.RoutingRestored, func(i int) bool {
		return o.table.isDirect(i) && o.table.state(i) == mbFailed
	})
}

// routeWhere switches (or reverts) the addresses of the mailboxes pick
// chooses, a page at a time from the step's cursor, and adds what the
// router changed to changed.
func (o *organization) routeWhere(ctx workflow.Context, revert bool, changed *int, pick func(i int) bool) error {
	retry := &temporal.RetryPolicy{MaximumAttempts: 10, NonRetryableErrorTypes: activities.NonRetryable}
	if revert {
		// Mail must go back to the source: keep trying (an unreachable
		// router is waited out, not given up on).
		retry = &temporal.RetryPolicy{MaximumInterval: 10 * time.Minute, NonRetryableErrorTypes: activities.NonRetryable}
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 5 * time.Minute, RetryPolicy: retry})
	var a *activities.Activities
	for o.steps.position() < o.total {
		if o.shouldContinueAsNew(ctx) {
			return errContinueAsNew
		}
		end := min(o.steps.position()+inventoryPage, o.total)
		var addrs []string
		for i := o.steps.position(); i < end; i++ {
			if pick(i) {
				spec, err := o.table.spec(ctx, i)
				if err != nil {
					return err
				}
				addrs = append(addrs, spec.Address)
			}
		}
		if len(addrs) > 0 {
			var rr activities.RoutingResult
			err := workflow.ExecuteActivity(actx, a.SwitchRouting, activities.RoutingInput{Org: o.in.Code, Addresses: addrs, Revert: revert}).Get(ctx, &rr)
			if err != nil {
				if revert {
					return err // a rollback must not end before delivery is back
				}
				o.steps.moveTo(0)
				// Addresses switched by earlier pages go back.
				o.requestRollback(ctx, "routing switch failed: "+rootCause(err))
				o.switched = true
				return nil
			}
			*changed += rr.Changed
			o.p.Routing = rr.Router
		}
		if !revert {
			o.switched = true
		}
		o.steps.moveTo(end)
	}
	o.steps.moveTo(0)
	return nil
}
