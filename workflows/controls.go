package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailshift/mailshift/activities"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// registerControls installs the operator updates: each is a handler method
// with a validator method of its own. Validators run before anything is
// written to history, so a refused control leaves no trace but its error
// to the caller. An argument with a field it does not have ("operatr") is
// refused by the validator, by name (see strictArgs); one that does not
// decode at all (a wrong type) is refused by the SDK before it.
func (o *organization) registerControls(ctx workflow.Context) error {
	updates := []struct {
		name               string
		handler, validator any
	}{
		{UpdateApproveCutover, o.approveCutover, o.validateApproveCutover},
		{UpdateApproveSkippedItems, o.approveSkippedItems, o.validateApproveSkippedItems},
		{UpdateOverrideReadiness, o.overrideReadiness, o.validateOverrideReadiness},
		{UpdateRollback, o.rollbackRequested, o.validateRollback},
		{UpdateSetConcurrency, o.setConcurrency, o.validateSetConcurrency},
		{UpdateSkipMailbox, o.skipMailbox, o.validateSkipMailbox},
		{UpdateRetryMailbox, o.retryMailbox, o.validateRetryMailbox},
		// Registering a handler is no command: old runs get it too, and
		// its validator refuses them (o.truth).
		{UpdateAddMailboxes, o.addMailboxes, o.validateAddMailboxes},
	}
	for _, u := range updates {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, workflow.UpdateHandlerOptions{Validator: u.validator}); err != nil {
			return err
		}
	}
	return nil
}

// record stamps an operator's decision with workflow time and keeps it in
// *slot, for the audit trail and the result.
func (o *organization) record(ctx workflow.Context, a Approval, slot **Approval, what string) Approval {
	a.At = workflow.Now(ctx)
	*slot = &a
	o.logger.Info(what, "approver", a.Approver, "reason", a.Reason)
	return a
}

// checkApproval is what every approval needs: a person, the phase the
// decision belongs to (wrongPhase says why otherwise), an organization
// still running, and a reason.
func (o *organization) checkApproval(a Approval, control string, phase Phase, wrongPhase func() error) error {
	if err := strictArgs(a.unknown, a); err != nil {
		return err
	}
	if err := requirePerson("approver", a.Approver); err != nil {
		return err
	}
	if phase != "" && o.p.Phase != phase {
		return wrongPhase()
	}
	if err := o.notEnded(); err != nil {
		return err
	}
	return requireReason(control, a.Reason)
}

// notEnded refuses a control on an organization that has ended or is
// rolling back.
func (o *organization) notEnded() error {
	if o.p.Phase.Terminal() {
		return refused("organization %s has ended (%s)", o.in.Code, o.p.Phase)
	}
	if o.rollingBack() {
		return refused("organization %s is rolling back", o.in.Code)
	}
	return nil
}

func (o *organization) approveCutover(ctx workflow.Context, a Approval) (Approval, error) {
	a = o.record(ctx, a, &o.p.Approval, "cutover approved")
	o.publish(ctx)
	return a, nil
}

func (o *organization) validateApproveCutover(a Approval) error {
	if err := strictArgs(a.unknown, a); err != nil {
		return err
	}
	if err := requirePerson("approver", a.Approver); err != nil {
		return err
	}
	if o.p.Approval != nil {
		return refused("cutover already approved by %s", o.p.Approval.Approver)
	}
	return o.checkApproval(a, UpdateApproveCutover, PhaseAwaitingCutover, func() error {
		return refused("organization %s is in phase %s; cutover can only be approved in %s", o.in.Code, o.p.Phase, PhaseAwaitingCutover)
	})
}

func (o *organization) approveSkippedItems(ctx workflow.Context, a Approval) (Approval, error) {
	return o.record(ctx, a, &o.p.SkippedItemsApproval, "skipped items approved"), nil
}

