package workflows

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/transfer"
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

// Mailbox states, one byte per mailbox in OrganizationState.Status so that
// 50,000 mailboxes cost 50 KB of continue-as-new input.
const (
	mbActive    byte = 'a'
	mbFailed    byte = 'f'
	mbSkipped   byte = 's' // taken out by an operator
	mbValidated byte = 'v'
)

// OrganizationState is an organization's progress carried from one run to
// the next by continue-as-new. Operators never set it.
type OrganizationState struct {
	P      Progress `json:"progress"`
	Status []byte   `json:"status"`
	// Small has a bit per mailbox that readiness found small enough for
	// local passes (see LocalPassMaxBytes): 6 KB for 50,000 mailboxes.
	Small []byte `json:"small,omitempty"`
	// Direct has a bit per mailbox moved in the post-switch pass alone
	// (see DirectMaxBytes).
	Direct []byte `json:"direct,omitempty"`
	// The current pass: its sequence number (outcomes of older passes are
	// ignored), the next mailbox index to start, mailboxes to start again
	// first (paused, retried), and those started and not yet reported.
	PassSeq  int      `json:"pass_seq"`
	PassOpen bool     `json:"pass_open"`
	Next     int      `json:"next"`
	Requeue  []int    `json:"requeue,omitempty"`
	InFlight []flight `json:"in_flight,omitempty"`
	// Step is the position inside a multi-step phase; Cursor a mailbox
	// index inside a step that walks the inventory (routing).
	Step   string `json:"step,omitempty"`
	Cursor int    `json:"cursor,omitempty"`
	// SkipCounts packs each mailbox's latest skipped-item counts (see
	// skipSlots): a fixed 12 bytes a mailbox, allocated at the first skip,
	// so 50,000 mailboxes that all skipped something still fit a
	// continue-as-new input (a map would not).
	SkipCounts  []byte    `json:"skip_counts,omitempty"`
	LastDeltaAt time.Time `json:"last_delta_at,omitzero"`
	Switched    bool      `json:"switched,omitempty"`
	Runs        int       `json:"runs"`
}

type flight struct {
	Index   int    `json:"i"`
	Address string `json:"a"`
	Seq     int    `json:"s"`
	// RunID is the child's run once the server confirmed its start; a
	// cancel by workflow id alone could reach the mailbox's previous run.
	RunID     string `json:"r,omitempty"`
	Canceling bool   `json:"c,omitempty"`
}

type skipCount struct {
	Total    int            `json:"t"`
	ByReason map[string]int `json:"r,omitempty"`
	Staged   int            `json:"s,omitempty"`
}

// Organization migrates one organization: readiness -> pre-stage ->
// (delta passes until approved and inside the cutover window) -> cutover
// (final pass, routing switch, post-switch pass) -> validation, and rolls
// back on a Poor score or an operator's rollback.
//
// Mailboxes run as Mailbox child workflows through a sliding window. Each
// child reports its pass with a signal rather than through its future, so
// the organization can continue as new every MailboxesPerRun mailboxes
// without waiting for the slowest ones: children outlive the run that
// started them (ParentClosePolicy ABANDON) and signal whichever run is
// current.
func Organization(ctx workflow.Context, in OrganizationInput) (Progress, error) {
	o := &organization{in: in}
	if err := o.setup(ctx); err != nil {
		notifyCampaign(ctx, o.s.P, err)
		return o.s.P, err
	}
	p, err := o.run(ctx)
	if errors.Is(err, errContinueAsNew) {
		next := o.in
		st := o.s
		next.State = &st
		return p, workflow.NewContinueAsNewError(ctx, OrganizationWorkflowName, next)
	}
	notifyCampaign(ctx, p, err)
	return p, err
}

var errContinueAsNew = errors.New("continue as new")

// versionReportByResult marks the change from "every Mailbox workflow
// reports by signal" to "report through the result, by signal only when
// handed over", together with local first passes.
const versionReportByResult = "report-by-result"

// versionLean marks readiness checked in batches (no workflow per mailbox),
// validation inside the post-switch pass, and DirectMaxBytes: together they
// bring a small mailbox from five Mailbox workflows down to one or two.
const versionLean = "lean-lifecycle"

type organization struct {
	in     OrganizationInput
	s      OrganizationState
	logger log.Logger

	total  int
	paused bool
	// pause and resume are drained before continue-as-new like outcomes.
	pauseCh, resumeCh workflow.ReceiveChannel
	stopListening     func(workflow.Context)
	window            *cutoverWindow
	started           int // mailboxes started by this run
	// starting counts child starts not yet confirmed by the server; a run
	// must not continue as new before they are.
	starting int

	page       []MailboxSpec
	pageOffset int

	outcomes workflow.ReceiveChannel
	// byResult: this run's mailboxes report through their result and may
	// run locally first (versionReportByResult).
	byResult bool
	// lean: versionLean.
	lean bool
	// cancelBatch stops the readiness batch under way (pause, rollback).
	cancelBatch workflow.CancelFunc
	// mine are the mailbox passes (index, seq) this run started: they
	// report through their result unless handOver tells them otherwise.
	mine map[[2]int]bool
	// chain is the first run id of this organization's continue-as-new
	// chain; outcomes of children started by another chain under the same
	// workflow id are ignored.
	chain string
}

