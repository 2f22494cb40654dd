package workflows

import "go.temporal.io/sdk/workflow"

// listen handles outcomes and the pause/resume signals as they come.
func (o *organization) listen(ctx workflow.Context) {
	pause := workflow.GetSignalChannel(ctx, SignalPause)
	resume := workflow.GetSignalChannel(ctx, SignalResume)
	o.pauseCh, o.resumeCh = pause, resume
	o.stopListening = listen(ctx, func(ctx workflow.Context, sel workflow.Selector) {
		sel.AddReceive(o.outcomes, func(c workflow.ReceiveChannel, _ bool) {
			var out MailboxOutcome
			c.Receive(ctx, &out)
			o.onOutcome(ctx, out)
		})
		sel.AddReceive(pause, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			o.pause(ctx)
		})
		sel.AddReceive(resume, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			o.resume(ctx)
		})
	})
}

// pause stops new mailboxes from starting and running ones at their next
// checkpoint; they start again on resume.
func (o *organization) pause(ctx workflow.Context) {
	if !o.paused {
		o.paused, o.p.Paused = true, true
		o.logger.Info("paused: stopping running mailboxes at their next checkpoint")
		o.window.cancel(ctx, func(flight) bool { return true })
		o.stopBatch()
		o.showPause(ctx)
	}
}

// resume lifts a pause.
func (o *organization) resume(ctx workflow.Context) {
	was := o.paused
	o.paused, o.p.Paused = false, false
	if was {
		o.showPause(ctx)
	}
}

// showPause puts a pause or resume in the list (MigrationPaused) and the
// details at once; runs before versionLiveProgress showed it only with
// the next phase change.
func (o *organization) showPause(ctx workflow.Context) {
	if o.live {
		o.publish(ctx)
	}
}

// prepareContinueAsNew brings the run to a point where nothing is lost
// with it: every child start answered, every update finished, the
// children it started told to report to the next run, and every signal
// already delivered handled.
func (o *organization) prepareContinueAsNew(ctx workflow.Context) error {
	settled := func() bool { return o.window.startsConfirmed() && workflow.AllHandlersFinished(ctx) }
	if err := workflow.Await(ctx, settled); err != nil {
		return err
	}
	if err := o.window.handOver(ctx); err != nil {
		return err
	}
	// An update that came while the hand-over was answered must finish
	// in this run, or its caller gets an error.
	if err := workflow.Await(ctx, settled); err != nil {
		return err
	}
	o.stopListening(ctx)
	o.drainSignals(ctx)
	o.drainOutcomes(ctx)
	o.p.Paused = o.paused
	o.logger.Info("continuing as new", "run", o.runs, "history", workflow.GetInfo(ctx).GetCurrentHistoryLength(), "in_flight", o.window.size())
	return nil
}

// drainSignals handles pause and resume signals already delivered, in the
// order pause-then-resume cannot be told apart from here, so a pending
// pause wins: the next run starts paused and an operator resumes it.
func (o *organization) drainSignals(ctx workflow.Context) {
	resumed := o.resumeCh.ReceiveAsync(nil)
	paused := o.pauseCh.ReceiveAsync(nil)
	for o.pauseCh.ReceiveAsync(nil) {
	}
	for o.resumeCh.ReceiveAsync(nil) {
	}
	if resumed {
		o.resume(ctx)
	}
	if paused {
		o.pause(ctx)
	}
}

// drainOutcomes handles outcomes already delivered; a run calls it before
// it continues as new, or they would be lost with the run.
func (o *organization) drainOutcomes(ctx workflow.Context) {
	for {
		var out MailboxOutcome
		if !o.outcomes.ReceiveAsync(&out) {
			return
		}
		o.onOutcome(ctx, out)
	}
}