func (o *organization) validateApproveSkippedItems(a Approval) error {
	return o.checkApproval(a, UpdateApproveSkippedItems, PhaseAwaitingSkippedApproval, func() error {
		return refused("organization %s is in phase %s; skipped items are approved in %s (validation scored Investigate)", o.in.Code, o.p.Phase, PhaseAwaitingSkippedApproval)
	})
}

func (o *organization) overrideReadiness(ctx workflow.Context, a Approval) (Approval, error) {
	return o.record(ctx, a, &o.p.ReadinessOverride, "readiness overridden"), nil
}

func (o *organization) validateOverrideReadiness(a Approval) error {
	return o.checkApproval(a, UpdateOverrideReadiness, PhaseReadinessBlocked, func() error {
		return refused("organization %s is in phase %s; readiness can only be overridden in %s", o.in.Code, o.p.Phase, PhaseReadinessBlocked)
	})
}

func (o *organization) rollbackRequested(ctx workflow.Context, a Approval) (Approval, error) {
	if o.rollingBack() {
		return *o.p.RollbackRequested, nil // two requests in one task: the first counts
	}
	a = o.record(ctx, a, &o.p.RollbackRequested, "rollback requested")
	o.stopBatch()
	return a, nil
}

func (o *organization) validateRollback(a Approval) error {
	return o.checkApproval(a, UpdateRollback, "", nil)
}

func (o *organization) setConcurrency(ctx workflow.Context, r ConcurrencyRequest) (int, error) {
	was := o.p.Concurrency
	o.p.Concurrency = r.Concurrency
	o.logger.Info("concurrency changed", "from", was, "to", r.Concurrency, "operator", r.Operator)
	return was, nil
}

func (o *organization) validateSetConcurrency(r ConcurrencyRequest) error {
	if err := r.check("concurrency", MaxConcurrency); err != nil {
		return err
	}
	return o.notEnded()
}

// pastSwitch: mail already goes to the target, so mailboxes can no longer
// be skipped or retried.
func (o *organization) pastSwitch() bool {
	return o.switched || o.p.Phase == PhaseValidation || o.p.Phase == PhaseAwaitingSkippedApproval
}

func (o *organization) validateSkipMailbox(c MailboxControl) error {
	if err := checkMailboxControl(c); err != nil {
		return err
	}
	if o.pastSwitch() {
		return refused("organization %s is past its routing switch (%s): a mailbox can no longer be skipped; use %s", o.in.Code, o.p.Phase, UpdateRollback)
	}
	return o.notEnded()
}

func (o *organization) validateRetryMailbox(c MailboxControl) error {
	if err := checkMailboxControl(c); err != nil {
		return err
	}
	if o.pastSwitch() {
		return refused("organization %s is past its routing switch (%s): a mailbox retried now would miss the cutover", o.in.Code, o.p.Phase)
	}
	return o.notEnded()
}

func checkMailboxControl(c MailboxControl) error {
	if err := strictArgs(c.unknown, c); err != nil {
		return err
	}
	if !strings.Contains(c.Address, "@") {
		return refused("address %q is not an e-mail address", c.Address)
	}
	return requirePerson("operator", c.Operator)
}

// requirePerson: a control that records who did it needs the person.
func requirePerson(field, who string) error {
	if strings.TrimSpace(who) == "" {
		return refused("%s is required (who does it, for the audit trail)", field)
	}
	return nil
}

func requireReason(control, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return refused("a reason is required to %s (the change ticket, or why)", strings.ReplaceAll(control, "-", " "))
	}
	return nil
}

