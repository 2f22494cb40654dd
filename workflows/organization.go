package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// Defaults and bounds of an organization's run.
const (
	DefaultConcurrency     = 8
	MaxConcurrency         = 1000
	DefaultMailboxesPerRun = 500
	// DefaultLocalPassBudget is how long a pass first runs as a local
	// activity: a mailbox of a few MB is done well inside it, and it stays
	// under the SDK's workflow task heartbeat (8 s of the 10 s timeout), so
	// a local pass never costs an extra workflow task.
	DefaultLocalPassBudget = 5 * time.Second
	// DefaultLocalPassMaxBytes is the largest mailbox (by readiness) whose
	// passes run locally first: 20 MB is a second or two even over a WAN.
	DefaultLocalPassMaxBytes = 20 << 20
	// inventoryPage is how many mailboxes one ListMailboxes call returns,
	// and how many addresses one routing call carries.
	inventoryPage = 500
	// historyBudget is the event count at which a run continues as new even
	// if it has not started MailboxesPerRun mailboxes (updates, delta rounds).
	historyBudget = 8000
)

// Organization migrates one organization: readiness -> pre-stage ->
// (delta passes until approved and inside the cutover window) -> cutover
// (final pass, routing switch, post-switch pass) -> validation, and rolls
// back on a Poor score or an operator's rollback.
//
// Mailboxes run as Mailbox child workflows through a sliding window
// (passWindow). A child reports its pass through its result while the run
// that started it lasts, and by signal to whichever run is current once
// that run has continued as new: children outlive the run that started
// them (ParentClosePolicy ABANDON), so the organization continues as new
// every MailboxesPerRun mailboxes without waiting for the slowest ones.
func Organization(ctx workflow.Context, in OrganizationInput) (Progress, error) {
	o := &organization{in: in}
	if err := o.setup(ctx); err != nil {
		notifyCampaign(ctx, o.p, err)
		return o.p, err
	}
	p, err := o.run(ctx)
	if errors.Is(err, errContinueAsNew) {
		next := o.in
		st := o.carried()
		next.State = &st
		return p, workflow.NewContinueAsNewError(ctx, OrganizationWorkflowName, next)
	}
	notifyCampaign(ctx, p, err)
	if err == nil && o.live {
		// After the campaign heard the phase: it reads the same Progress
		// either way (campaign_orgs.go decodes this error).
		err = endedError(p)
	}
	return p, err
}

// organization is one run of an Organization workflow. It holds the
// policy (which phase and step comes next, what an outcome means); the
// mechanisms it drives have types of their own: the mailbox table, the
// pass window and the step runner.
type organization struct {
	in     OrganizationInput
	logger log.Logger

	// p is the progress query's answer and the result: counters, the
	// phase, and the operators' decisions (approvals, rollback).
	p      Progress
	table  *mailboxTable
	window *passWindow
	steps  steps

	lastDeltaAt time.Time
	// copyPassAt is when the last pre-stage or delta pass of this run
	// started (zero if it started in an earlier run): every mailbox it
	// copied is at least that fresh (see freshCopy).
	copyPassAt time.Time
	switched   bool // some address was switched to the target
	runs       int

	total  int
	paused bool
	// pause and resume are drained before continue-as-new like outcomes.
	pauseCh, resumeCh workflow.ReceiveChannel
	stopListening     func(workflow.Context)
	outcomes          workflow.ReceiveChannel
	cutoverWindow     *cutoverWindow

	// byResult: this run's mailboxes report through their result and may
	// run locally first (versionReportByResult). lean: versionLean. live:
	// versionLiveProgress.
	byResult, lean, live bool
	// truth: versionTruth.
	truth bool
	// opaqueIDs: Mailbox workflow ids are the target mailbox's key
	// (versionOpaqueIDs).
	opaqueIDs bool
	// sealed: versionSealed. freshRecheck: versionFreshRecheck.
	sealed, freshRecheck bool
	// listed is what the search attributes last said and listedAt when
	// (workflow time), so progress upserts them at a bounded rate (live).
	listed   listedValues
	listedAt time.Time
	// cancelBatch stops the readiness batch under way (pause, rollback).
	cancelBatch workflow.CancelFunc
	// chain is the first run id of this organization's continue-as-new
	// chain; outcomes of children started by another chain under the same
	// workflow id are ignored.
	chain string
}

func (o *organization) setup(ctx workflow.Context) error {
	o.logger = log.With(workflow.GetLogger(ctx), "org", o.in.Code)
	if err := ValidateOrganizationInput(o.in); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeConfig, nil)
	}
	o.applyDefaults()
	if o.in.CutoverWindow != "" {
		w, err := parseCutoverWindow(o.in.CutoverWindow)
		if err != nil {
			return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeConfig, nil)
		}
		o.cutoverWindow = w
	}
	o.total = o.in.MailboxCount()
	o.load(ctx, o.in.State)
	o.in.State = nil
	o.total += o.table.addedCount() // add-mailboxes of earlier runs
	o.runs++
	o.p.Runs = o.runs
	o.outcomes = workflow.GetSignalChannel(ctx, signalMailboxDone)
	o.readVersions(ctx)
	o.gaugePhase(ctx) // this run's worker may not be the last one's
	o.chain = workflow.GetInfo(ctx).FirstRunID
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return o.p, nil }); err != nil {
		return err
	}
	// A query is no command: every run answers it.
	if err := workflow.SetQueryHandler(ctx, QueryAddedMailboxes, func() ([]AddedMailboxes, error) {
		st := OrganizationState{Added: o.table.added}
		return st.AddedBatches(), nil
	}); err != nil {
		return err
	}
	if err := o.registerControls(ctx); err != nil {
		return err
	}
	o.listen(ctx)
	return nil
}

