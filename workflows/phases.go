package workflows

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"
)

// What each phase of an Organization does (see organization.phases). A
// phase ends by setting the next one; the step runner and the pass window
// let a later run pick a phase up where an earlier one continued as new.

func (o *organization) begin(ctx workflow.Context) error {
	o.setPhase(ctx, PhaseReadiness)
	return nil
}

// readiness checks every mailbox, then goes on if enough are ready.
func (o *organization) readiness(ctx workflow.Context) error {
	var err error
	if o.lean && !o.window.isOpen() { // an open pass: begun by a run before versionLean
		err = o.readinessBatches(ctx)
	} else {
		err = o.runPass(ctx, PassReadiness)
	}
	if err != nil {
		return err
	}
	ready := o.table.count(mbActive)
	p := &o.p
	considered := o.total - p.MailboxesSkipped
	p.ReadinessScore = float64(ready) / float64(max(considered, 1))
	if ready > 0 && p.ReadinessScore >= o.in.ReadinessThreshold {
		o.setPhase(ctx, PhasePreStage)
		return nil
	}
	p.Reason = fmt.Sprintf("readiness %.1f%% (%d of %d mailboxes ready) is below the threshold %.1f%%; waiting for %s or %s",
		100*p.ReadinessScore, ready, o.total, 100*o.in.ReadinessThreshold, UpdateOverrideReadiness, UpdateRollback)
	if ready == 0 {
		p.Reason = fmt.Sprintf("no mailbox of %d is ready", o.total)
		o.setPhase(ctx, PhaseFailed)
		return nil
	}
	o.setPhase(ctx, PhaseReadinessBlocked)
	return nil
}

func (o *organization) awaitReadinessOverride(ctx workflow.Context) error {
	return o.awaitDecision(ctx, &o.p.ReadinessOverride, func() {
		o.p.Reason = ""
		o.setPhase(ctx, PhasePreStage)
	})
}

// awaitDecision waits for an operator's decision (*slot) or a rollback,
// and goes on with then once the decision is there.
func (o *organization) awaitDecision(ctx workflow.Context, slot **Approval, then func()) error {
	err := workflow.Await(ctx, func() bool { return *slot != nil || o.rollingBack() })
	if err == nil && !o.rollingBack() {
		then()
	}
	return err
}

// preStage copies every mailbox, then archives it if asked.
func (o *organization) preStage(ctx workflow.Context) error {
	done, err := o.runSteps(ctx,
		stepFunc{stepPreStage, func(ctx workflow.Context) error { return o.runPass(ctx, PassPreStage) }},
		stepFunc{stepArchive, func(ctx workflow.Context) error {
			if !o.in.Archive {
				return nil
			}
			return o.runPass(ctx, PassArchive)
		}},
	)
	if !done || err != nil {
		return err
	}
	if o.lean && !o.table.any(mbActive) {
		// A cutover would switch nothing: most likely the target is down.
		// Starting the organization again resumes it.
		p := &o.p
		p.Reason = fmt.Sprintf("no mailbox is left to cut over: %d failed, %d skipped by an operator", p.MailboxesFailed, p.MailboxesSkipped)
		o.setPhase(ctx, PhaseFailed)
		return nil
	}
	o.lastDeltaAt = workflow.Now(ctx)
	o.setPhase(ctx, PhaseAwaitingCutover)
	return nil
}

// awaitCutover runs delta passes every DeltaInterval until the cutover is
// approved and its window is open.
func (o *organization) awaitCutover(ctx workflow.Context) error {
	if o.window.isOpen() { // a delta pass interrupted by continue-as-new
		if err := o.deltaPass(ctx); err != nil {
			return err
		}
	}
	if o.in.Approval == ApprovalAuto && o.p.Approval == nil {
		o.p.Approval = &Approval{Approver: "auto", Reason: "organization set to auto-approve", At: workflow.Now(ctx)}
		o.publish(ctx)
	}
	for {
		if o.rollingBack() {
			return nil
		}
		if o.shouldContinueAsNew(ctx) {
			return errContinueAsNew
		}
		now := workflow.Now(ctx)
		open, nextOpen := true, time.Time{}
		if o.cutoverWindow != nil {
			open, nextOpen = o.cutoverWindow.at(now)
		}
		if o.p.Approval != nil && open {
			o.p.FrozenAt = now
			o.setPhase(ctx, PhaseCutover)
			return nil
		}
		o.p.CutoverWindowOpensAt = nextOpen
		var wait time.Duration
		if o.in.DeltaInterval > 0 {
			due := o.lastDeltaAt.Add(o.in.DeltaInterval)
			if !now.Before(due) {
				if err := o.deltaPass(ctx); err != nil {
					return err
				}
				continue
			}
			wait = due.Sub(now)
		}
		if o.p.Approval != nil && !nextOpen.IsZero() && (wait == 0 || nextOpen.Sub(now) < wait) {
			wait = nextOpen.Sub(now)
		}
		approved := o.p.Approval != nil
		cond := func() bool { return (o.p.Approval != nil) != approved || o.rollingBack() }
		if wait > 0 {
			if _, err := workflow.AwaitWithTimeout(ctx, wait, cond); err != nil {
				return err
			}
		} else if err := workflow.Await(ctx, cond); err != nil {
			return err
		}
	}
}

func (o *organization) deltaPass(ctx workflow.Context) error {
	if err := o.runPass(ctx, PassDelta); err != nil {
		return err
	}
	o.lastDeltaAt = workflow.Now(ctx)
	o.p.DeltaPasses++
	return nil
}

