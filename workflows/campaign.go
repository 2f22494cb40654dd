package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/schedule"
)

func organizationDone(code string, p Progress, err error) OrganizationDone {
	d := OrganizationDone{Code: code, Phase: p.Phase, MailboxesTotal: p.MailboxesTotal,
		MailboxesDone: p.MailboxesDone, MailboxesFailed: p.MailboxesFailed, Reason: p.Reason}
	if err != nil {
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) {
			d.Error = "canceled"
		} else {
			d.Error = rootCause(err)
		}
	}
	return d
}

// notifyCampaign tells the campaign that started this organization (if
// one did) that the organization has ended, with its final progress and
// error. The Organization workflow calls it just before it returns, but
// not when it continues as new. The signal goes to the campaign's current
// run, so a campaign that continued as new since it started the
// organization still hears of it.
func notifyCampaign(ctx workflow.Context, p Progress, err error) {
	info := workflow.GetInfo(ctx)
	parent := info.ParentWorkflowExecution
	if parent == nil || !strings.HasPrefix(parent.ID, campaignIDPrefix) {
		return
	}
	code := p.Organization
	if code == "" { // the input was refused before progress was set up
		code = strings.TrimPrefix(info.WorkflowExecution.ID, OrganizationWorkflowID(""))
	}
	sctx, _ := workflow.NewDisconnectedContext(ctx)
	if serr := workflow.SignalExternalWorkflow(sctx, parent.ID, "", signalOrganizationDone, organizationDone(code, p, err)).Get(sctx, nil); serr != nil {
		workflow.GetLogger(ctx).Warn("could not report to the campaign", "campaign", parent.ID, "error", serr)
	}
}

// Campaign runs a migration programme: it lays its organizations onto a
// capacity calendar (schedule.PlanCampaign, in workflow code: the planner
// is pure) and starts each one's Organization workflow as a child on its
// planned day, in plan order, never more than MaxRunning at once.
//
// Children outlive the run that started them (ParentClosePolicy ABANDON),
// so the campaign can continue as new every OrgsPerRun starts. It learns
// an organization's end from the child's result while the run that
// started it lasts, and otherwise from the organization-done signal the
// Organization sends its parent campaign's current run (notifyCampaign).
// An organization whose workflow id already exists, running or closed, is
// recorded as AlreadyStarted and not started again.
//
// pause stops new starts and forwards pause to the running organizations;
// resume lifts it and forwards resume. Organizations whose day passed
// during a pause start on resume, MaxRunning at a time.
func Campaign(ctx workflow.Context, in CampaignInput) (CampaignProgress, error) {
	c := &campaign{in: in}
	if err := c.setup(ctx); err != nil {
		return c.s.P, err
	}
	p, err := c.run(ctx)
	if errors.Is(err, errContinueAsNew) {
		next := c.in
		st := c.s
		next.State = &st
		return p, workflow.NewContinueAsNewError(ctx, CampaignWorkflowName, next)
	}
	return p, err
}

type campaign struct {
	in     CampaignInput
	s      CampaignState
	logger log.Logger
	// stopListening ends the signal coroutine before a final drain (see listen).
	stopListening func(workflow.Context)
	loc           *time.Location
	plan          schedule.Plan
	byCode        map[string]int // organization code -> index in in.Organizations (lookups only)

	started int // organizations this run tried to start
	// pending counts child starts and forwarded signals not yet answered;
	// a run must not continue as new before they are.
	pending int

	done, pause, resume workflow.ReceiveChannel
}

func (c *campaign) setup(ctx workflow.Context) error {
	c.logger = log.With(workflow.GetLogger(ctx), "campaign", c.in.Name)
	config := func(err error) error {
		return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeConfig, nil)
	}
	if err := ValidateCampaignInput(c.in); err != nil {
		return config(err)
	}
	if c.in.MaxRunning == 0 {
		c.in.MaxRunning = DefaultCampaignMaxRunning
	}
	if c.in.OrgsPerRun == 0 {
		c.in.OrgsPerRun = DefaultOrgsPerRun
	}
	loc, err := c.in.Calendar.Location()
	if err != nil {
		return config(fmt.Errorf("campaign %s: calendar: %w", c.in.Name, err))
	}
	c.loc = loc
	if c.in.Calendar.Start.IsZero() {
		// Fixed now, and carried by continue-as-new, so every run plans alike.
		c.in.Calendar.Start = schedule.DateOf(workflow.Now(ctx).In(loc))
	}
	if c.plan, err = c.in.Plan(); err != nil {
		return config(err)
	}
	c.byCode = make(map[string]int, len(c.in.Organizations))
	for i, o := range c.in.Organizations {
		c.byCode[o.Code] = i
	}
	if c.in.State != nil {
		c.s = *c.in.State
		c.in.State = nil
	} else {
		c.s.P = CampaignProgress{
			Name: c.in.Name, Phase: CampaignPhaseRunning, MaxRunning: c.in.MaxRunning,
			Days: c.plan.Days(), FirstDay: c.in.Calendar.Start, LastDay: c.plan.LastDay(),
			Planned: len(c.plan.Orgs), MailboxesPlanned: c.plan.Mailboxes(),
			StartedAt: workflow.Now(ctx),
		}
	}
	c.s.P.Runs++
	c.done = workflow.GetSignalChannel(ctx, signalOrganizationDone)
	c.pause = workflow.GetSignalChannel(ctx, SignalPause)
	c.resume = workflow.GetSignalChannel(ctx, SignalResume)
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (CampaignProgress, error) { return c.s.P, nil }); err != nil {
		return err
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, UpdateSetConcurrency, c.setConcurrency,
		workflow.UpdateHandlerOptions{Validator: c.validateSetConcurrency})
	if err != nil {
		return err
	}
	c.listen(ctx)
	return nil
}

