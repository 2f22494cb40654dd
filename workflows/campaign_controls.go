package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// listen handles the organizations' reports and pause/resume as they come.
func (c *campaign) listen(ctx workflow.Context) {
	c.stopListening = listen(ctx, func(ctx workflow.Context, sel workflow.Selector) {
		sel.AddReceive(c.done, func(ch workflow.ReceiveChannel, _ bool) {
			var d OrganizationDone
			ch.Receive(ctx, &d)
			c.onDone(ctx, d)
		})
		sel.AddReceive(c.pause, func(ch workflow.ReceiveChannel, _ bool) {
			ch.Receive(ctx, nil)
			c.setPaused(ctx, true)
		})
		sel.AddReceive(c.resume, func(ch workflow.ReceiveChannel, _ bool) {
			ch.Receive(ctx, nil)
			c.setPaused(ctx, false)
		})
	})
}

// drain handles signals already delivered, which would otherwise be lost
// with the run; it reports whether there were any.
func (c *campaign) drain(ctx workflow.Context) bool {
	got := false
	for {
		var d OrganizationDone
		switch {
		case c.done.ReceiveAsync(&d):
			c.onDone(ctx, d)
		case c.pause.ReceiveAsync(nil):
			c.setPaused(ctx, true)
		case c.resume.ReceiveAsync(nil):
			c.setPaused(ctx, false)
		default:
			return got
		}
		got = true
	}
}

func (c *campaign) setPaused(ctx workflow.Context, paused bool) {
	if c.s.P.Paused == paused {
		return
	}
	c.s.P.Paused = paused
	signal := SignalResume
	if paused {
		signal = SignalPause
	}
	c.logger.Info("campaign "+signal+"d", "running", len(c.s.Running))
	for _, r := range c.s.Running {
		if r.Started {
			c.forward(ctx, r.Code, signal)
		}
	}
	c.show(ctx)
}

// forward signals an organization's workflow, whichever run is current.
func (c *campaign) forward(ctx workflow.Context, code, signal string) {
	c.pending++
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { c.pending-- }()
		if err := workflow.SignalExternalWorkflow(ctx, OrganizationWorkflowID(code), "", signal, nil).Get(ctx, nil); err != nil {
			c.logger.Warn("could not forward signal to organization", "org", code, "signal", signal, "error", err)
		}
	})
}

// setConcurrency changes how many organizations run at once.
func (c *campaign) setConcurrency(ctx workflow.Context, r ConcurrencyRequest) (int, error) {
	was := c.s.P.MaxRunning
	c.s.P.MaxRunning = r.Concurrency
	c.logger.Info("organizations at once changed", "from", was, "to", r.Concurrency, "operator", r.Operator)
	c.show(ctx)
	return was, nil
}

func (c *campaign) validateSetConcurrency(r ConcurrencyRequest) error {
	return r.check("organizations at once", MaxCampaignRunning)
}
