package workflows

import (
	"slices"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// maxStartAttempts bounds the retries of a mailbox workflow whose previous
// run is still closing.
const maxStartAttempts = 120

// passWindow is the sliding window of Mailbox children of an
// organization's open pass: which mailbox starts next, which are in
// flight, which must start again (paused, retried), and the hand-over of
// the children still running when a run continues as new. It is a
// mechanism: which mailboxes a pass covers and what an outcome means are
// the organization's to decide.
type passWindow struct {
	org string
	// seq numbers passes; outcomes of older passes are ignored.
	seq      int
	open     bool
	next     int
	requeue  []int
	inFlight []flight
	// starting counts child starts not yet confirmed by the server; a run
	// must not continue as new before they are.
	starting int
	// started counts the children this run started.
	started int
	// mine are the mailbox passes (index, seq) this run started: they
	// report through their result unless handOver tells them otherwise.
	mine map[[2]int]bool
}

func newPassWindow(org string, st *OrganizationState) *passWindow {
	w := &passWindow{org: org, mine: map[[2]int]bool{}}
	if st != nil {
		w.seq, w.open, w.next, w.requeue, w.inFlight = st.PassSeq, st.PassOpen, st.Next, st.Requeue, st.InFlight
	}
	return w
}

func (w *passWindow) save(st *OrganizationState) {
	st.PassSeq, st.PassOpen, st.Next, st.Requeue, st.InFlight = w.seq, w.open, w.next, w.requeue, w.inFlight
}

func (w *passWindow) isOpen() bool { return w.open }

// begin opens the next pass, from the first mailbox.
func (w *passWindow) begin() {
	w.seq++
	w.open, w.next, w.requeue = true, 0, nil
}

func (w *passWindow) end() { w.open = false }

// nextToStart picks requeued mailboxes first, then the next of total that
// the pass covers; -1 when the pass has nothing left to start.
func (w *passWindow) nextToStart(total int, covers func(i int) bool) int {
	for len(w.requeue) > 0 {
		i := w.requeue[0]
		if covers(i) && !w.running(i) {
			return i
		}
		w.requeue = w.requeue[1:]
	}
	for w.next < total && (!covers(w.next) || w.running(w.next)) {
		w.next++
	}
	if w.next < total {
		return w.next
	}
	return -1
}

// take records that mailbox i starts now, as workflow id (empty: the
// legacy id), and returns its pass's seq.
func (w *passWindow) take(i int, address, id string) int {
	if len(w.requeue) > 0 && w.requeue[0] == i {
		w.requeue = w.requeue[1:]
	} else {
		w.next = i + 1
	}
	w.inFlight = append(w.inFlight, flight{Index: i, Address: address, Seq: w.seq, ID: id})
	w.started++
	w.starting++
	return w.seq
}

// workflowID is the id of f's Mailbox workflow.
func (w *passWindow) workflowID(f flight) string {
	if f.ID != "" {
		return f.ID
	}
	return legacyMailboxWorkflowID(w.org, f.Address)
}

// size is how many mailboxes are in flight.
func (w *passWindow) size() int { return len(w.inFlight) }

// idle: nothing in flight and no start pending.
func (w *passWindow) idle() bool { return len(w.inFlight) == 0 && w.starting == 0 }

// startsConfirmed: every start this run asked for has been answered.
func (w *passWindow) startsConfirmed() bool { return w.starting == 0 }

// startedHere is how many children this run started.
func (w *passWindow) startedHere() int { return w.started }

// ahead: the pass has not reached mailbox i yet.
func (w *passWindow) ahead(i int) bool { return i >= w.next }

func (w *passWindow) running(i int) bool {
	return slices.ContainsFunc(w.inFlight, func(f flight) bool { return f.Index == i })
}

func (w *passWindow) flightOf(i, seq int) int {
	return slices.IndexFunc(w.inFlight, func(f flight) bool { return f.Index == i && f.Seq == seq })
}

// holds: mailbox i's pass seq is in flight.
func (w *passWindow) holds(i, seq int) bool { return w.flightOf(i, seq) >= 0 }

// withdraw takes a reported mailbox pass out of the window; false if it
// was not in it (an older pass, or reported twice).
func (w *passWindow) withdraw(i, seq int) (flight, bool) {
	k := w.flightOf(i, seq)
	if k < 0 {
		return flight{}, false
	}
	f := w.inFlight[k]
	w.inFlight = append(w.inFlight[:k], w.inFlight[k+1:]...)
	return f, true
}

// reinstate starts mailbox i again before the pass goes on.
func (w *passWindow) reinstate(i int) { w.requeue = append(w.requeue, i) }

func (w *passWindow) requeued(i int) bool { return slices.Contains(w.requeue, i) }
func (w *passWindow) anyRequeued() bool   { return len(w.requeue) > 0 }

// requeuedFirst is up to n mailboxes waiting to start again, in order.
func (w *passWindow) requeuedFirst(n int) []int {
	return slices.Clone(w.requeue[:min(len(w.requeue), n)])
}

// dropRequeued forgets the first n requeued mailboxes.
func (w *passWindow) dropRequeued(n int) { w.requeue = w.requeue[n:] }

func (w *passWindow) clearRequeue() { w.requeue = nil }

// cancel asks the running mailboxes that which picks to stop at their
// next checkpoint; each reports back as canceled.
func (w *passWindow) cancel(ctx workflow.Context, which func(flight) bool) {
	for i := range w.inFlight {
		f := &w.inFlight[i]
		if f.Canceling || !which(*f) {
			continue
		}
		f.Canceling = true
		if f.RunID != "" { // otherwise confirm cancels it once the start is confirmed
			workflow.RequestCancelExternalWorkflow(ctx, w.workflowID(*f), f.RunID)
		}
	}
}

// confirm records a child's run and sends the cancel that a pause, skip
// or rollback asked for while its start was pending.
func (w *passWindow) confirm(ctx workflow.Context, i, seq int, runID string) {
	k := w.flightOf(i, seq)
	if k < 0 {
		return
	}
	f := &w.inFlight[k]
	f.RunID = runID
	if f.Canceling {
		workflow.RequestCancelExternalWorkflow(ctx, w.workflowID(*f), runID)
	}
}

// launch starts the Mailbox workflow of a mailbox just taken, in a
// coroutine of its own. closed gets the child's result when it closes
// (byResult: this run reads it); failed gets the reason when it cannot be
// started at all.
func (w *passWindow) launch(ctx workflow.Context, opts workflow.ChildWorkflowOptions, in MailboxInput, byResult bool,
	closed func(ctx workflow.Context, out MailboxOutcome, err error), failed func(ctx workflow.Context, reason string)) {
	if opts.WorkflowID == "" {
		opts.WorkflowID = legacyMailboxWorkflowID(w.org, in.Mailbox.Address)
	}
	opts.ParentClosePolicy = enums.PARENT_CLOSE_POLICY_ABANDON
	opts.WorkflowIDReusePolicy = enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	// A canceled mailbox stops at a checkpoint and reports itself.
	opts.WaitForCancellation = true
	cctx := workflow.WithChildOptions(ctx, opts)
	i, seq := in.Index, in.Seq
	workflow.Go(ctx, func(ctx workflow.Context) {
		started := false
		defer func() {
			if !started {
				w.starting--
			}
		}()
		for attempt := 1; ; attempt++ {
			fut := workflow.ExecuteChildWorkflow(cctx, MailboxWorkflowName, in)
			var exec workflow.Execution
			err := fut.GetChildWorkflowExecution().Get(ctx, &exec)
			if err == nil {
				started = true
				w.starting--
				if byResult {
					w.mine[[2]int{i, seq}] = true
				}
				w.confirm(ctx, i, seq, exec.RunID)
				// The child's result reports the pass; a report by signal
				// (after a hand-over) precedes its close in history.
				var out MailboxOutcome
				cerr := fut.Get(ctx, &out)
				closed(ctx, out, cerr)
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
			failed(ctx, rootCause(err))
			return
		}
	})
}

// handOver tells the mailboxes this run started and that are still running
// to report to the next run by signal; their results would reach only this
// run. One that closed before the signal arrived reports here, through its
// result, and is waited for.
func (w *passWindow) handOver(ctx workflow.Context) error {
	type told struct {
		i, seq int
		sent   workflow.Future
	}
	var all []told
	for _, f := range w.inFlight {
		if w.mine[[2]int{f.Index, f.Seq}] {
			sent := workflow.SignalExternalWorkflow(ctx, w.workflowID(f), f.RunID, signalReportToCurrentRun, nil)
			all = append(all, told{f.Index, f.Seq, sent})
		}
	}
	for _, t := range all {
		if t.sent.Get(ctx, nil) == nil {
			continue
		}
		if err := workflow.Await(ctx, func() bool { return !w.holds(t.i, t.seq) }); err != nil {
			return err
		}
	}
	return nil
}