// ValidateOrganizationInput reports the first problem with an input, naming
// the field or mailbox; the starter calls it too, before starting anything.
func ValidateOrganizationInput(in OrganizationInput) error {
	if in.Code == "" {
		return errors.New("organization code is empty")
	}
	if strings.ContainsAny(in.Code, "/ \t") {
		return fmt.Errorf("organization code %q must not contain '/' or spaces", in.Code)
	}
	if in.SourceEndpoint == "" || in.TargetEndpoint == "" {
		return fmt.Errorf("organization %s: source and target endpoint names are required", in.Code)
	}
	switch {
	case len(in.Mailboxes) == 0 && in.Inventory == nil:
		return fmt.Errorf("organization %s: no mailboxes", in.Code)
	case len(in.Mailboxes) > 0 && in.Inventory != nil:
		return fmt.Errorf("organization %s: give mailboxes or inventory, not both", in.Code)
	case in.Inventory != nil && (in.Inventory.Object == "" || in.Inventory.Count <= 0):
		return fmt.Errorf("organization %s: inventory reference %+v names no object or no mailboxes", in.Code, *in.Inventory)
	}
	seen := map[string]bool{}
	for i, m := range in.Mailboxes {
		if err := ValidateMailboxSpec(m); err != nil {
			return fmt.Errorf("organization %s: mailbox %d: %w", in.Code, i+1, err)
		}
		key := strings.ToLower(m.Address)
		if seen[key] {
			return fmt.Errorf("organization %s: mailbox %s is listed twice", in.Code, m.Address)
		}
		seen[key] = true
	}
	if in.ReadinessThreshold < 0 || in.ReadinessThreshold > 1 {
		return fmt.Errorf("organization %s: readiness threshold %v is outside 0..1", in.Code, in.ReadinessThreshold)
	}
	switch in.Approval {
	case "", ApprovalAuto, ApprovalManual:
	default:
		return fmt.Errorf("organization %s: approval %q is not auto or manual", in.Code, in.Approval)
	}
	if in.Concurrency < 0 || in.Concurrency > MaxConcurrency {
		return fmt.Errorf("organization %s: concurrency %d is outside 1..%d", in.Code, in.Concurrency, MaxConcurrency)
	}
	if in.DeltaInterval < 0 {
		return fmt.Errorf("organization %s: delta interval %v is negative", in.Code, in.DeltaInterval)
	}
	if in.DirectMaxBytes < 0 {
		return fmt.Errorf("organization %s: direct_max_bytes %d is negative", in.Code, in.DirectMaxBytes)
	}
	if in.MailboxesPerRun < 0 {
		return fmt.Errorf("organization %s: mailboxes per run %d is negative", in.Code, in.MailboxesPerRun)
	}
	if in.CutoverWindow != "" {
		if _, err := parseCutoverWindow(in.CutoverWindow); err != nil {
			return fmt.Errorf("organization %s: cutover window: %w", in.Code, err)
		}
	}
	return nil
}

// ValidateMailboxSpec checks one inventory row.
func ValidateMailboxSpec(m MailboxSpec) error {
	switch {
	case m.Address == "" || !strings.Contains(m.Address, "@"):
		return fmt.Errorf("address %q is not an e-mail address", m.Address)
	case m.SourceUser == "" || m.TargetUser == "":
		return fmt.Errorf("mailbox %s: source_user and target_user are required", m.Address)
	}
	return nil
}

func (o *organization) setup(ctx workflow.Context) error {
	o.logger = log.With(workflow.GetLogger(ctx), "org", o.in.Code)
	if err := ValidateOrganizationInput(o.in); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeConfig, nil)
	}
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
	if o.in.CutoverWindow != "" {
		w, err := parseCutoverWindow(o.in.CutoverWindow)
		if err != nil {
			return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeConfig, nil)
		}
		o.window = w
	}
	o.total = o.in.MailboxCount()
	if o.in.State != nil {
		o.s = *o.in.State
		o.in.State = nil
		o.paused = o.s.P.Paused
	} else {
		now := workflow.Now(ctx)
		o.s = OrganizationState{
			P: Progress{
				Organization: o.in.Code, Name: o.in.Name, Wave: o.in.Wave,
				Concurrency: o.in.Concurrency, MailboxesTotal: o.total,
				StartedAt: now, PhaseStartedAt: now,
			},
			Status: make([]byte, o.total),
		}
		for i := range o.s.Status {
			o.s.Status[i] = mbActive
		}
	}
	o.s.Runs++
	o.s.P.Runs = o.s.Runs
	o.outcomes = workflow.GetSignalChannel(ctx, signalMailboxDone)
	o.mine = map[[2]int]bool{}
	// Runs recorded before mailboxes reported through their result keep
	// replaying as they ran: every child signals, and none runs locally.
	o.byResult = workflow.GetVersion(ctx, versionReportByResult, workflow.DefaultVersion, 1) >= 1
	o.lean = workflow.GetVersion(ctx, versionLean, workflow.DefaultVersion, 1) >= 1
	o.chain = workflow.GetInfo(ctx).FirstRunID
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return o.s.P, nil }); err != nil {
		return err
	}
	if err := o.registerControls(ctx); err != nil {
		return err
	}
	o.listen(ctx)
	return nil
}

// listen handles outcomes and the pause/resume signals as they come.
func (o *organization) listen(ctx workflow.Context) {
	pause := workflow.GetSignalChannel(ctx, SignalPause)
	resume := workflow.GetSignalChannel(ctx, SignalResume)
	o.pauseCh, o.resumeCh = pause, resume
	o.stopListening = listen(ctx, func(ctx workflow.Context, sel workflow.Selector) {
		sel.AddReceive(o.outcomes, func(c workflow.ReceiveChannel, _ bool) {
			var out MailboxOutcome
			c.Receive(ctx, &out)
			o.onOutcome(out)
		})
		sel.AddReceive(pause, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			o.pause(ctx)
		})
		sel.AddReceive(resume, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			o.paused, o.s.P.Paused = false, false
		})
	})
}

func (o *organization) pause(ctx workflow.Context) {
	if !o.paused {
		o.paused, o.s.P.Paused = true, true
		o.logger.Info("paused: stopping running mailboxes at their next checkpoint")
		o.cancelInFlight(ctx, func(flight) bool { return true })
		o.stopBatch()
	}
}

// stopBatch cancels the readiness batch under way; it only reads, so the
// page is simply checked again later.
func (o *organization) stopBatch() {
	if o.cancelBatch != nil {
		o.cancelBatch()
		o.cancelBatch = nil
	}
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
		o.paused, o.s.P.Paused = false, false
	}
	if paused {
		o.pause(ctx)
	}
}

// drainOutcomes handles outcomes already delivered; a run calls it before
// it continues as new, or they would be lost with the run.
func (o *organization) drainOutcomes() {
	for {
		var out MailboxOutcome
		if !o.outcomes.ReceiveAsync(&out) {
			return
		}
		o.onOutcome(out)
	}
}

// cancelInFlight asks running mailboxes to stop at their next checkpoint;
// each reports back as canceled and is started again later.
func (o *organization) cancelInFlight(ctx workflow.Context, which func(flight) bool) {
	for i := range o.s.InFlight {
		f := &o.s.InFlight[i]
		if f.Canceling || !which(*f) {
			continue
		}
		f.Canceling = true
		if f.RunID != "" { // otherwise start() cancels it once the start is confirmed
			workflow.RequestCancelExternalWorkflow(ctx, MailboxWorkflowID(o.in.Code, f.Address), f.RunID)
		}
	}
}

func (o *organization) setPhase(ctx workflow.Context, ph Phase) {
	o.s.P.Phase = ph
	o.s.P.PhaseStartedAt = workflow.Now(ctx)
	o.logger.Info("phase", "phase", ph)
	o.publish(ctx)
}

