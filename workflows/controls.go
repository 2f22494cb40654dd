package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// registerControls installs the operator updates. Validators run before
// anything is written to history, so a refused control leaves no trace but
// its error to the caller.
func (o *organization) registerControls(ctx workflow.Context) error {
	p := &o.s.P
	who := func(a Approval) error {
		if strings.TrimSpace(a.Approver) == "" {
			return errors.New("approver is required (who approves, for the audit trail)")
		}
		return nil
	}
	notEnded := func() error {
		if p.Phase.Terminal() {
			return fmt.Errorf("organization %s has ended (%s)", o.in.Code, p.Phase)
		}
		if p.RollbackRequested != nil {
			return fmt.Errorf("organization %s is rolling back", o.in.Code)
		}
		return nil
	}
	approval := func(ctx workflow.Context, a Approval) Approval {
		a.At = workflow.Now(ctx)
		return a
	}
	handlers := []struct {
		name     string
		handler  any
		validate any
	}{
		{UpdateApproveCutover,
			func(ctx workflow.Context, a Approval) (Approval, error) {
				a = approval(ctx, a)
				p.Approval = &a
				o.logger.Info("cutover approved", "approver", a.Approver, "reason", a.Reason)
				o.publish(ctx)
				return a, nil
			},
			func(a Approval) error {
				if err := who(a); err != nil {
					return err
				}
				if p.Approval != nil {
					return fmt.Errorf("cutover already approved by %s", p.Approval.Approver)
				}
				if p.Phase != PhaseAwaitingCutover {
					return fmt.Errorf("organization %s is in phase %s; cutover can only be approved in %s", o.in.Code, p.Phase, PhaseAwaitingCutover)
				}
				return notEnded()
			}},
		{UpdateApproveSkippedItems,
			func(ctx workflow.Context, a Approval) (Approval, error) {
				a = approval(ctx, a)
				p.SkippedItemsApproval = &a
				o.logger.Info("skipped items approved", "approver", a.Approver, "reason", a.Reason)
				return a, nil
			},
			func(a Approval) error {
				if err := who(a); err != nil {
					return err
				}
				if p.Phase != PhaseAwaitingSkippedApproval {
					return fmt.Errorf("organization %s is in phase %s; skipped items are approved in %s (validation scored Investigate)", o.in.Code, p.Phase, PhaseAwaitingSkippedApproval)
				}
				return notEnded()
			}},
		{UpdateOverrideReadiness,
			func(ctx workflow.Context, a Approval) (Approval, error) {
				a = approval(ctx, a)
				p.ReadinessOverride = &a
				o.logger.Info("readiness overridden", "approver", a.Approver, "reason", a.Reason)
				return a, nil
			},
			func(a Approval) error {
				if err := who(a); err != nil {
					return err
				}
				if strings.TrimSpace(a.Reason) == "" {
					return errors.New("a reason is required to override readiness")
				}
				if p.Phase != PhaseReadinessBlocked {
					return fmt.Errorf("organization %s is in phase %s; readiness can only be overridden in %s", o.in.Code, p.Phase, PhaseReadinessBlocked)
				}
				return notEnded()
			}},
		{UpdateRollback,
			func(ctx workflow.Context, a Approval) (Approval, error) {
				a = approval(ctx, a)
				if p.RollbackRequested != nil {
					return *p.RollbackRequested, nil // two requests in one task: the first counts
				}
				p.RollbackRequested = &a
				o.stopBatch()
				o.logger.Info("rollback requested", "approver", a.Approver, "reason", a.Reason)
				return a, nil
			},
			func(a Approval) error {
				if err := who(a); err != nil {
					return err
				}
				return notEnded()
			}},
		{UpdateSetConcurrency,
			func(ctx workflow.Context, r ConcurrencyRequest) (int, error) {
				was := p.Concurrency
				p.Concurrency = r.Concurrency
				o.logger.Info("concurrency changed", "from", was, "to", r.Concurrency, "operator", r.Operator)
				return was, nil
			},
			func(r ConcurrencyRequest) error {
				if r.Concurrency < 1 || r.Concurrency > MaxConcurrency {
					return fmt.Errorf("concurrency %d is outside 1..%d", r.Concurrency, MaxConcurrency)
				}
				return notEnded()
			}},
		{UpdateSkipMailbox,
			func(ctx workflow.Context, c MailboxControl) (MailboxControlResult, error) {
				return o.controlMailbox(ctx, c, true)
			},
			func(c MailboxControl) error {
				if err := mailboxControlArgs(c); err != nil {
					return err
				}
				if o.pastSwitch() {
					return fmt.Errorf("organization %s is past its routing switch (%s): a mailbox can no longer be skipped; use %s", o.in.Code, p.Phase, UpdateRollback)
				}
				return notEnded()
			}},
		{UpdateRetryMailbox,
			func(ctx workflow.Context, c MailboxControl) (MailboxControlResult, error) {
				return o.controlMailbox(ctx, c, false)
			},
			func(c MailboxControl) error {
				if err := mailboxControlArgs(c); err != nil {
					return err
				}
				if o.pastSwitch() {
					return fmt.Errorf("organization %s is past its routing switch (%s): a mailbox retried now would miss the cutover", o.in.Code, p.Phase)
				}
				return notEnded()
			}},
	}
	for _, h := range handlers {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.handler, workflow.UpdateHandlerOptions{Validator: h.validate}); err != nil {
			return err
		}
	}
	return nil
}