// controlTarget finds the mailbox a control names and checks, again, what
// its validator checked: the lookup may have waited for an activity.
func (o *organization) controlTarget(ctx workflow.Context, c MailboxControl) (int, MailboxControlResult, error) {
	i, err := o.table.find(ctx, o.in.Code, c.Address)
	if err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.NonRetryable() {
			return 0, MailboxControlResult{}, err
		}
		// The lookup's own failure (an activity timeout, say) is the
		// caller's answer, not something to retry as it stands.
		typ := activities.ErrTypeConfig
		if app != nil && app.Type() == activities.ErrTypeNotFound {
			typ = activities.ErrTypeNotFound
		}
		return 0, MailboxControlResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox %s: looking it up: %s", c.Address, rootCause(err)), typ, err)
	}
	if i < 0 || i >= o.total {
		return 0, MailboxControlResult{}, configError("mailbox %s: inventory index %d is outside 0..%d", c.Address, i, o.total-1)
	}
	if o.pastSwitch() || o.p.Phase.Terminal() || o.rollingBack() {
		return 0, MailboxControlResult{}, tooLate("organization %s moved on to %s meanwhile: mailbox %s left as it was", o.in.Code, o.p.Phase, c.Address)
	}
	return i, MailboxControlResult{Address: c.Address, Index: i, Was: statusNames[o.table.state(i)]}, nil
}

// skipMailbox takes a mailbox out of the migration, stopping it if it runs.
func (o *organization) skipMailbox(ctx workflow.Context, c MailboxControl) (MailboxControlResult, error) {
	i, res, err := o.controlTarget(ctx, c)
	if err != nil {
		return res, err
	}
	p := &o.p
	switch was := o.table.state(i); {
	case was == mbSkipped:
	case was == mbFailed:
		p.MailboxesFailed--
		p.Failures = removeFailure(p.Failures, c.Address)
	case o.window.isOpen() && o.covers(i, p.Pass) && (o.window.ahead(i) || o.window.running(i)):
		p.PassTotal-- // it will not finish this pass
	case o.checkingReadiness() && (i >= o.steps.position() || o.window.requeued(i)):
		p.PassTotal-- // its readiness will not be booked
	}
	if o.table.state(i) != mbSkipped {
		o.table.set(i, mbSkipped)
		o.uncopy(i)
		o.forgetUnchanged(i)
		p.MailboxesSkipped++
		o.window.cancel(ctx, func(f flight) bool { return f.Index == i })
		o.logger.Info("mailbox skipped", "mailbox", c.Address, "operator", c.Operator, "reason", c.Reason)
	}
	res.Now = statusNames[o.table.state(i)]
	o.publish(ctx)
	return res, nil
}

// stalesCopy: a mailbox retried or added now is not in the last copy pass
// unless one is under way, so the cutover must not skip its final pass.
func (o *organization) stalesCopy() {
	if !o.window.isOpen() || (o.p.Pass != PassPreStage && o.p.Pass != PassDelta) {
		o.copyPassAt = time.Time{}
	}
}

// retryMailbox puts a failed or skipped mailbox back into the current and
// later passes.
func (o *organization) retryMailbox(ctx workflow.Context, c MailboxControl) (MailboxControlResult, error) {
	i, res, err := o.controlTarget(ctx, c)
	if err != nil {
		return res, err
	}
	p := &o.p
	switch was := o.table.state(i); was {
	case mbFailed:
		p.MailboxesFailed--
		p.Failures = removeFailure(p.Failures, c.Address)
	case mbSkipped:
		p.MailboxesSkipped--
	default:
		return res, notRetryable("mailbox %s is %s; only failed or skipped mailboxes can be retried", c.Address, statusNames[was])
	}
	o.table.set(i, mbActive)
	o.forgetUnchanged(i)
	o.stalesCopy()
	if o.window.isOpen() && o.covers(i, p.Pass) {
		p.PassTotal++
		if !o.window.ahead(i) {
			o.window.reinstate(i)
		}
	} else if o.checkingReadiness() {
		// Checked again before the readiness phase ends.
		p.PassTotal++
		// One already waiting (skipped and retried while its check ran) is
		// checked once.
		if i < o.steps.position() && !o.window.requeued(i) {
			o.window.reinstate(i)
		}
	}
	o.logger.Info("mailbox retried", "mailbox", c.Address, "operator", c.Operator, "reason", c.Reason)
	res.Now = statusNames[o.table.state(i)]
	o.publish(ctx)
	return res, nil
}