// publish upserts the search attributes and the Web UI's current details.
func (o *organization) publish(ctx workflow.Context) {
	sa := []temporal.SearchAttributeUpdate{
		SAOrganizationCode.ValueSet(o.in.Code),
		SAMigrationPhase.ValueSet(string(o.s.P.Phase)),
		SAWave.ValueSet(o.in.Wave),
		SAMailboxesTotal.ValueSet(int64(o.s.P.MailboxesTotal)),
		SAMailboxesDone.ValueSet(int64(o.s.P.MailboxesDone)),
		SAMailboxesFailed.ValueSet(int64(o.s.P.MailboxesFailed)),
		SABytesCopied.ValueSet(float64(o.s.P.Bytes)),
	}
	if a := o.s.P.Approval; a != nil {
		sa = append(sa, SACutoverApprovedBy.ValueSet(a.Approver))
	}
	if c := o.s.P.Consistency; c != "" {
		sa = append(sa, SAConsistency.ValueSet(string(c)))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, sa...); err != nil {
		o.logger.Warn("upsert search attributes", "error", err)
	}
	workflow.SetCurrentDetails(ctx, o.details())
}

// details is the markdown shown as "current details" in the Web UI.
func (o *organization) details() string {
	p := &o.s.P
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** %s — phase **%s**", o.in.Code, o.in.Name, p.Phase)
	if p.Paused {
		b.WriteString(" (paused)")
	}
	b.WriteString("\n\n| mailboxes | done | failed | skipped by operator | messages | MB | skipped items | consistency |\n|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %.1f | %d | %s |\n", p.MailboxesTotal, p.MailboxesDone, p.MailboxesFailed, p.MailboxesSkipped, p.Messages, float64(p.Bytes)/1e6, p.Skipped, p.Consistency)
	if p.Pass != "" {
		fmt.Fprintf(&b, "\nPass **%s**: %d of %d mailboxes, %d running.\n", p.Pass, p.PassDone, p.PassTotal, p.MailboxesRunning)
	}
	if a := p.Approval; a != nil {
		fmt.Fprintf(&b, "\nCutover approved by %s: %s\n", a.Approver, a.Reason)
	}
	if p.Reason != "" {
		fmt.Fprintf(&b, "\n%s\n", p.Reason)
	}
	return b.String()
}

// run drives the phases. Every step can be entered again by a later run
// after continue-as-new, so each one records where it is in o.s.
func (o *organization) run(ctx workflow.Context) (Progress, error) {
	for !o.s.P.Phase.Terminal() {
		var err error
		if o.s.P.RollbackRequested != nil && o.s.P.Phase != PhaseRolledBack {
			err = o.rollback(ctx)
		} else {
			err = o.step(ctx)
		}
		if err != nil {
			if errors.Is(err, errContinueAsNew) {
				if err := o.prepareContinueAsNew(ctx); err != nil {
					return o.s.P, err
				}
				return o.s.P, errContinueAsNew
			}
			return o.s.P, err
		}
	}
	o.report(ctx)
	o.s.P.FinishedAt = workflow.Now(ctx)
	o.publish(ctx)
	// Let an update that is being handled answer before the run closes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return o.s.P, err
	}
	return o.s.P, nil
}

// step runs (or resumes) the current phase.
func (o *organization) step(ctx workflow.Context) error {
	var err error
	switch o.s.P.Phase {
	case "":
		o.setPhase(ctx, PhaseReadiness)
	case PhaseReadiness:
		err = o.readiness(ctx)
	case PhaseReadinessBlocked:
		err = workflow.Await(ctx, func() bool {
			return o.s.P.ReadinessOverride != nil || o.s.P.RollbackRequested != nil
		})
		if err == nil && o.s.P.RollbackRequested == nil {
			o.s.P.Reason = ""
			o.setPhase(ctx, PhasePreStage)
		}
	case PhasePreStage:
		// Two steps, so a run that continues as new during the archive
		// pass resumes the archive, not the pre-stage.
		if o.s.Step == "" {
			o.s.Step = "prestage"
		}
		if o.s.Step == "prestage" {
			if err = o.runPass(ctx, PassPreStage); err == nil && o.s.P.RollbackRequested == nil {
				o.s.Step = "archive"
			}
		}
		if err == nil && o.s.Step == "archive" && o.in.Archive {
			err = o.runPass(ctx, PassArchive)
		}
		if err == nil && o.s.P.RollbackRequested == nil {
			o.s.Step = ""
			if o.lean && !slices.Contains(o.s.Status, mbActive) {
				// A cutover would switch nothing: most likely the target
				// is down. Starting the organization again resumes it.
				p := &o.s.P
				p.Reason = fmt.Sprintf("no mailbox is left to cut over: %d failed, %d skipped by an operator", p.MailboxesFailed, p.MailboxesSkipped)
				o.setPhase(ctx, PhaseFailed)
				break
			}
			o.s.LastDeltaAt = workflow.Now(ctx)
			o.setPhase(ctx, PhaseAwaitingCutover)
		}
	case PhaseAwaitingCutover:
		err = o.awaitCutover(ctx)
	case PhaseCutover:
		err = o.cutover(ctx)
	case PhaseValidation:
		err = o.validation(ctx)
	case PhaseAwaitingSkippedApproval:
		err = workflow.Await(ctx, func() bool {
			return o.s.P.SkippedItemsApproval != nil || o.s.P.RollbackRequested != nil
		})
		if err == nil && o.s.P.RollbackRequested == nil {
			o.complete(ctx)
		}
	default:
		err = fmt.Errorf("unknown phase %q", o.s.P.Phase)
	}
	return err
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
	var a *activities.Activities
	var r activities.OrganizationReportResult
	if err := workflow.ExecuteActivity(actx, a.WriteOrganizationReport, in).Get(ctx, &r); err != nil {
		o.s.P.ReportError = rootCause(err)
		return
	}
	o.s.P.Reports = []string{r.CSV, r.SkippedCSV, r.JSON}
}