// cutover: final pass, staged imports, routing switch, post-switch pass.
func (o *organization) cutover(ctx workflow.Context) error {
	// skipFinal is asked by the recheck before the final pass and by the
	// pass itself; the copy pass it looks at is over by then, so both get
	// the same answer.
	skipFinal := func(ctx workflow.Context) bool { return o.sealed && o.freshCopy(ctx) }
	final := stepFunc{stepFinal, func(ctx workflow.Context) error {
		if skipFinal(ctx) {
			// The post-switch pass copies what came since, as it would
			// copy what came after a final pass.
			o.p.FinalPassSkipped = true
			return nil
		}
		return o.runPass(ctx, PassFinal)
	}}
	imports := stepFunc{stepImport, func(ctx workflow.Context) error {
		if !o.in.ImportStaged {
			return nil
		}
		return o.runPass(ctx, PassImport)
	}}
	switchRouting := stepFunc{stepSwitch, func(ctx workflow.Context) error { return o.route(ctx, false) }}
	postSwitch := stepFunc{stepPostSwitch, func(ctx workflow.Context) error { return o.runPass(ctx, PassPostSwitch) }}
	restore := stepFunc{stepRestoreFailedDirect, func(ctx workflow.Context) error {
		if !o.table.anyDirect() {
			return nil
		}
		return o.restoreFailedDirect(ctx)
	}}
	all := []stepFunc{final, imports, switchRouting, postSwitch, restore}
	if o.sealed {
		// Unchanged mailboxes are checked again before the final pass
		// (mail that came since readiness gets it) and after the switch
		// (mail that came before the switch gets the post-switch pass).
		all = []stepFunc{
			{stepRecheckFinal, func(ctx workflow.Context) error {
				if o.freshRecheck && skipFinal(ctx) {
					return nil // no final pass to send the changed ones to
				}
				return o.recheckUnchanged(ctx, false)
			}},
			final, imports, switchRouting,
			{stepRecheckSwitched, func(ctx workflow.Context) error { return o.recheckUnchanged(ctx, true) }},
			postSwitch, restore,
		}
	}
	done, err := o.runSteps(ctx, all...)
	if done && err == nil {
		o.setPhase(ctx, PhaseValidation)
	}
	return err
}

// freshCopyWindow: a cutover that starts within this of the start of the
// last copy pass skips the final pass (see freshCopy).
const freshCopyWindow = 5 * time.Minute

// freshCopy: the last pre-stage or delta pass started less than
// freshCopyWindow ago, in this run. Every mailbox it copied then holds all
// but a few minutes of its mail, and a final pass would only move those
// minutes before the switch instead of after it, at the price of a pass
// over every mailbox: an organization auto-approved with no window (most
// small ones) goes from pre-stage straight to the switch. A long pre-stage
// (a large organization) or a wait for approval makes the copy stale, and
// the final pass runs.
func (o *organization) freshCopy(ctx workflow.Context) bool {
	return !o.copyPassAt.IsZero() && workflow.Now(ctx).Sub(o.copyPassAt) < freshCopyWindow
}

func (o *organization) validation(ctx workflow.Context) error {
	p := &o.p
	// Lean runs validated in the post-switch pass; this pass checks only
	// mailboxes that check missed. A Poor score there needs no more.
	if !o.lean || p.Consistency != Poor || o.window.isOpen() {
		if err := o.runPass(ctx, PassValidate); err != nil {
			return err
		}
	}
	switch p.Consistency {
	case Poor:
		o.requestRollback(ctx, "validation scored Poor: "+o.rulesText())
		return nil
	case Investigate:
		p.Reason = fmt.Sprintf("validation scored Investigate (%s); waiting for %s or %s", o.rulesText(), UpdateApproveSkippedItems, UpdateRollback)
		o.setPhase(ctx, PhaseAwaitingSkippedApproval)
		return nil
	}
	o.complete(ctx)
	return nil
}

func (o *organization) awaitSkippedItemsApproval(ctx workflow.Context) error {
	return o.awaitDecision(ctx, &o.p.SkippedItemsApproval, func() { o.complete(ctx) })
}

func (o *organization) complete(ctx workflow.Context) {
	p := &o.p
	if p.MailboxesFailed > 0 {
		p.Reason = fmt.Sprintf("%d of %d mailboxes failed", p.MailboxesFailed, p.MailboxesTotal)
		o.setPhase(ctx, PhaseCompletedWithFailures)
		return
	}
	p.Reason = ""
	o.setPhase(ctx, PhaseCompleted)
}

// rollback stops running mailboxes, reverts the routing switch if it
// happened and ends the organization; the source was only ever read.
func (o *organization) rollback(ctx workflow.Context) error {
	o.window.cancel(ctx, func(flight) bool { return true })
	if err := workflow.Await(ctx, o.window.idle); err != nil {
		return err
	}
	o.window.end()
	if o.switched {
		o.steps.enter(stepRevert)
		if err := o.route(ctx, true); err != nil {
			return err
		}
		o.switched = false
		o.p.RoutingReverted = true
	}
	o.steps.clear()
	r := o.p.RollbackRequested
	o.p.Reason = fmt.Sprintf("rolled back by %s: %s", r.Approver, r.Reason)
	o.setPhase(ctx, PhaseRolledBack)
	return nil
}

// rulesText lists the consistency rules that fired, in a stable order.
func (o *organization) rulesText() string {
	ids := make([]string, 0, len(o.p.RulesFired))
	for id := range o.p.RulesFired {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		if id == RuleCompared {
			continue // what was compared, not a finding
		}
		parts = append(parts, fmt.Sprintf("%s in %d mailboxes", id, o.p.RulesFired[id]))
	}
	return strings.Join(parts, ", ")
}