// check is what every set-concurrency needs: known fields, a value in
// 1..most (what names the value in the refusal), and the operator.
func (r ConcurrencyRequest) check(what string, most int) error {
	if err := strictArgs(r.unknown, r); err != nil {
		return err
	}
	if r.Concurrency < 1 || r.Concurrency > most {
		return refused("%s %d is outside 1..%d", what, r.Concurrency, most)
	}
	return requirePerson("operator", r.Operator)
}

// validateAddMailboxes refuses what add-mailboxes cannot do, with the
// reason: a run that predates it, a bad list, a phase in which a new
// mailbox would miss what the others had (readiness under way) or the
// cutover (from the freeze on), a rollback or an end.
func (o *organization) validateAddMailboxes(r AddMailboxesRequest) error {
	if err := strictArgs(r.unknown, r); err != nil {
		return err
	}
	if err := requirePerson("operator", r.Operator); err != nil {
		return err
	}
	if !o.truth {
		return refused("organization %s runs on a version that cannot take new mailboxes; start them as an organization of their own once it has ended", o.in.Code)
	}
	if err := o.notEnded(); err != nil {
		return err
	}
	switch {
	case len(r.Mailboxes) == 0 && r.Inventory == nil:
		return refused("no mailboxes to add")
	case len(r.Mailboxes) > 0 && r.Inventory != nil:
		return refused("give mailboxes or inventory, not both")
	case r.Inventory != nil && (r.Inventory.Object == "" || r.Inventory.Count <= 0):
		return refused("inventory reference %+v names no object or no mailboxes", *r.Inventory)
	}
	seen := map[string]bool{}
	for _, m := range o.in.Mailboxes {
		seen[strings.ToLower(m.Address)] = true
	}
	for _, b := range o.table.added {
		for _, m := range b.Mailboxes {
			seen[strings.ToLower(m.Address)] = true
		}
	}
	for _, m := range r.Mailboxes {
		if err := ValidateMailboxSpec(m); err != nil {
			return refused("%v", err)
		}
		if seen[strings.ToLower(m.Address)] {
			return refused("mailbox %s is already in organization %s", m.Address, o.in.Code)
		}
		seen[strings.ToLower(m.Address)] = true
	}
	switch o.p.Phase {
	case PhasePreStage, PhaseAwaitingCutover:
		return nil
	case "", PhaseReadiness, PhaseReadinessBlocked:
		return refused("organization %s is in %s: mailboxes are added once pre-stage has begun (they skip readiness; a failed login fails them in their first pass)", o.in.Code, o.p.Phase)
	}
	return tooLate("organization %s is in %s: from the cutover's freeze on no mailbox can be added (it would miss the final pass or the routing switch); migrate it as an organization of its own", o.in.Code, o.p.Phase)
}

// addMailboxes appends the mailboxes to the table. They run in the pass
// under way (pre-stage walks the table up to its end) or, in
// AwaitingCutover, in the next delta pass or the final pass.
func (o *organization) addMailboxes(ctx workflow.Context, r AddMailboxesRequest) (AddMailboxesResult, error) {
	b := addedBatch{Mailboxes: r.Mailboxes, Inventory: r.Inventory}
	n := b.count()
	o.stalesCopy()
	first := o.table.add(b)
	o.total += n
	p := &o.p
	p.MailboxesTotal += n
	if o.window.isOpen() && (p.Pass == PassPreStage || p.Pass == PassDelta) {
		p.PassTotal += n
	}
	o.logger.Info("mailboxes added", "count", n, "first", first, "operator", r.Operator, "reason", r.Reason)
	o.publish(ctx)
	return AddMailboxesResult{Added: n, First: first, Total: o.total, Phase: p.Phase}, nil
}