func (o *organization) prepareContinueAsNew(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return o.starting == 0 && workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	if err := o.handOver(ctx); err != nil {
		return err
	}
	// An update that came while the hand-over was answered must finish
	// in this run, or its caller gets an error.
	if err := workflow.Await(ctx, func() bool { return o.starting == 0 && workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	o.stopListening(ctx)
	o.drainSignals(ctx)
	o.drainOutcomes()
	o.s.P.Paused = o.paused
	o.logger.Info("continuing as new", "run", o.s.Runs, "history", workflow.GetInfo(ctx).GetCurrentHistoryLength(), "in_flight", len(o.s.InFlight))
	return nil
}

// handOver tells the mailboxes this run started and that are still running
// to report to the next run by signal; their results would reach only this
// run. One that closed before the signal arrived reports here, through its
// result, and is waited for.
func (o *organization) handOver(ctx workflow.Context) error {
	type told struct {
		i, seq int
		sent   workflow.Future
	}
	var all []told
	for _, f := range o.s.InFlight {
		if o.mine[[2]int{f.Index, f.Seq}] {
			sent := workflow.SignalExternalWorkflow(ctx, MailboxWorkflowID(o.in.Code, f.Address), f.RunID, signalReportToCurrentRun, nil)
			all = append(all, told{f.Index, f.Seq, sent})
		}
	}
	for _, t := range all {
		if t.sent.Get(ctx, nil) == nil {
			continue
		}
		if err := workflow.Await(ctx, func() bool { return o.flightOf(t.i, t.seq) < 0 }); err != nil {
			return err
		}
	}
	return nil
}

// shouldContinueAsNew is checked between mailbox starts and at waits.
func (o *organization) shouldContinueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return o.started >= o.in.MailboxesPerRun || info.GetCurrentHistoryLength() >= historyBudget || info.GetContinueAsNewSuggested()
}

func (o *organization) readiness(ctx workflow.Context) error {
	var err error
	if o.lean && !o.s.PassOpen { // an open pass: begun by a run before versionLean
		err = o.readinessBatches(ctx)
	} else {
		err = o.runPass(ctx, PassReadiness)
	}
	if err != nil {
		return err
	}
	ready := 0
	for _, s := range o.s.Status {
		if s == mbActive {
			ready++
		}
	}
	p := &o.s.P
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

// readinessBatches checks the mailboxes a page at a time, each page in one
// CheckReadinessBatch activity: readiness only reads, so a Mailbox workflow
// per check would cost the server more than the check itself. A pause or
// rollback cancels the page under way; it is checked again on resume.
func (o *organization) readinessBatches(ctx workflow.Context) error {
	p := &o.s.P
	if o.s.Step != "readiness" {
		o.s.Step, o.s.Cursor, o.s.Requeue = "readiness", 0, nil
		o.openPass(ctx, PassReadiness)
	}
	for o.s.Cursor < o.total || len(o.s.Requeue) > 0 {
		if err := workflow.Await(ctx, func() bool { return !o.paused || p.RollbackRequested != nil }); err != nil {
			return err
		}
		if p.RollbackRequested != nil {
			return nil
		}
		if o.shouldContinueAsNew(ctx) {
			return errContinueAsNew
		}
		in := activities.ReadinessBatchInput{
			Org: o.in.Code, SourceEndpoint: o.in.SourceEndpoint, TargetEndpoint: o.in.TargetEndpoint,
			Policy: o.in.Policy, Parallel: p.Concurrency,
		}
		// The next page, or, once every page is done, the mailboxes an
		// operator retried meanwhile.
		var idx []int
		if o.s.Cursor < o.total {
			end := min(o.s.Cursor+inventoryPage, o.total)
			for i := o.s.Cursor; i < end; i++ {
				idx = append(idx, i)
			}
			in.Offset, in.Limit = o.s.Cursor, end-o.s.Cursor
			if o.in.Inventory != nil {
				in.Inventory = o.in.Inventory
			} else {
				in.Mailboxes = o.in.Mailboxes[o.s.Cursor:end]
			}
		} else {
			idx = o.s.Requeue[:min(len(o.s.Requeue), inventoryPage)]
			for _, i := range idx {
				spec, err := o.spec(ctx, i)
				if err != nil {
					return err
				}
				in.Mailboxes = append(in.Mailboxes, spec)
			}
		}
		briefs, err := o.checkReadiness(ctx, in, len(idx))
		if temporal.IsCanceledError(err) {
			continue // paused or rolled back: decided again at the top
		}
		if err != nil && !isBatchFailure(err) {
			return err
		}
		for k, i := range idx {
			if o.s.Status[i] != mbActive {
				continue // skipped by an operator meanwhile
			}
			out := MailboxOutcome{Index: i, Pass: PassReadiness}
			if err != nil {
				// The page could not be checked at all: its mailboxes fail,
				// the other pages go on.
				spec, serr := o.spec(ctx, i)
				if serr != nil {
					return serr
				}
				out.Address, out.Error = spec.Address, "readiness: "+rootCause(err)
			} else {
				b := briefs[k]
				out.Address, out.Ready, out.Problems = b.Address, b.Ready, b.Problems
				out.SourceMessages, out.SourceBytes, out.LargeItems = b.Messages, b.Bytes, b.LargeItems
				out.Error = b.Error
			}
			o.book(out)
		}
		if o.s.Cursor < o.total {
			o.s.Cursor += len(idx)
		} else {
			o.s.Requeue = o.s.Requeue[len(idx):]
		}
	}
	o.s.Requeue = nil
	o.s.Step, o.s.Cursor = "", 0
	p.Pass = ""
	return nil
}

// checkingReadiness: the readiness phase is checking pages (see
// readinessBatches); skip-mailbox and retry-mailbox adjust to it.
func (o *organization) checkingReadiness() bool {
	return o.s.Step == "readiness" && o.s.P.Phase == PhaseReadiness
}

// errBatch wraps the error of a readiness batch that failed as a whole.
type errBatch struct{ error }

func isBatchFailure(err error) bool {
	var b errBatch
	return errors.As(err, &b)
}

// checkReadiness runs one CheckReadinessBatch; a pause or rollback
// cancels it (see stopBatch).
func (o *organization) checkReadiness(ctx workflow.Context, in activities.ReadinessBatchInput, want int) ([]activities.ReadinessBrief, error) {
	bctx, cancel := workflow.WithCancel(ctx)
	o.cancelBatch = cancel
	defer o.stopBatch()
	bctx = workflow.WithActivityOptions(bctx, workflow.ActivityOptions{
		StartToCloseTimeout: 6 * time.Hour, HeartbeatTimeout: heartbeatOrDefault(o.in.HeartbeatTimeout), WaitForCancellation: true,
		RetryPolicy: mailboxRetry(),
	})
	o.s.P.MailboxesRunning = want
	defer func() { o.s.P.MailboxesRunning = 0 }()
	var a *activities.Activities
	var briefs []activities.ReadinessBrief
	err := workflow.ExecuteActivity(bctx, a.CheckReadinessBatch, in).Get(ctx, &briefs)
	switch {
	case temporal.IsCanceledError(err):
		return nil, err
	case err != nil:
		return nil, errBatch{err}
	case len(briefs) != want:
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("readiness of %d mailboxes from %d returned %d results", want, in.Offset+1, len(briefs)), activities.ErrTypeConfig, nil)
	}
	return briefs, nil
}

// awaitCutover runs delta passes every DeltaInterval until the cutover is
// approved and its window is open.
func (o *organization) awaitCutover(ctx workflow.Context) error {
	if o.s.PassOpen { // a delta pass interrupted by continue-as-new
		if err := o.deltaPass(ctx); err != nil {
			return err
		}
	}
	if o.in.Approval == ApprovalAuto && o.s.P.Approval == nil {
		o.s.P.Approval = &Approval{Approver: "auto", Reason: "organization set to auto-approve", At: workflow.Now(ctx)}
		o.publish(ctx)
	}
	for {
		if o.s.P.RollbackRequested != nil {
			return nil
		}
		if o.shouldContinueAsNew(ctx) {
			return errContinueAsNew
		}
		now := workflow.Now(ctx)
		open, nextOpen := true, time.Time{}
		if o.window != nil {
			open, nextOpen = o.window.at(now)
		}
		if o.s.P.Approval != nil && open {
			o.s.P.FrozenAt = now
			o.setPhase(ctx, PhaseCutover)
			return nil
		}
		o.s.P.CutoverWindowOpensAt = nextOpen
		var wait time.Duration
		if o.in.DeltaInterval > 0 {
			due := o.s.LastDeltaAt.Add(o.in.DeltaInterval)
			if !now.Before(due) {
				if err := o.deltaPass(ctx); err != nil {
					return err
				}
				continue
			}
			wait = due.Sub(now)
		}
		if o.s.P.Approval != nil && !nextOpen.IsZero() && (wait == 0 || nextOpen.Sub(now) < wait) {
			wait = nextOpen.Sub(now)
		}
		approved := o.s.P.Approval != nil
		cond := func() bool {
			return (o.s.P.Approval != nil) != approved || o.s.P.RollbackRequested != nil
		}
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
	o.s.LastDeltaAt = workflow.Now(ctx)
	o.s.P.DeltaPasses++
	return nil
}

// cutover: final pass, staged imports, routing switch, post-switch pass.
func (o *organization) cutover(ctx workflow.Context) error {
	steps := []struct {
		name string
		do   func(workflow.Context) error
	}{
		{"final", func(ctx workflow.Context) error { return o.runPass(ctx, PassFinal) }},
		{"import", func(ctx workflow.Context) error {
			if !o.in.ImportStaged {
				return nil
			}
			return o.runPass(ctx, PassImport)
		}},
		{"switch", func(ctx workflow.Context) error { return o.route(ctx, false) }},
		{"post-switch", func(ctx workflow.Context) error { return o.runPass(ctx, PassPostSwitch) }},
		{"restore-failed-direct", func(ctx workflow.Context) error {
			if len(o.s.Direct) == 0 {
				return nil
			}
			return o.restoreFailedDirect(ctx)
		}},
	}
	for i, st := range steps {
		if o.s.Step != "" && o.s.Step != st.name {
			continue // done by an earlier run
		}
		o.s.Step = st.name
		if err := st.do(ctx); err != nil {
			return err
		}
		if o.s.P.RollbackRequested != nil || o.s.P.Phase.Terminal() {
			return nil
		}
		o.s.Step = ""
		if i+1 < len(steps) {
			o.s.Step = steps[i+1].name
		}
	}
	o.s.Step = ""
	o.setPhase(ctx, PhaseValidation)
	return nil
}

// route switches (or reverts) delivery one inventory page of addresses at
// a time, so no activity input grows with the organization.
func (o *organization) route(ctx workflow.Context, revert bool) error {
	return o.routeWhere(ctx, revert, &o.s.P.RoutingChanged, func(i int) bool {
		// A revert covers every address, also mailboxes that failed
		// after the switch; routers revert idempotently, so addresses
		// never switched are left as they are.
		st := o.s.Status[i]
		return revert || st == mbActive || st == mbValidated
	})
}

// restoreFailedDirect sends the mail of direct mailboxes whose post-switch
// pass failed back to the source: nothing of theirs was copied before the
// switch, so leaving them switched would leave their users without their
// mail. Every message is still on the source; the failure is reported.
func (o *organization) restoreFailedDirect(ctx workflow.Context) error {
	return o.routeWhere(ctx, true, &o.s.P.RoutingRestored, func(i int) bool { return hasBit(o.s.Direct, i) && o.s.Status[i] == mbFailed })
}

// routeWhere switches (or reverts) the addresses of the mailboxes pick
// chooses, a page at a time, and adds what the router changed to changed.
func (o *organization) routeWhere(ctx workflow.Context, revert bool, changed *int, pick func(i int) bool) error {
	retry := &temporal.RetryPolicy{MaximumAttempts: 10, NonRetryableErrorTypes: activities.NonRetryable}
	if revert {
		// Mail must go back to the source: keep trying (an unreachable
		// router is waited out, not given up on).
		retry = &temporal.RetryPolicy{MaximumInterval: 10 * time.Minute, NonRetryableErrorTypes: activities.NonRetryable}
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 5 * time.Minute, RetryPolicy: retry})
	var a *activities.Activities
	for o.s.Cursor < o.total {
		if o.shouldContinueAsNew(ctx) {
			return errContinueAsNew
		}
		end := min(o.s.Cursor+inventoryPage, o.total)
		var addrs []string
		for i := o.s.Cursor; i < end; i++ {
			if pick(i) {
				spec, err := o.spec(ctx, i)
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
				o.s.P.Reason = "routing switch failed: " + rootCause(err)
				o.s.Cursor = 0
				// Addresses switched by earlier pages go back.
				o.s.P.RollbackRequested = &Approval{Approver: "mailshift", Reason: o.s.P.Reason, At: workflow.Now(ctx)}
				o.s.Switched = true
				return nil
			}
			*changed += rr.Changed
			o.s.P.Routing = rr.Router
		}
		if !revert {
			o.s.Switched = true
		}
		o.s.Cursor = end
	}
	o.s.Cursor = 0
	return nil
}

func (o *organization) validation(ctx workflow.Context) error {
	p := &o.s.P
	// Lean runs validated in the post-switch pass; this pass checks only
	// mailboxes that check missed. A Poor score there needs no more.
	if !o.lean || p.Consistency != Poor || o.s.PassOpen {
		if err := o.runPass(ctx, PassValidate); err != nil {
			return err
		}
	}
	switch p.Consistency {
	case Poor:
		p.Reason = "validation scored Poor: " + o.rulesText()
		p.RollbackRequested = &Approval{Approver: "mailshift", Reason: p.Reason, At: workflow.Now(ctx)}
		return nil
	case Investigate:
		p.Reason = fmt.Sprintf("validation scored Investigate (%s); waiting for %s or %s", o.rulesText(), UpdateApproveSkippedItems, UpdateRollback)
		o.setPhase(ctx, PhaseAwaitingSkippedApproval)
		return nil
	}
	o.complete(ctx)
	return nil
}

func (o *organization) complete(ctx workflow.Context) {
	p := &o.s.P
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
	o.cancelInFlight(ctx, func(flight) bool { return true })
	if err := workflow.Await(ctx, func() bool { return len(o.s.InFlight) == 0 && o.starting == 0 }); err != nil {
		return err
	}
	o.s.PassOpen = false
	if o.s.Switched {
		if o.s.Step != "revert" {
			o.s.Step, o.s.Cursor = "revert", 0
		}
		if err := o.route(ctx, true); err != nil {
			return err
		}
		o.s.Switched = false
		o.s.P.RoutingReverted = true
	}
	o.s.Step = ""
	r := o.s.P.RollbackRequested
	o.s.P.Reason = fmt.Sprintf("rolled back by %s: %s", r.Approver, r.Reason)
	o.setPhase(ctx, PhaseRolledBack)
	return nil
}

func (o *organization) rulesText() string {
	ids := make([]string, 0, len(o.s.P.RulesFired))
	for id := range o.s.P.RulesFired {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s in %d mailboxes", id, o.s.P.RulesFired[id]))
	}
	return strings.Join(parts, ", ")
}

// spec returns mailbox i, from the input or from a staged inventory page.
func (o *organization) spec(ctx workflow.Context, i int) (MailboxSpec, error) {
	if o.in.Inventory == nil {
		return o.in.Mailboxes[i], nil
	}
	if i >= o.pageOffset && i < o.pageOffset+len(o.page) {
		return o.page[i-o.pageOffset], nil
	}
	off := i / inventoryPage * inventoryPage
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 20, NonRetryableErrorTypes: activities.NonRetryable},
	})
	var a *activities.Activities
	var page []MailboxSpec
	if err := workflow.ExecuteActivity(actx, a.ListMailboxes, activities.ListMailboxesInput{Ref: *o.in.Inventory, Offset: off, Limit: inventoryPage}).Get(ctx, &page); err != nil {
		return MailboxSpec{}, err
	}
	if i-off >= len(page) {
		return MailboxSpec{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("inventory %s has %d mailboxes, not %d", o.in.Inventory.Object, off+len(page), o.total), activities.ErrTypeConfig, nil)
	}
	o.page, o.pageOffset = page, off
	return page[i-off], nil
}