func (c *campaign) shouldContinueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return c.started >= c.in.OrgsPerRun || info.GetCurrentHistoryLength() >= historyBudget || info.GetContinueAsNewSuggested()
}

func (c *campaign) run(ctx workflow.Context) (CampaignProgress, error) {
	c.setNext()
	c.publish(ctx)
	p := &c.s.P
	for c.s.Next < len(c.plan.Orgs) {
		if c.shouldContinueAsNew(ctx) {
			return c.continueAsNew(ctx)
		}
		a := c.plan.Orgs[c.s.Next]
		at := a.Day.In(c.loc)
		if now := workflow.Now(ctx); now.Before(at) {
			c.show(ctx)
			if _, err := workflow.AwaitWithTimeout(ctx, at.Sub(now), func() bool { return c.shouldContinueAsNew(ctx) }); err != nil {
				return *p, err
			}
			continue
		}
		err := workflow.Await(ctx, func() bool {
			return c.shouldContinueAsNew(ctx) || (!p.Paused && len(c.s.Running) < p.MaxRunning)
		})
		if err != nil {
			return *p, err
		}
		if c.shouldContinueAsNew(ctx) {
			continue
		}
		c.start(ctx, a)
		c.s.Next++
		c.setNext()
	}
	c.show(ctx)
	err := workflow.Await(ctx, func() bool {
		return (len(c.s.Running) == 0 && c.pending == 0) || c.shouldContinueAsNew(ctx)
	})
	if err != nil {
		return *p, err
	}
	if len(c.s.Running) > 0 || c.pending > 0 {
		return c.continueAsNew(ctx)
	}
	p.Phase = CampaignPhaseCompleted
	p.FinishedAt = workflow.Now(ctx)
	c.publish(ctx)
	c.logger.Info("campaign completed", "completed", p.Completed, "failed", p.Failed, "rolled_back", p.RolledBack, "already_started", p.AlreadyStarted)
	// Let an update that is being handled answer before the run closes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return *p, err
	}
	return *p, nil
}

// setNext shows which organization starts next, and when it is due.
func (c *campaign) setNext() {
	p := &c.s.P
	if c.s.Next >= len(c.plan.Orgs) {
		p.NextStartAt, p.NextOrg = time.Time{}, ""
		return
	}
	a := c.plan.Orgs[c.s.Next]
	p.NextStartAt, p.NextOrg = a.Day.In(c.loc), a.Code
}

func (c *campaign) continueAsNew(ctx workflow.Context) (CampaignProgress, error) {
	err := workflow.Await(ctx, func() bool { return c.pending == 0 && workflow.AllHandlersFinished(ctx) })
	if err != nil {
		return c.s.P, err
	}
	c.stopListening(ctx)
	for {
		err := workflow.Await(ctx, func() bool { return c.pending == 0 && workflow.AllHandlersFinished(ctx) })
		if err != nil {
			return c.s.P, err
		}
		if !c.drain(ctx) && c.pending == 0 {
			break
		}
	}
	c.logger.Info("continuing as new", "run", c.s.P.Runs, "next", c.s.Next, "running", len(c.s.Running),
		"history", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	return c.s.P, errContinueAsNew
}

// publish upserts the campaign's search attribute; once per run and at
// the end, to keep the history short.
func (c *campaign) publish(ctx workflow.Context) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, SAMigrationPhase.ValueSet(c.s.P.Phase)); err != nil {
		c.logger.Warn("upsert search attributes", "error", err)
	}
	c.show(ctx)
}

// show sets the Web UI's current details (no history event).
func (c *campaign) show(ctx workflow.Context) {
	p := &c.s.P
	var b strings.Builder
	fmt.Fprintf(&b, "**Campaign %s** — %s", p.Name, p.Phase)
	if p.Paused {
		b.WriteString(" (paused)")
	}
	b.WriteString("\n\n| planned | started | running | completed | failed | rolled back | already started | mailboxes started |\n|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d | %d of %d |\n", p.Planned, p.Started, p.Running, p.Completed, p.Failed, p.RolledBack, p.AlreadyStarted, p.MailboxesStarted, p.MailboxesPlanned)
	fmt.Fprintf(&b, "\n%d days, %s to %s; at most %d organizations at once.\n", p.Days, p.FirstDay, p.LastDay, p.MaxRunning)
	if !p.NextStartAt.IsZero() {
		fmt.Fprintf(&b, "\nNext: %s at %s.\n", p.NextOrg, p.NextStartAt.Format(time.RFC3339))
	}
	workflow.SetCurrentDetails(ctx, b.String())
}