func mailboxControlArgs(c MailboxControl) error {
	if !strings.Contains(c.Address, "@") {
		return fmt.Errorf("address %q is not an e-mail address", c.Address)
	}
	if strings.TrimSpace(c.Operator) == "" {
		return errors.New("operator is required (who does it, for the audit trail)")
	}
	return nil
}

var statusNames = map[byte]string{mbActive: "active", mbFailed: "failed", mbSkipped: "skipped", mbValidated: "validated"}

// controlMailbox skips a mailbox (stopping it if it runs) or puts a failed
// or skipped one back into the current and later passes.
func (o *organization) controlMailbox(ctx workflow.Context, c MailboxControl, skip bool) (MailboxControlResult, error) {
	i, err := o.find(ctx, c.Address)
	if err != nil {
		return MailboxControlResult{}, err
	}
	if i < 0 || i >= o.total {
		return MailboxControlResult{}, temporal.NewApplicationError(fmt.Sprintf("mailbox %s: inventory index %d is outside 0..%d", c.Address, i, o.total-1), activities.ErrTypeConfig)
	}
	p := &o.s.P
	// find may have waited for an activity: check again what the
	// validator checked.
	if o.pastSwitch() || p.Phase.Terminal() || p.RollbackRequested != nil {
		return MailboxControlResult{}, temporal.NewApplicationError(fmt.Sprintf("organization %s moved on to %s meanwhile: mailbox %s left as it was", o.in.Code, p.Phase, c.Address), "TooLate")
	}
	was := o.s.Status[i]
	res := MailboxControlResult{Address: c.Address, Index: i, Was: statusNames[was]}
	switch {
	case skip && was != mbSkipped:
		if was == mbFailed {
			p.MailboxesFailed--
			p.Failures = removeFailure(p.Failures, c.Address)
		} else if o.s.PassOpen && o.covers(i, p.Pass) && (i >= o.s.Next || o.inFlight(i)) {
			p.PassTotal-- // it will not finish this pass
		} else if o.checkingReadiness() && (i >= o.s.Cursor || slices.Contains(o.s.Requeue, i)) {
			p.PassTotal-- // its readiness will not be booked
		}
		o.s.Status[i] = mbSkipped
		p.MailboxesSkipped++
		o.cancelInFlight(ctx, func(f flight) bool { return f.Index == i })
		o.logger.Info("mailbox skipped", "mailbox", c.Address, "operator", c.Operator, "reason", c.Reason)
	case !skip && (was == mbFailed || was == mbSkipped):
		if was == mbFailed {
			p.MailboxesFailed--
			p.Failures = removeFailure(p.Failures, c.Address)
		} else {
			p.MailboxesSkipped--
		}
		o.s.Status[i] = mbActive
		if o.s.PassOpen && o.covers(i, p.Pass) {
			p.PassTotal++
			if i < o.s.Next {
				o.s.Requeue = append(o.s.Requeue, i)
			}
		} else if o.checkingReadiness() {
			// Checked again before the readiness phase ends.
			p.PassTotal++
			// One already waiting (skipped and retried while its check
			// ran) is checked once.
			if i < o.s.Cursor && !slices.Contains(o.s.Requeue, i) {
				o.s.Requeue = append(o.s.Requeue, i)
			}
		}
		o.logger.Info("mailbox retried", "mailbox", c.Address, "operator", c.Operator, "reason", c.Reason)
	case !skip:
		return res, temporal.NewApplicationError(fmt.Sprintf("mailbox %s is %s; only failed or skipped mailboxes can be retried", c.Address, statusNames[was]), "NotRetryable")
	}
	res.Now = statusNames[o.s.Status[i]]
	o.publish(ctx)
	return res, nil
}

func removeFailure(fs []MailboxFailure, address string) []MailboxFailure {
	out := fs[:0]
	for _, f := range fs {
		if !strings.EqualFold(f.Address, address) {
			out = append(out, f)
		}
	}
	return out
}

// find returns a mailbox's index: from the input, or by asking an activity
// to look through the staged inventory.
func (o *organization) find(ctx workflow.Context, address string) (int, error) {
	if o.in.Inventory == nil {
		for i, m := range o.in.Mailboxes {
			if strings.EqualFold(m.Address, address) {
				return i, nil
			}
		}
		return 0, temporal.NewApplicationError(fmt.Sprintf("mailbox %s is not in organization %s", address, o.in.Code), activities.ErrTypeNotFound)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: activities.NonRetryable},
	})
	var a *activities.Activities
	var i int
	err := workflow.ExecuteActivity(actx, a.FindMailbox, activities.FindMailboxInput{Ref: *o.in.Inventory, Address: address}).Get(ctx, &i)
	return i, err
}

// pastSwitch: mail already goes to the target, so mailboxes can no longer
// be skipped or retried.
func (o *organization) pastSwitch() bool {
	p := &o.s.P
	return o.s.Switched || p.Phase == PhaseValidation || p.Phase == PhaseAwaitingSkippedApproval
}