// runPass runs one Mailbox workflow per active mailbox through a window of
// Concurrency; pause and set-concurrency take effect at once. A failed
// mailbox is recorded and never stops the others.
func (o *organization) runPass(ctx workflow.Context, pass Pass) error {
	p := &o.s.P
	if o.s.PassOpen && p.Pass != pass {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("pass %s is open; cannot start %s", p.Pass, pass), activities.ErrTypeConfig, nil)
	}
	if !o.s.PassOpen {
		o.s.PassSeq++
		o.s.PassOpen, o.s.Next, o.s.Requeue = true, 0, nil
		o.openPass(ctx, pass)
	}
	for {
		var next int
		err := workflow.Await(ctx, func() bool {
			if o.s.P.RollbackRequested != nil || o.shouldContinueAsNew(ctx) {
				return true
			}
			next = o.nextToStart()
			if next < 0 {
				return len(o.s.InFlight) == 0 && o.starting == 0
			}
			return !o.paused && len(o.s.InFlight) < o.s.P.Concurrency
		})
		if err != nil {
			return err
		}
		if o.s.P.RollbackRequested != nil {
			return nil
		}
		if o.shouldContinueAsNew(ctx) {
			return errContinueAsNew
		}
		if next < 0 {
			break
		}
		if err := o.start(ctx, next, pass); err != nil {
			return err
		}
	}
	o.s.PassOpen = false
	p.Pass = ""
	return nil
}

