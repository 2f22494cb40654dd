package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// TransferMailbox runs one pass (pre-stage, delta or final) over a mailbox.
// It resumes from the last heartbeat after a retry, or from the ledger in
// the staging store on a new run; either way the uncertain tail is
// reconciled against the target before anything is appended again.
func (a *Activities) TransferMailbox(ctx context.Context, in TransferInput) (TransferResult, error) {
	if in.Budget <= 0 {
		res, err := a.transferMailbox(ctx, in)
		var app *temporal.ApplicationError
		handedBack := errors.As(err, &app) && app.Type() == ErrTypeHandedBack
		if err != nil && ctx.Err() == nil && !handedBack {
			// Not a pause, a skip or a stopping worker: the pass failed
			// (login refused, a server fault), and the report says so.
			a.recordFailure(ctx, in.Mailbox, in.Pass, err)
		}
		return res, err
	}
	bctx, cancel := context.WithTimeout(ctx, in.Budget)
	defer cancel()
	res, err := a.transferMailbox(bctx, in)
	if err != nil {
		res.Incomplete, res.StopReason = true, err.Error()
		if bctx.Err() != nil && ctx.Err() == nil {
			res.StopReason = "budget of " + in.Budget.String() + " spent"
		}
	}
	return res, nil
}

func (a *Activities) transferMailbox(ctx context.Context, in TransferInput) (TransferResult, error) {
	var res TransferResult
	log := a.logger().With("org", in.Mailbox.Org, "mailbox", in.Mailbox.Address, "pass", in.Pass)
	opts := a.policy(in.Mailbox, in.Policy)
	ledger := staging.LedgerName(in.Mailbox.Org, in.Mailbox.Address)
	res.Ledger = ledger
	// A local attempt the SDK gave up on may still be stopping; two
	// transfers of one mailbox must never append at once.
	unlock, err := a.locks.lock(ctx, ledger)
	if err != nil {
		return res, err
	}
	defer unlock()
	// Readiness claimed the mailbox; a mailbox added to a running
	// organization skipped readiness, so every pass checks (an
	// organization's own claim costs one read).
	if a.Staging != nil {
		holder, err := a.claim(ctx, in.Mailbox)
		if err != nil {
			return res, err
		}
		if holder != nil {
			return res, temporal.NewNonRetryableApplicationError("mailbox "+in.Mailbox.Address+": "+claimProblem(in.Mailbox, holder), ErrTypeClaimed, nil)
		}
	}
	ctx, stopHandBack := handBackOnStop(ctx)
	defer stopHandBack()
	beats := startPulse(ctx)
	defer beats.stop()
	cp, err := a.loadLedger(ctx, ledger)
	if err != nil {
		return res, err
	}
	if activity.HasHeartbeatDetails(ctx) {
		var hb transfer.Checkpoint
		if err := activity.GetHeartbeatDetails(ctx, &hb); err == nil && len(hb.Folders) > 0 {
			// The heartbeat holds the tallies the previous attempt started
			// with; the ledger has what that attempt added when it ended.
			hb.Passes = cp.Passes
			cp = hb
			res.Resumed = true
		}
	}
	opts.Stage = func(ctx context.Context, item transfer.SkippedItem, body io.Reader) (string, error) {
		name := staging.ItemName(in.Mailbox.Org, in.Mailbox.Address, item.Folder, item.UIDValidity, item.UID)
		_, err := a.putStaging(ctx, name, heartbeatReader(ctx, body), map[string]string{
			"organization": in.Mailbox.Org, "mailbox": in.Mailbox.Address, "folder": item.Folder,
			"uid": fmt.Sprint(item.UID), "size": fmt.Sprint(item.Size), "reason": item.Reason,
			"messageid": item.MessageID, "flags": strings.Join(item.Flags, " "),
			"internaldate": item.Date, "kind": "large-item",
		})
		return name, err
	}
	// Flag changes on the source are copied on every pass that runs before
	// the routing switch (pre-stage, deltas, final).
	opts.SyncFlags = true
	opts.Lanes = a.Limits.LanesPerMailbox
	perMailbox := 0
	if ep := a.Endpoints[in.Mailbox.TargetEndpoint]; ep != nil {
		perMailbox = ep.PerMailbox
	}
	if perMailbox > 0 {
		// Each lane is a session and an APPEND pipeline to the target.
		opts.Lanes = max(1, min(opts.Lanes, perMailbox/2))
	}
	if a.Limits.AppendWindow > 0 && (perMailbox == 0 || perMailbox >= 2) {
		opts.AppendWindow = a.Limits.AppendWindow
		opts.Appender = func(ctx context.Context) (*imapconn.Appender, error) {
			return a.appender(ctx, in.Mailbox)
		}
	}
	opts.Dial = func(ctx context.Context) (*imapconn.Conn, *imapconn.Conn, func(), error) {
		// Extra lanes never wait for a connection slot: if the endpoint is
		// busy, the mailbox simply runs on fewer lanes.
		return a.connectNow(ctx, in.Mailbox)
	}
	// The copy counters move as messages settle, not only when a pass ends:
	// Progress hands over this run's running totals, counted adds the news.
	var counted transfer.Stats
	count := func(st transfer.Stats) {
		a.Metrics.Copied(in.Mailbox.Org, st.Copied-counted.Copied, st.Bytes-counted.Bytes)
		counted.Copied, counted.Bytes = max(counted.Copied, st.Copied), max(counted.Bytes, st.Bytes)
	}
	opts.Progress = func(cp transfer.Checkpoint, st transfer.Stats) {
		count(st)
		beats.beat(cp)
	}
	opts.Commit = func(cp transfer.Checkpoint) error { return a.saveJSON(ctx, ledger, cp) }
	// Like the ledger, the digests of a pass cut short are kept.
	opts.Digests = func(d transfer.FolderDigests) error {
		return a.saveDigests(context.WithoutCancel(ctx), in.Mailbox.Org, in.Mailbox.Address, d)
	}
	start := time.Now()
	res.Started = start.UTC()
	tally := cp.Tally(in.PassID)
	skippedBefore := skippedByReason(cp.Skipped)
	var st transfer.Stats
	for {
		var run transfer.Stats
		cp, run, err = a.transferOnce(ctx, in.Mailbox, cp, opts)
		count(run)
		counted = transfer.Stats{}
		st = addStats(st, run)
		d, ok := imapconn.Throttled(err)
		if !ok || ctx.Err() != nil || res.ThrottledFor+d > maxThrottledWait {
			break
		}
		// Throttling is the target pacing us, not a fault: keep what was
		// settled, wait as asked (the pulse heartbeats meanwhile) and go on
		// from the checkpoint on new connections.
		res.Throttled++
		res.ThrottledFor += d
		log.Info("the target throttled the pass; waiting as it asks", "backoff", d, "times", res.Throttled)
		if serr := a.saveJSON(ctx, ledger, cp); serr != nil {
			err = serr
			break
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	res.Finished = time.Now().UTC()
	for reason, n := range skippedByReason(cp.Skipped) {
		a.Metrics.Skipped(in.Mailbox.Org, reason, n-skippedBefore[reason])
	}
	if in.PassID != "" {
		tally.Copied += st.Copied
		tally.Bytes += st.Bytes
		cp.SetTally(tally)
		st.Copied, st.Bytes = tally.Copied, tally.Bytes
	}
	// Whatever happened, keep what was settled.
	if serr := a.saveJSON(context.WithoutCancel(ctx), ledger, cp); serr != nil && err == nil {
		err = serr
	}
	res.Folders, res.Copied, res.Bytes, res.Matched = st.Folders, st.Copied, st.Bytes, st.Matched
	res.BodiesRead, res.SourceMessages, res.Reconciled = st.BodiesRead, st.SourceTotal, st.Reconciled
	res.KeywordsDropped = st.KeywordsDropped
	res.SkippedTotal, res.SkippedByReason, res.Staged = skippedSummary(cp.Skipped)
	for _, s := range cp.Skipped {
		if !s.Imported && len(res.Skipped) < MaxReportedItems {
			res.Skipped = append(res.Skipped, s)
		}
	}
	if err != nil && handedBack(ctx) {
		log.Info("worker stopping: pass handed back at its checkpoint", "copied", st.Copied, "took", time.Since(start).Round(time.Millisecond))
		return res, temporal.NewApplicationError(fmt.Sprintf("mailbox %s: worker stopping: handed back at its checkpoint after %d messages", in.Mailbox.Address, st.Copied), ErrTypeHandedBack)
	}
	if err != nil {
		return res, temporalError("mailbox "+in.Mailbox.Address, err)
	}
	log.Info("pass done", "copied", st.Copied, "bytes", st.Bytes, "matched", st.Matched, "skipped", res.SkippedTotal, "took", time.Since(start).Round(time.Millisecond))
	if err := a.saveJSON(ctx, staging.ReportName(in.Mailbox.Org, in.Mailbox.Address, in.Pass), res); err != nil {
		return res, err
	}
	return res, nil
}

// maxThrottledWait bounds the waiting one transfer attempt does for a
// throttling target; beyond it the attempt ends with the throttling error
// and Temporal's retry policy takes over.
const maxThrottledWait = time.Hour

// transferOnce runs the pass on fresh (or pooled) connections.
func (a *Activities) transferOnce(ctx context.Context, m MailboxRef, cp transfer.Checkpoint, opts transfer.Options) (transfer.Checkpoint, transfer.Stats, error) {
	src, tgt, release, err := a.connect(ctx, m)
	if err != nil {
		return cp, transfer.Stats{}, err
	}
	defer release()
	return transfer.Run(ctx, src, tgt, cp, opts)
}

// addStats adds the tallies of a pass resumed after throttling to what
// its first part did; folders and source messages are counted again by
// each part, so the last part's count holds.
func addStats(a, b transfer.Stats) transfer.Stats {
	a.Copied += b.Copied
	a.Bytes += b.Bytes
	a.Matched += b.Matched
	a.Skipped += b.Skipped
	a.BodiesRead += b.BodiesRead
	a.Reconciled += b.Reconciled
	a.FlagsUpdated += b.FlagsUpdated
	a.KeywordsDropped += b.KeywordsDropped
	a.Folders, a.SourceTotal = b.Folders, b.SourceTotal
	return a
}

// skippedSummary counts a ledger's skipped items that are still not in the
// target (imported ones are), by reason, and how many are kept in staging.
func skippedSummary(items []transfer.SkippedItem) (total int, byReason map[string]int, staged int) {
	byReason = map[string]int{}
	for _, s := range items {
		if s.Imported {
			continue // staged earlier, in the target now
		}
		total++
		byReason[s.Reason]++
		if s.StagedAs != "" {
			staged++
		}
	}
	return total, byReason, staged
}

// skippedByReason counts a ledger's skipped items by reason, imported or
// not: the items a transfer recorded as skipped, for the metrics.
func skippedByReason(items []transfer.SkippedItem) map[string]int {
	n := map[string]int{}
	for _, s := range items {
		n[s.Reason]++
	}
	return n
}
