package workflows

import (
	"errors"
	"fmt"
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

// DefaultConcurrency is how many mailboxes of one organization run at once.
const DefaultConcurrency = 8

// Organization migrates one organization: readiness -> pre-stage ->
// (approval) -> cutover -> validation.
func Organization(ctx workflow.Context, in OrganizationInput) (Progress, error) {
	o := &organization{in: in}
	if err := o.setup(ctx); err != nil {
		return o.p, err
	}
	return o.run(ctx)
}

type mailboxStatus int

const (
	mbActive mailboxStatus = iota
	mbFailed
	mbValidated
)

type mailboxState struct {
	status          mailboxStatus
	copied, bytes   int64
	skipped         int
	skippedByReason map[string]int
	staged          []string
	imported        int
	archived        int64
	archivedBytes   int64
}

type organization struct {
	in     OrganizationInput
	p      Progress
	mbs    []mailboxState
	logger log.Logger
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
	if len(in.Mailboxes) == 0 {
		return fmt.Errorf("organization %s: no mailboxes", in.Code)
	}
	seen := map[string]bool{}
	for i, m := range in.Mailboxes {
		key := strings.ToLower(m.Address)
		switch {
		case m.Address == "" || !strings.Contains(m.Address, "@"):
			return fmt.Errorf("organization %s: mailbox %d: address %q is not an e-mail address", in.Code, i+1, m.Address)
		case m.SourceUser == "" || m.TargetUser == "":
			return fmt.Errorf("organization %s: mailbox %s: source_user and target_user are required", in.Code, m.Address)
		case seen[key]:
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
	if in.Concurrency < 0 {
		return fmt.Errorf("organization %s: concurrency %d must be positive", in.Code, in.Concurrency)
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
	now := workflow.Now(ctx)
	o.p = Progress{
		Organization: o.in.Code, Name: o.in.Name, Wave: o.in.Wave,
		Concurrency: o.in.Concurrency, MailboxesTotal: len(o.in.Mailboxes),
		StartedAt: now, PhaseStartedAt: now,
	}
	o.mbs = make([]mailboxState, len(o.in.Mailboxes))
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return o.p, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApproveCutover,
		func(ctx workflow.Context, a Approval) (Approval, error) {
			a.At = workflow.Now(ctx)
			o.p.Approval = &a
			o.logger.Info("cutover approved", "approver", a.Approver, "reason", a.Reason)
			return a, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(a Approval) error {
			if strings.TrimSpace(a.Approver) == "" {
				return errors.New("approver is required")
			}
			if o.p.Approval != nil {
				return fmt.Errorf("cutover already approved by %s", o.p.Approval.Approver)
			}
			if o.p.Phase != PhaseAwaitingCutover {
				return fmt.Errorf("organization %s is in phase %s; cutover can only be approved in %s", o.in.Code, o.p.Phase, PhaseAwaitingCutover)
			}
			return nil
		}}); err != nil {
		return err
	}
	o.listenSignals(ctx)
	return nil
}

func (o *organization) listenSignals(ctx workflow.Context) {
	pause := workflow.GetSignalChannel(ctx, SignalPause)
	resume := workflow.GetSignalChannel(ctx, SignalResume)
	conc := workflow.GetSignalChannel(ctx, SignalSetConcurrency)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(pause, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				o.p.Paused = true
			})
			sel.AddReceive(resume, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				o.p.Paused = false
			})
			sel.AddReceive(conc, func(c workflow.ReceiveChannel, _ bool) {
				var n int
				c.Receive(ctx, &n)
				if n > 0 {
					o.p.Concurrency = n
				} else {
					o.logger.Warn("ignored set-concurrency", "value", n)
				}
			})
			sel.Select(ctx)
		}
	})
}

func (o *organization) setPhase(ctx workflow.Context, ph Phase) {
	o.p.Phase = ph
	o.p.PhaseStartedAt = workflow.Now(ctx)
	o.logger.Info("phase", "phase", ph)
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		SAOrganizationCode.ValueSet(o.in.Code),
		SAMigrationPhase.ValueSet(string(ph)),
		SAWave.ValueSet(o.in.Wave),
		SAMailboxesTotal.ValueSet(int64(o.p.MailboxesTotal)),
		SAMailboxesDone.ValueSet(int64(o.p.MailboxesDone)),
		SAMailboxesFailed.ValueSet(int64(o.p.MailboxesFailed)),
		SABytesCopied.ValueSet(float64(o.p.Bytes)),
	); err != nil {
		o.logger.Warn("upsert search attributes", "error", err)
	}
	workflow.SetCurrentDetails(ctx, o.details())
}