// openPass resets the pass's progress to the mailboxes it covers and
// shows it.
func (o *organization) openPass(ctx workflow.Context, pass Pass) {
	p := &o.s.P
	p.Pass, p.PassDone, p.PassTotal = pass, 0, 0
	for i := range o.s.Status {
		if o.covers(i, pass) {
			p.PassTotal++
		}
	}
	o.publish(ctx)
}

// covers: mailbox i takes part in pass. Direct mailboxes are moved by the
// post-switch pass alone.
func (o *organization) covers(i int, pass Pass) bool {
	if o.s.Status[i] != mbActive {
		return false
	}
	switch pass {
	case PassPreStage, PassDelta, PassFinal, PassImport:
		return !hasBit(o.s.Direct, i)
	}
	return true
}

func hasBit(bits []byte, i int) bool { return i/8 < len(bits) && bits[i/8]&(1<<(i%8)) != 0 }

// setBit sets bit i of a bitmap of n bits, allocating it at the first bit.
func setBit(bits *[]byte, n, i int) {
	if len(*bits) == 0 {
		*bits = make([]byte, (n+7)/8)
	}
	(*bits)[i/8] |= 1 << (i % 8)
}

// nextToStart picks requeued mailboxes first, then the next index the
// open pass covers; -1 when the pass has nothing left to start.
func (o *organization) nextToStart() int {
	pass := o.s.P.Pass
	for len(o.s.Requeue) > 0 {
		i := o.s.Requeue[0]
		if o.covers(i, pass) && !o.inFlight(i) {
			return i
		}
		o.s.Requeue = o.s.Requeue[1:]
	}
	for o.s.Next < o.total && (!o.covers(o.s.Next, pass) || o.inFlight(o.s.Next)) {
		o.s.Next++
	}
	if o.s.Next < o.total {
		return o.s.Next
	}
	return -1
}

func (o *organization) inFlight(i int) bool {
	for _, f := range o.s.InFlight {
		if f.Index == i {
			return true
		}
	}
	return false
}

