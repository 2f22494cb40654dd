package workflows

import (
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/internal/schedule"
)

// start starts an organization's workflow as an abandoned child and books
// its end when the child's result arrives in this run.
func (c *campaign) start(ctx workflow.Context, a schedule.Assignment) {
	o := c.in.Organizations[c.byCode[a.Code]]
	in := c.in.OrgInput(o)
	c.s.Running = append(c.s.Running, campaignRun{Code: o.Code, Mailboxes: o.Mailboxes})
	c.s.P.Running = len(c.s.Running)
	c.record(CampaignOrgStatus{Code: o.Code, Wave: o.Wave, Mailboxes: o.Mailboxes, Day: a.Day,
		Status: CampaignOrgStarting, StartedAt: workflow.Now(ctx)})
	c.started++
	c.pending++
	sa := []temporal.SearchAttributeUpdate{
		SAOrganizationCode.ValueSet(o.Code),
		SAMigrationPhase.ValueSet("Scheduled"),
		SAMailboxesTotal.ValueSet(int64(o.Mailboxes)),
	}
	if o.Wave != "" {
		sa = append(sa, SAWave.ValueSet(o.Wave))
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        OrganizationWorkflowID(o.Code),
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON,
		// An organization that ran before, or runs now, is not migrated again.
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(sa...),
		StaticSummary:         fmt.Sprintf("Migrate %s (%d mailboxes): campaign %s, day %s", o.Code, o.Mailboxes, c.in.Name, a.Day),
	})
	c.logger.Info("starting organization", "org", o.Code, "mailboxes", o.Mailboxes, "day", a.Day.String())
	workflow.Go(ctx, func(ctx workflow.Context) {
		f := workflow.ExecuteChildWorkflow(cctx, OrganizationWorkflowName, in)
		err := f.GetChildWorkflowExecution().Get(ctx, nil)
		c.pending--
		if err != nil {
			c.onStartFailed(ctx, o.Code, err)
			return
		}
		c.onStarted(ctx, o.Code, o.Mailboxes)
		var p Progress
		err = f.Get(ctx, &p)
		if ended, ok := OrganizationEnded(err); ok {
			// A rolled-back or failed organization (versionLiveProgress)
			// fails its workflow with its Progress as the error's details:
			// the same end as an older one's result, booked the same way.
			// Decoding the recorded failure is deterministic, and old
			// campaign histories never see this branch.
			p, err = ended, nil
		}
		c.onDone(ctx, organizationDone(o.Code, p, err))
	})
}

func (c *campaign) runIndex(code string) int {
	for i, r := range c.s.Running {
		if r.Code == code {
			return i
		}
	}
	return -1
}

func (c *campaign) dropRun(k int) {
	c.s.Running = append(c.s.Running[:k], c.s.Running[k+1:]...)
	c.s.P.Running = len(c.s.Running)
}

func (c *campaign) onStarted(ctx workflow.Context, code string, mailboxes int) {
	p := &c.s.P
	p.Started++
	p.MailboxesStarted += mailboxes
	k := c.runIndex(code)
	if k < 0 {
		return // its end was reported before its start was confirmed
	}
	c.s.Running[k].Started = true
	c.update(code, func(st *CampaignOrgStatus) { st.Status = CampaignOrgRunning })
	if p.Paused {
		c.forward(ctx, code, SignalPause)
	}
	c.show(ctx)
}

func (c *campaign) onStartFailed(ctx workflow.Context, code string, err error) {
	if k := c.runIndex(code); k >= 0 {
		c.dropRun(k)
	}
	now := workflow.Now(ctx)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		c.s.P.AlreadyStarted++
		c.logger.Info("organization already has a workflow: recorded, not started again", "org", code)
		c.update(code, func(st *CampaignOrgStatus) {
			st.Status, st.FinishedAt = CampaignOrgAlreadyStarted, now
			st.Reason = "workflow " + OrganizationWorkflowID(code) + " exists (running or closed); not started again"
		})
	} else {
		c.s.P.Failed++
		c.logger.Warn("organization could not be started", "org", code, "error", err)
		c.update(code, func(st *CampaignOrgStatus) {
			st.Status, st.FinishedAt, st.Reason = CampaignOrgStartFailed, now, rootCause(err)
		})
	}
	c.show(ctx)
}

// onDone books an organization's end, once: from its result or its signal,
// whichever comes first.
func (c *campaign) onDone(ctx workflow.Context, d OrganizationDone) {
	k := c.runIndex(d.Code)
	if k < 0 {
		return // reported twice, or not one of ours
	}
	c.dropRun(k)
	p := &c.s.P
	status, reason := string(d.Phase), d.Reason
	switch {
	case d.Error != "":
		p.Failed++
		status, reason = CampaignOrgFailed, d.Error
	case d.Phase == PhaseFailed:
		p.Failed++
	case d.Phase == PhaseRolledBack:
		p.RolledBack++
	case d.Phase == PhaseCompleted:
		p.Completed++
	case d.Phase == PhaseCompletedWithFailures:
		p.Completed++
		p.CompletedWithFailures++
	default:
		p.Failed++
		status, reason = CampaignOrgFailed, fmt.Sprintf("ended in phase %q", d.Phase)
	}
	c.logger.Info("organization ended", "org", d.Code, "status", status, "reason", reason)
	now := workflow.Now(ctx)
	c.update(d.Code, func(st *CampaignOrgStatus) {
		st.Status, st.Reason, st.FinishedAt = status, reason, now
	})
	c.show(ctx)
}

// record adds an organization to the bounded list of recent ones.
func (c *campaign) record(st CampaignOrgStatus) {
	orgs := c.s.P.Orgs
	if len(orgs) >= MaxCampaignOrgStatus {
		orgs = append(orgs[:0:0], orgs[len(orgs)-MaxCampaignOrgStatus+1:]...)
	}
	c.s.P.Orgs = append(orgs, st)
}

// update changes an organization's entry if it is still in the list.
func (c *campaign) update(code string, fn func(*CampaignOrgStatus)) {
	for i := len(c.s.P.Orgs) - 1; i >= 0; i-- {
		if c.s.P.Orgs[i].Code == code {
			fn(&c.s.P.Orgs[i])
			return
		}
	}
}