// details is the markdown shown as "current details" in the Web UI.
func (o *organization) details() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** %s — phase **%s**\n\n", o.in.Code, o.in.Name, o.p.Phase)
	fmt.Fprintf(&b, "| mailboxes | done | failed | messages | MB | skipped |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %.1f | %d |\n", o.p.MailboxesTotal, o.p.MailboxesDone, o.p.MailboxesFailed, o.p.Messages, float64(o.p.Bytes)/1e6, o.p.Skipped)
	if o.p.Reason != "" {
		fmt.Fprintf(&b, "\n%s\n", o.p.Reason)
	}
	return b.String()
}

func (o *organization) run(ctx workflow.Context) (Progress, error) {
	o.setPhase(ctx, PhaseReadiness)
	if err := o.runPass(ctx, PassReadiness); err != nil {
		return o.p, err
	}
	ready := 0
	for _, m := range o.mbs {
		if m.status == mbActive {
			ready++
		}
	}
	o.p.ReadinessScore = float64(ready) / float64(len(o.mbs))
	if ready == 0 || o.p.ReadinessScore < o.in.ReadinessThreshold {
		o.p.Reason = fmt.Sprintf("readiness %.0f%% (%d of %d mailboxes) is below the threshold %.0f%%",
			100*o.p.ReadinessScore, ready, len(o.mbs), 100*o.in.ReadinessThreshold)
		return o.finish(ctx, PhaseFailed)
	}

	o.setPhase(ctx, PhasePreStage)
	if err := o.runPass(ctx, PassPreStage); err != nil {
		return o.p, err
	}

	if o.in.Archive {
		if err := o.runPass(ctx, PassArchive); err != nil {
			return o.p, err
		}
	}

	o.setPhase(ctx, PhaseAwaitingCutover)
	if o.in.Approval == ApprovalManual {
		if err := workflow.Await(ctx, func() bool { return o.p.Approval != nil }); err != nil {
			return o.p, err
		}
	} else {
		o.p.Approval = &Approval{Approver: "auto", Reason: "organization set to auto-approve", At: workflow.Now(ctx)}
	}

	o.setPhase(ctx, PhaseCutover)
	if err := o.runPass(ctx, PassFinal); err != nil {
		return o.p, err
	}
	if o.in.ImportStaged {
		if err := o.runPass(ctx, PassImport); err != nil {
			return o.p, err
		}
	}
	if addrs := o.activeAddresses(); len(addrs) > 0 {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 5 * time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 10, NonRetryableErrorTypes: activities.NonRetryable},
		})
		var a *activities.Activities
		var rr activities.RoutingResult
		if err := workflow.ExecuteActivity(actx, a.SwitchRouting, activities.RoutingInput{Org: o.in.Code, Addresses: addrs}).Get(ctx, &rr); err != nil {
			o.p.Reason = "routing switch failed: " + err.Error()
			return o.finish(ctx, PhaseFailed)
		}
		o.p.Routing = fmt.Sprintf("%s: %d entries changed", rr.Router, rr.Changed)
	}

	o.setPhase(ctx, PhaseValidation)
	if err := o.runPass(ctx, PassValidate); err != nil {
		return o.p, err
	}
	if o.p.MailboxesFailed > 0 {
		o.p.Reason = fmt.Sprintf("%d of %d mailboxes failed", o.p.MailboxesFailed, o.p.MailboxesTotal)
		return o.finish(ctx, PhaseCompletedWithFailures)
	}
	return o.finish(ctx, PhaseCompleted)
}

func (o *organization) finish(ctx workflow.Context, ph Phase) (Progress, error) {
	o.p.FinishedAt = workflow.Now(ctx)
	o.setPhase(ctx, ph)
	// Let an update that is being handled answer before the run closes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return o.p, err
	}
	return o.p, nil
}

func (o *organization) activeAddresses() []string {
	var out []string
	for i, m := range o.mbs {
		if m.status == mbActive {
			out = append(out, o.in.Mailboxes[i].Address)
		}
	}
	return out
}

// runPass runs one Mailbox child per active mailbox through a window of
// Concurrency children; pause and set-concurrency take effect at the next
// start. A failed mailbox is recorded and never stops the others.
func (o *organization) runPass(ctx workflow.Context, pass Pass) error {
	var todo []int
	for i, m := range o.mbs {
		if m.status == mbActive {
			todo = append(todo, i)
		}
	}
	o.p.PassTotal, o.p.PassDone = len(todo), 0
	next, running := 0, 0
	for {
		err := workflow.Await(ctx, func() bool {
			return (next < len(todo) && running < o.p.Concurrency && !o.p.Paused) || (next == len(todo) && running == 0)
		})
		if err != nil {
			return err
		}
		if next == len(todo) && running == 0 {
			break
		}
		i := todo[next]
		next++
		running++
		o.p.MailboxesRunning = running
		workflow.Go(ctx, func(ctx workflow.Context) {
			res, err := o.mailbox(ctx, i, pass)
			o.record(i, pass, res, err)
			running--
			o.p.MailboxesRunning = running
			o.p.PassDone++
		})
	}
	return nil
}