func (o *organization) start(ctx workflow.Context, i int, pass Pass) error {
	spec, err := o.spec(ctx, i)
	if err != nil {
		return err
	}
	// spec may have run an activity: a skip, pause or rollback may have
	// come meanwhile. Then the caller decides again.
	if !o.covers(i, pass) || o.paused || o.s.P.RollbackRequested != nil || o.inFlight(i) {
		return nil
	}
	if len(o.s.Requeue) > 0 && o.s.Requeue[0] == i {
		o.s.Requeue = o.s.Requeue[1:]
	} else {
		o.s.Next = i + 1
	}
	seq := o.s.PassSeq
	o.s.InFlight = append(o.s.InFlight, flight{Index: i, Address: spec.Address, Seq: seq})
	o.s.P.MailboxesRunning = len(o.s.InFlight)
	o.started++
	o.s.P.MailboxRuns++
	o.starting++
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            MailboxWorkflowID(o.in.Code, spec.Address),
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// A canceled mailbox stops at a checkpoint and reports itself.
		WaitForCancellation: true,
		StaticSummary:       fmt.Sprintf("%s %s: %s", o.in.Code, spec.Address, pass),
	})
	in := MailboxInput{
		Mailbox: activities.MailboxRef{
			Org: o.in.Code, Address: spec.Address,
			SourceEndpoint: o.in.SourceEndpoint, SourceUser: spec.SourceUser,
			TargetEndpoint: o.in.TargetEndpoint, TargetUser: spec.TargetUser,
		},
		Pass:             pass,
		Policy:           o.in.Policy,
		HeartbeatTimeout: o.in.HeartbeatTimeout,
		RetainDays:       o.in.ArchiveRetainDays,
		LocalBudget:      o.localBudget(i, pass),
		Index:            i,
		Seq:              seq,
		Chain:            o.chain,
		ReportByResult:   o.byResult,
		Validate:         o.lean && pass == PassPostSwitch,
	}
	want := MailboxOutcome{Index: i, Seq: seq, Pass: pass, Address: spec.Address, Chain: in.Chain}
	workflow.Go(ctx, func(ctx workflow.Context) {
		started := false
		defer func() {
			if !started {
				o.starting--
			}
		}()
		for attempt := 1; ; attempt++ {
			fut := workflow.ExecuteChildWorkflow(cctx, MailboxWorkflowName, in)
			var exec workflow.Execution
			err := fut.GetChildWorkflowExecution().Get(ctx, &exec)
			if err == nil {
				started = true
				o.starting--
				if o.byResult {
					o.mine[[2]int{i, seq}] = true
				}
				o.confirmStart(ctx, i, seq, exec.RunID)
				// The child's result reports the pass; a report by signal
				// (after a hand-over) precedes its close in history.
				var out MailboxOutcome
				cerr := fut.Get(ctx, &out)
				o.drainOutcomes()
				if o.flightOf(i, seq) >= 0 {
					o.onOutcome(o.closedOutcome(want, out, cerr))
				}
				return
			}
			// The mailbox's previous workflow has reported its pass but not
			// closed yet (it signals just before it returns): start again in
			// a moment rather than fail the mailbox.
			if temporal.IsWorkflowExecutionAlreadyStartedError(err) && attempt < maxStartAttempts {
				if workflow.Sleep(ctx, time.Second) == nil {
					continue
				}
			}
			want.Error = "start: " + rootCause(err)
			o.onOutcome(want)
			return
		}
	})
	return nil
}

// closedOutcome is the outcome of a mailbox pass (want names it) whose
// workflow closed without reporting by signal: its result, or what its
// close says. A child that closes without any report (terminated by
// someone, its signal failed) must not hold its slot forever.
func (o *organization) closedOutcome(want, out MailboxOutcome, err error) MailboxOutcome {
	const noReport = "mailbox workflow closed without reporting its pass"
	switch {
	case !o.byResult:
		// A child of the signal-only version whose signal never came.
		want.Error = noReport
		if err != nil {
			want.Error += ": " + rootCause(err)
		}
	case err == nil && out.Index == want.Index && out.Seq == want.Seq && out.Address != "":
		return out
	case err == nil:
		want.Error = noReport
	case temporal.IsCanceledError(err):
		want.Canceled = true
	default:
		want.Error = rootCause(err)
	}
	return want
}

// localBudget is the local attempt a pass gets: readiness always (it only
// reads, and it is what measures the mailbox), the other passes only for
// mailboxes readiness found small. A large mailbox would spend the budget
// and then stop mid-message: its copy goes straight to a regular activity.
func (o *organization) localBudget(i int, pass Pass) time.Duration {
	if o.in.LocalPassBudget <= 0 || !o.byResult {
		return 0
	}
	small := hasBit(o.s.Small, i)
	if pass == PassReadiness || (small && pass != PassArchive && pass != PassImport) {
		return o.in.LocalPassBudget
	}
	return 0
}

// confirmStart records a child's run and sends the cancel a pause, skip or
// rollback asked for while its start was pending.
func (o *organization) confirmStart(ctx workflow.Context, i, seq int, runID string) {
	k := o.flightOf(i, seq)
	if k < 0 {
		return
	}
	f := &o.s.InFlight[k]
	f.RunID = runID
	if f.Canceling {
		workflow.RequestCancelExternalWorkflow(ctx, MailboxWorkflowID(o.in.Code, f.Address), runID)
	}
}

func (o *organization) flightOf(i, seq int) int {
	for k, f := range o.s.InFlight {
		if f.Index == i && f.Seq == seq {
			return k
		}
	}
	return -1
}

// maxStartAttempts bounds the retries of a mailbox workflow whose previous
// run is still closing.
const maxStartAttempts = 120

// onOutcome books one mailbox's pass.
func (o *organization) onOutcome(out MailboxOutcome) {
	if out.Chain != "" && out.Chain != o.chain {
		return // a mailbox workflow of an earlier, abandoned organization run chain
	}
	k := o.flightOf(out.Index, out.Seq)
	if k < 0 {
		return // an outcome of an older pass, or reported twice
	}
	canceling := o.s.InFlight[k].Canceling
	o.s.InFlight = append(o.s.InFlight[:k], o.s.InFlight[k+1:]...)
	p := &o.s.P
	p.MailboxesRunning = len(o.s.InFlight)
	i := out.Index
	if out.Canceled || (canceling && out.Error != "") {
		// Stopped by a pause, a skip or a rollback: not a failure. It runs
		// this pass again unless it was skipped meanwhile.
		if o.s.Status[i] == mbActive {
			o.s.Requeue = append(o.s.Requeue, i)
		}
		return
	}
	o.book(out)
}