func (o *organization) applyDefaults() {
	if o.in.Concurrency == 0 {
		o.in.Concurrency = DefaultConcurrency
	}
	if o.in.ReadinessThreshold == 0 {
		o.in.ReadinessThreshold = 1
	}
	if o.in.Approval == "" {
		o.in.Approval = ApprovalAuto
	}
	if o.in.MailboxesPerRun == 0 {
		o.in.MailboxesPerRun = DefaultMailboxesPerRun
	}
	if o.in.LocalPassBudget == 0 {
		o.in.LocalPassBudget = DefaultLocalPassBudget
	}
	if o.in.LocalPassMaxBytes == 0 {
		o.in.LocalPassMaxBytes = DefaultLocalPassMaxBytes
	}
}

// phases is the organization's lifecycle: what each phase does. Every
// handler can be entered again by a later run after continue-as-new, so
// each records where it is (steps, the pass window, the table).
func (o *organization) phases() map[Phase]func(workflow.Context) error {
	return map[Phase]func(workflow.Context) error{
		"":                           o.begin,
		PhaseReadiness:               o.readiness,
		PhaseReadinessBlocked:        o.awaitReadinessOverride,
		PhasePreStage:                o.preStage,
		PhaseAwaitingCutover:         o.awaitCutover,
		PhaseCutover:                 o.cutover,
		PhaseValidation:              o.validation,
		PhaseAwaitingSkippedApproval: o.awaitSkippedItemsApproval,
	}
}

// run drives the phases until one is terminal, or the run continues as new.
func (o *organization) run(ctx workflow.Context) (Progress, error) {
	phases := o.phases()
	for !o.p.Phase.Terminal() {
		var err error
		if o.rollingBack() && o.p.Phase != PhaseRolledBack {
			err = o.rollback(ctx)
		} else if do, ok := phases[o.p.Phase]; ok {
			err = do(ctx)
		} else {
			err = fmt.Errorf("unknown phase %q", o.p.Phase)
		}
		if errors.Is(err, errContinueAsNew) {
			if err := o.prepareContinueAsNew(ctx); err != nil {
				return o.p, err
			}
			return o.p, errContinueAsNew
		}
		if err != nil {
			return o.p, err
		}
	}
	o.report(ctx)
	o.p.FinishedAt = workflow.Now(ctx)
	o.publish(ctx)
	// Let an update that is being handled answer before the run closes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return o.p, err
	}
	return o.p, nil
}

func (o *organization) setPhase(ctx workflow.Context, ph Phase) {
	o.p.Phase = ph
	o.p.PhaseStartedAt = workflow.Now(ctx)
	o.logger.Info("phase", "phase", ph)
	o.publish(ctx)
}

// rollingBack: a rollback was asked for (by an operator, a Poor score or
// a failed routing switch) and wins over every other step.
func (o *organization) rollingBack() bool { return o.p.RollbackRequested != nil }

// requestRollback rolls the organization back on mailshift's own account.
func (o *organization) requestRollback(ctx workflow.Context, reason string) {
	o.p.Reason = reason
	o.p.RollbackRequested = &Approval{Approver: "mailshift", Reason: reason, At: workflow.Now(ctx)}
}

// shouldContinueAsNew is checked between mailbox starts and at waits.
func (o *organization) shouldContinueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return o.window.startedHere() >= o.in.MailboxesPerRun || info.GetCurrentHistoryLength() >= historyBudget || info.GetContinueAsNewSuggested()
}

// report writes the per-mailbox reports (CSV and JSON) to the staging
// store. A failure to write them is recorded, not fatal: the migration
// itself is over.
func (o *organization) report(ctx workflow.Context) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour, HeartbeatTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: activities.NonRetryable},
	})
	in := activities.OrganizationReportInput{Org: o.in.Code, Inventory: o.in.Inventory}
	for _, m := range o.in.Mailboxes {
		in.Mailboxes = append(in.Mailboxes, m.Address)
	}
	for _, b := range o.table.added {
		rb := activities.ReportBatch{Inventory: b.Inventory}
		for _, m := range b.Mailboxes {
			rb.Mailboxes = append(rb.Mailboxes, m.Address)
		}
		in.Added = append(in.Added, rb)
	}
	// The store holds what finished; the table knows what failed for good
	// or was skipped. An activity's input is not compared on replay, so
	// every run hands them over, whatever its version.
	in.Statuses = string(o.table.status)
	for _, f := range o.p.Failures {
		in.Failures = append(in.Failures, activities.ReportFailure{Address: f.Address, Pass: string(f.Pass), Error: f.Error})
	}
	var a *activities.Activities
	var r activities.OrganizationReportResult
	if err := workflow.ExecuteActivity(actx, a.WriteOrganizationReport, in).Get(ctx, &r); err != nil {
		o.p.ReportError = rootCause(err)
		return
	}
	o.p.Reports = []string{r.CSV, r.SkippedCSV, r.JSON}
	if r.KeywordsCSV != "" {
		o.p.Reports = append(o.p.Reports, r.KeywordsCSV)
	}
	if o.truth && r.Counted {
		o.p.KeywordsDropped = r.KeywordsDropped
		// Pass results count what each finished attempt appended: an
		// attempt killed after appending is not counted, and a pass run
		// again after its result was lost may count twice. The ledgers
		// (and validations) say what is in the target.
		o.p.TargetMessages, o.p.TargetBytes = r.TargetMessages, r.TargetBytes
	}
}