func (o *organization) mailbox(ctx workflow.Context, i int, pass Pass) (MailboxResult, error) {
	m := o.in.Mailboxes[i]
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        MailboxWorkflowID(o.in.Code, m.Address),
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		StaticSummary:     fmt.Sprintf("%s %s: %s", o.in.Code, m.Address, pass),
	})
	in := MailboxInput{
		Mailbox: activities.MailboxRef{
			Org: o.in.Code, Address: m.Address,
			SourceEndpoint: o.in.SourceEndpoint, SourceUser: m.SourceUser,
			TargetEndpoint: o.in.TargetEndpoint, TargetUser: m.TargetUser,
		},
		Pass:             pass,
		Policy:           o.in.Policy,
		HeartbeatTimeout: o.in.HeartbeatTimeout,
		RetainDays:       o.in.ArchiveRetainDays,
	}
	var res MailboxResult
	err := workflow.ExecuteChildWorkflow(cctx, MailboxWorkflowName, in).Get(ctx, &res)
	return res, err
}

func (o *organization) fail(i int, pass Pass, msg string) {
	st := &o.mbs[i]
	if st.status == mbFailed {
		return
	}
	st.status = mbFailed
	o.p.MailboxesFailed++
	if len(o.p.Failures) < MaxReportedFailures {
		o.p.Failures = append(o.p.Failures, MailboxFailure{Address: o.in.Mailboxes[i].Address, Pass: pass, Error: msg})
	}
}

func (o *organization) record(i int, pass Pass, res MailboxResult, err error) {
	st := &o.mbs[i]
	if err != nil {
		o.fail(i, pass, rootCause(err))
		o.recount()
		return
	}
	switch pass {
	case PassReadiness:
		if r := res.Readiness; r != nil {
			o.p.SourceMessages += r.Messages
			o.p.SourceBytes += r.Bytes
			if !r.Ready {
				o.fail(i, pass, "not ready: "+strings.Join(r.Problems, "; "))
			}
		}
	case PassPreStage, PassFinal:
		if t := res.Transfer; t != nil {
			st.copied += t.Copied
			st.bytes += t.Bytes
			st.skipped = t.SkippedTotal
			st.skippedByReason = t.SkippedByReason
			st.staged = st.staged[:0]
			for _, s := range t.Skipped {
				if s.StagedAs != "" {
					st.staged = append(st.staged, s.StagedAs)
				}
			}
		}
	case PassArchive:
		if r := res.Archive; r != nil {
			st.archived, st.archivedBytes = int64(r.Messages), r.Bytes
		}
	case PassImport:
		if r := res.Import; r != nil {
			n := r.Imported + r.Present
			st.imported += n
			st.skipped -= n
			reasons := map[string]int{}
			for k, v := range st.skippedByReason {
				reasons[k] = v
			}
			reasons[transfer.ReasonTooLarge] -= n
			st.skippedByReason = reasons
			st.bytes += r.Bytes
			st.copied += int64(r.Imported)
		}
	case PassValidate:
		if v := res.Validation; v != nil {
			if v.OK {
				st.status = mbValidated
				o.p.MailboxesValidated++
			} else {
				o.fail(i, pass, "validation: "+strings.Join(v.Problems, "; "))
			}
		}
	}
	o.recount()
}

// recount rebuilds the totals from per-mailbox state in input order, so the
// result never depends on map iteration.
func (o *organization) recount() {
	o.p.Messages, o.p.Bytes, o.p.Skipped, o.p.MailboxesDone = 0, 0, 0, 0
	o.p.ImportedItems, o.p.ArchivedMessages, o.p.ArchivedBytes = 0, 0, 0
	reasons := map[string]int{}
	var staged []string
	for _, st := range o.mbs {
		o.p.Messages += st.copied
		o.p.Bytes += st.bytes
		o.p.Skipped += st.skipped
		o.p.ImportedItems += st.imported
		o.p.ArchivedMessages += st.archived
		o.p.ArchivedBytes += st.archivedBytes
		for r, n := range st.skippedByReason {
			reasons[r] += n
		}
		if st.status == mbValidated {
			o.p.MailboxesDone++
		}
		for _, s := range st.staged {
			if len(staged) < MaxReportedFailures {
				staged = append(staged, s)
			}
		}
	}
	sort.Strings(staged)
	o.p.SkippedByReason = reasons
	o.p.StagedItems = staged
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