// book records a mailbox's finished pass.
func (o *organization) book(out MailboxOutcome) {
	p := &o.s.P
	i := out.Index
	p.PassDone++
	if out.Error != "" {
		o.fail(i, out.Address, out.Pass, out.Error)
		return
	}
	switch out.Pass {
	case PassReadiness:
		p.SourceMessages += out.SourceMessages
		p.SourceBytes += out.SourceBytes
		p.LargeItems += out.LargeItems
		if out.Ready && out.LargeItems == 0 && out.SourceBytes <= o.in.LocalPassMaxBytes {
			setBit(&o.s.Small, o.total, i)
		}
		if o.lean && o.in.DirectMaxBytes > 0 && out.Ready && out.LargeItems == 0 && out.SourceBytes <= o.in.DirectMaxBytes {
			setBit(&o.s.Direct, o.total, i)
		}
		if !out.Ready {
			o.fail(i, out.Address, out.Pass, "not ready: "+strings.Join(out.Problems, "; "))
			seen := map[string]bool{}
			for _, pr := range out.Problems {
				if k := activities.ProblemKind(pr); !seen[k] {
					seen[k] = true
					if p.ReadinessProblems == nil {
						p.ReadinessProblems = map[string]int{}
					}
					p.ReadinessProblems[k]++
				}
			}
		}
	case PassPreStage, PassDelta, PassFinal, PassPostSwitch:
		p.Messages += out.Copied
		p.Bytes += out.Bytes
		o.setSkips(i, skipCount{Total: out.Skipped, ByReason: out.SkippedByReason, Staged: out.Staged})
		if out.Consistency != "" { // validated in the same workflow
			o.bookValidation(out)
		}
	case PassImport:
		// Imported items were skipped as too large; they are in the target now.
		p.Messages += out.Copied
		p.Bytes += out.Bytes
		p.ImportedItems += out.Imported
		c := o.skips(i)
		reasons := map[string]int{}
		for r, n := range c.ByReason {
			reasons[r] = n
		}
		reasons[transfer.ReasonTooLarge] -= out.Imported
		if reasons[transfer.ReasonTooLarge] <= 0 {
			delete(reasons, transfer.ReasonTooLarge)
		}
		o.setSkips(i, skipCount{Total: max(0, c.Total-out.Imported), ByReason: reasons, Staged: max(0, c.Staged-out.Imported)})
	case PassArchive:
		p.ArchivedMessages += out.ArchivedMessages
		p.ArchivedBytes += out.ArchivedBytes
	case PassValidate:
		o.bookValidation(out)
	}
}

// bookValidation records a mailbox's consistency score.
func (o *organization) bookValidation(out MailboxOutcome) {
	p := &o.s.P
	i := out.Index
	if p.ConsistencyCounts == nil {
		p.ConsistencyCounts = map[Consistency]int{}
	}
	p.ConsistencyCounts[out.Consistency]++
	p.Consistency = Worse(p.Consistency, out.Consistency)
	for _, r := range out.Rules {
		if p.RulesFired == nil {
			p.RulesFired = map[string]int{}
		}
		p.RulesFired[r.ID]++
	}
	if out.Consistency != Poor {
		o.s.Status[i] = mbValidated
		p.MailboxesDone++
	}
	if out.Consistency != Perfect && len(p.Findings) < MaxReportedFailures {
		var texts []string
		for _, r := range out.Rules {
			texts = append(texts, r.Detail)
		}
		p.Findings = append(p.Findings, MailboxFinding{Address: out.Address, Consistency: out.Consistency, Rules: texts})
	}
}

// skipSlots are the counters packed per mailbox in SkipCounts: one per
// skip reason mailshift records, one for any other reason, and the number
// of items kept in the staging store.
var skipSlots = []string{transfer.ReasonTooLarge, transfer.ReasonRejected, transfer.ReasonCorrupt, transfer.ReasonTooBig, reasonOther}

const (
	reasonOther = "other"
	slotStaged  = 5
	slotBytes   = 2 * (slotStaged + 1)
)

func (o *organization) skips(i int) skipCount {
	var c skipCount
	if len(o.s.SkipCounts) < (i+1)*slotBytes {
		return c
	}
	b := o.s.SkipCounts[i*slotBytes:]
	get := func(k int) int { return int(b[2*k])<<8 | int(b[2*k+1]) }
	for k, r := range skipSlots {
		if n := get(k); n > 0 {
			if c.ByReason == nil {
				c.ByReason = map[string]int{}
			}
			c.ByReason[r] = n
			c.Total += n
		}
	}
	c.Staged = get(slotStaged)
	return c
}

func (o *organization) setSkips(i int, c skipCount) {
	// Reasons outside skipSlots are counted as "other", and a total the
	// reasons do not explain too, so what is added here can be taken away
	// exactly when the mailbox reports again.
	norm := map[string]int{}
	sum := 0
	for r, n := range c.ByReason {
		if !slices.Contains(skipSlots, r) {
			r = reasonOther
		}
		norm[r] += n
		sum += n
	}
	if c.Total > sum {
		norm[reasonOther] += c.Total - sum
	}
	// What is stored saturates at 0xFFFF per counter (exact figures are in
	// the mailbox reports); the organization's totals add what is stored,
	// so the next report of this mailbox takes away exactly that.
	c.Total = 0
	for r, n := range norm {
		norm[r] = min(n, 0xFFFF)
		c.Total += norm[r]
	}
	c.ByReason = norm
	c.Staged = min(max(c.Staged, 0), 0xFFFF)
	p := &o.s.P
	old := o.skips(i)
	p.Skipped += c.Total - old.Total
	p.StagedCount += c.Staged - old.Staged
	for r, n := range old.ByReason {
		p.SkippedByReason[r] -= n
		if p.SkippedByReason[r] == 0 {
			delete(p.SkippedByReason, r)
		}
	}
	for r, n := range c.ByReason {
		if n == 0 {
			continue
		}
		if p.SkippedByReason == nil {
			p.SkippedByReason = map[string]int{}
		}
		p.SkippedByReason[r] += n
	}
	if c.Total == 0 && c.Staged == 0 && len(o.s.SkipCounts) == 0 {
		return
	}
	if len(o.s.SkipCounts) == 0 {
		o.s.SkipCounts = make([]byte, o.total*slotBytes)
	}
	b := o.s.SkipCounts[i*slotBytes : (i+1)*slotBytes]
	put := func(k, n int) {
		// Saturates: exact per-mailbox figures are in the mailbox reports.
		n = min(max(n, 0), 0xFFFF)
		b[2*k], b[2*k+1] = byte(n>>8), byte(n)
	}
	for k, r := range skipSlots {
		put(k, c.ByReason[r])
	}
	put(slotStaged, c.Staged)
}

func (o *organization) fail(i int, address string, pass Pass, msg string) {
	if st := o.s.Status[i]; st != mbActive && st != mbValidated {
		return // already failed, or skipped by an operator meanwhile
	}
	o.s.Status[i] = mbFailed
	p := &o.s.P
	p.MailboxesFailed++
	if len(p.Failures) < MaxReportedFailures {
		p.Failures = append(p.Failures, MailboxFailure{Address: address, Pass: pass, Error: msg})
	}
}

func rootCause(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if t := app.Type(); t != "" {
			return t + ": " + app.Message()
		}
		return app.Message()
	}
	var to *temporal.TimeoutError
	if errors.As(err, &to) {
		return "timeout: " + to.Error()
	}
	return err.Error()
}
