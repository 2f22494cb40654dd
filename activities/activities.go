package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/routing"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// Endpoint is a named IMAP server as the activities use it.
type Endpoint struct {
	Name    string
	Addr    imapconn.Address
	Options imapconn.Options
	// Login resolves credentials for a user; called only inside activities.
	Login func(user string) (imapconn.Login, error)
	// slots bounds concurrent connections to this endpoint across the worker.
	slots chan struct{}
}

// NewEndpoint builds an endpoint with a connection limit.
func NewEndpoint(name string, addr imapconn.Address, maxConns int, opts imapconn.Options, login func(string) (imapconn.Login, error)) *Endpoint {
	if maxConns <= 0 {
		maxConns = 8
	}
	return &Endpoint{Name: name, Addr: addr, Options: opts, Login: login, slots: make(chan struct{}, maxConns)}
}

// Limits are the worker's defaults for Policy fields left empty.
type Limits struct {
	MaxMessageSize int64
	MaxLargeItems  int
	MaxBadItems    int
	// LanesPerMailbox: folders of one mailbox copied at once (default 1).
	LanesPerMailbox int
	// AppendWindow: APPENDs in flight per lane over LITERAL+ (<= 0: none).
	AppendWindow int
}

// Activities holds the dependencies of every activity; the worker registers
// one value of it.
type Activities struct {
	Endpoints map[string]*Endpoint
	Staging   staging.Store
	Router    routing.Router
	Limits    Limits
	Logger    *slog.Logger
	// SpoolDir holds rare out-of-order FETCH bodies; "" = os.TempDir().
	SpoolDir string

	locks mailboxLocks
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

func (a *Activities) policy(p Policy) transfer.Options {
	o := transfer.Options{
		MaxMessageSize: a.Limits.MaxMessageSize,
		MaxLargeItems:  a.Limits.MaxLargeItems,
		MaxBadItems:    a.Limits.MaxBadItems,
		Rules:          transfer.FolderRules{Map: p.FolderMap, Exclude: p.Exclude},
		SpoolDir:       a.SpoolDir,
	}
	if p.MaxMessageSize > 0 {
		o.MaxMessageSize = p.MaxMessageSize
	}
	if p.MaxLargeItems != nil {
		o.MaxLargeItems = *p.MaxLargeItems
	}
	if p.MaxBadItems != nil {
		o.MaxBadItems = *p.MaxBadItems
	}
	return o
}

// connect opens source and target connections for a mailbox, waiting for a
// free connection slot on each endpoint (and heartbeating while it waits).
func (a *Activities) connect(ctx context.Context, m MailboxRef) (src, tgt *imapconn.Conn, release func(), err error) {
	return a.connectWith(ctx, m, true)
}

// appender opens a LITERAL+ APPEND pipeline to the mailbox's target, if a
// connection slot is free now (otherwise the lane appends one at a time).
func (a *Activities) appender(ctx context.Context, m MailboxRef) (*imapconn.Appender, error) {
	ep, user, err := a.side(m, false)
	if err != nil {
		return nil, err
	}
	if err := takeSlot(ctx, ep, false); err != nil {
		return nil, err
	}
	login, err := loginFor(m, ep, user)
	if err == nil {
		var app *imapconn.Appender
		if app, err = imapconn.DialAppender(ctx, ep.Addr, login, ep.Options, max(a.Limits.AppendWindow, 1)); err == nil {
			app.OnClose(func() { <-ep.slots })
			return app, nil
		}
	}
	<-ep.slots
	return nil, err
}

// errNoSlot means an endpoint is at its connection limit right now.
var errNoSlot = errors.New("endpoint at its connection limit")

// connectNow is connect without waiting for a connection slot.
func (a *Activities) connectNow(ctx context.Context, m MailboxRef) (src, tgt *imapconn.Conn, release func(), err error) {
	return a.connectWith(ctx, m, false)
}

func (a *Activities) connectWith(ctx context.Context, m MailboxRef, wait bool) (src, tgt *imapconn.Conn, release func(), err error) {
	src, relSrc, err := a.dialSide(ctx, m, true, wait)
	if err != nil {
		return nil, nil, nil, err
	}
	tgt, relTgt, err := a.dialSide(ctx, m, false, wait)
	if err != nil {
		relSrc()
		return nil, nil, nil, err
	}
	return src, tgt, func() { relTgt(); relSrc() }, nil
}

// side returns the endpoint and user of the source (or target) of a mailbox.
func (a *Activities) side(m MailboxRef, source bool) (*Endpoint, string, error) {
	name, user, which := m.TargetEndpoint, m.TargetUser, "target"
	if source {
		name, user, which = m.SourceEndpoint, m.SourceUser, "source"
	}
	ep, ok := a.Endpoints[name]
	if !ok {
		return nil, "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox %s: %s endpoint %q is not configured on this worker", m.Address, which, name), ErrTypeConfig, nil)
	}
	return ep, user, nil
}

// takeSlot reserves one of ep's connections, waiting for one (with
// heartbeats) or failing at once with errNoSlot.
func takeSlot(ctx context.Context, ep *Endpoint, wait bool) error {
	if wait {
		return acquire(ctx, ep.slots)
	}
	select {
	case ep.slots <- struct{}{}:
		return nil
	default:
		return errNoSlot
	}
}

// loginFor resolves a user's credentials on ep; a failure is configuration.
func loginFor(m MailboxRef, ep *Endpoint, user string) (imapconn.Login, error) {
	login, err := ep.Login(user)
	if err != nil {
		return login, temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox %s: credentials for %s on %s: %v", m.Address, user, ep.Name, err), ErrTypeConfig, nil)
	}
	return login, nil
}

// dialSide opens one authenticated connection to the source or the target.
func (a *Activities) dialSide(ctx context.Context, m MailboxRef, source, wait bool) (*imapconn.Conn, func(), error) {
	ep, user, err := a.side(m, source)
	if err != nil {
		return nil, nil, err
	}
	if err := takeSlot(ctx, ep, wait); err != nil {
		return nil, nil, err
	}
	login, err := loginFor(m, ep, user)
	if err != nil {
		<-ep.slots
		return nil, nil, err
	}
	c, err := imapconn.Dial(ctx, ep.Addr, login, ep.Options)
	if err != nil {
		<-ep.slots
		return nil, nil, wrapIMAP(fmt.Sprintf("mailbox %s: %s", m.Address, ep.Name), err)
	}
	return c, func() { c.Close(); <-ep.slots }, nil
}

func acquire(ctx context.Context, slots chan struct{}) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case slots <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx)
			}
		}
	}
}

// wrapIMAP turns a classified IMAP fault into a Temporal error: permanent
// faults are non-retryable with a type the workflow and the UI can read.
func wrapIMAP(prefix string, err error) error {
	var ie *imapconn.Error
	if errors.As(err, &ie) {
		if !ie.Permanent {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		typ := ie.Kind
		switch ie.Kind {
		case imapconn.KindAuth:
			typ = ErrTypeAuth
		case imapconn.KindNonExistent:
			typ = ErrTypeNotFound
		case imapconn.KindOverQuota:
			typ = ErrTypeOverQuota
		}
		return temporal.NewNonRetryableApplicationError(prefix+": "+err.Error(), typ, nil)
	}
	if errors.Is(err, staging.ErrAuth) {
		return temporal.NewNonRetryableApplicationError(prefix+": "+err.Error(), ErrTypeStagingAuth, nil)
	}
	if errors.Is(err, transfer.ErrPolicy) {
		return temporal.NewNonRetryableApplicationError(prefix+": "+err.Error(), ErrTypePolicy, nil)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// CheckReadiness logs in to both sides and measures the source without
// changing anything (EXAMINE and FETCH RFC822.SIZE only).
func (a *Activities) CheckReadiness(ctx context.Context, m MailboxRef, p Policy) (ReadinessResult, error) {
	var res ReadinessResult
	opts := a.policy(p)
	src, tgt, release, err := a.connect(ctx, m)
	if err != nil {
		if ae := nonRetryable(err); ae != nil {
			// A mailbox that cannot log in is not ready; that is an answer, not a fault.
			res.Problems = append(res.Problems, ProblemLogin+": "+ae.Error())
			return res, nil
		}
		return res, err
	}
	defer release()
	folders, err := src.Folders()
	if err != nil {
		return res, wrapIMAP("mailbox "+m.Address, err)
	}
	for _, f := range folders {
		if f.NoSelect {
			continue
		}
		res.Folders++
		n, bytes, large, err := transfer.Measure(src, f.Name, opts.MaxMessageSize)
		if err != nil {
			return res, wrapIMAP("mailbox "+m.Address, err)
		}
		res.Messages += n
		res.Bytes += bytes
		res.LargeItems += large
		activity.RecordHeartbeat(ctx, res.Folders)
	}
	tf, err := tgt.Folders()
	if err != nil {
		return res, wrapIMAP("mailbox "+m.Address, err)
	}
	plans, err := transfer.Plan(folders, tf, src.Delim, tgt.Delim, opts.Rules)
	if err != nil {
		res.Problems = append(res.Problems, ProblemFolders+": "+err.Error())
	}
	res.Problems = append(res.Problems, targetFolderProblems(plans, tgt.Delim, p)...)
	if opts.MaxLargeItems >= 0 && res.LargeItems > opts.MaxLargeItems {
		res.Problems = append(res.Problems, fmt.Sprintf("%s: %d items over %d bytes exceed the large-item limit %d", ProblemLargeItems, res.LargeItems, opts.MaxMessageSize, opts.MaxLargeItems))
	}
	used, limit, known, err := quotaHeadroom(tgt)
	if err != nil {
		return res, wrapIMAP("mailbox "+m.Address, err)
	}
	if known {
		res.QuotaUsed, res.QuotaLimit = used, limit
		if q := quotaProblem(res.Bytes, used, limit); q != "" {
			res.Problems = append(res.Problems, q)
		}
	}
	res.Ready = len(res.Problems) == 0
	return res, nil
}

// TransferMailbox runs one pass (pre-stage, delta or final) over a mailbox.
// It resumes from the last heartbeat after a retry, or from the ledger in
// the staging store on a new run; either way the uncertain tail is
// reconciled against the target before anything is appended again.
func (a *Activities) TransferMailbox(ctx context.Context, in TransferInput) (TransferResult, error) {
	if in.Budget <= 0 {
		return a.transferMailbox(ctx, in)
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
	opts := a.policy(in.Policy)
	ledger := staging.LedgerName(in.Mailbox.Org, in.Mailbox.Address)
	res.Ledger = ledger
	// A local attempt the SDK gave up on may still be stopping; two
	// transfers of one mailbox must never append at once.
	unlock, err := a.locks.lock(ctx, ledger)
	if err != nil {
		return res, err
	}
	defer unlock()
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
	src, tgt, release, err := a.connect(ctx, in.Mailbox)
	if err != nil {
		return res, err
	}
	defer release()
	opts.Stage = func(ctx context.Context, item transfer.SkippedItem, body io.Reader) (string, error) {
		name := staging.ItemName(in.Mailbox.Org, in.Mailbox.Address, item.Folder, item.UIDValidity, item.UID)
		_, err := a.Staging.Put(ctx, name, heartbeatReader(ctx, body), map[string]string{
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
	if a.Limits.AppendWindow > 0 {
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
	opts.Progress = func(cp transfer.Checkpoint, st transfer.Stats) {
		activity.RecordHeartbeat(ctx, cp)
	}
	opts.Commit = func(cp transfer.Checkpoint) error { return a.saveJSON(ctx, ledger, cp) }
	start := time.Now()
	res.Started = start.UTC()
	tally := cp.Tally(in.PassID)
	cp, st, err := transfer.Run(ctx, src, tgt, cp, opts)
	res.Finished = time.Now().UTC()
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
	res.SkippedTotal, res.SkippedByReason, res.Staged = skippedSummary(cp.Skipped)
	for _, s := range cp.Skipped {
		if !s.Imported && len(res.Skipped) < MaxReportedItems {
			res.Skipped = append(res.Skipped, s)
		}
	}
	if err != nil {
		return res, wrapIMAP("mailbox "+in.Mailbox.Address, err)
	}
	log.Info("pass done", "copied", st.Copied, "bytes", st.Bytes, "matched", st.Matched, "skipped", res.SkippedTotal, "took", time.Since(start).Round(time.Millisecond))
	if err := a.saveJSON(ctx, staging.ReportName(in.Mailbox.Org, in.Mailbox.Address, in.Pass), res); err != nil {
		return res, err
	}
	return res, nil
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

// ValidateMailbox compares source and target by content hash, flags and dates.
func (a *Activities) ValidateMailbox(ctx context.Context, in ValidateInput) (ValidateResult, error) {
	var res ValidateResult
	opts := a.policy(in.Policy)
	cp, err := a.loadLedger(ctx, staging.LedgerName(in.Mailbox.Org, in.Mailbox.Address))
	if err != nil {
		return res, err
	}
	src, tgt, release, err := a.connect(ctx, in.Mailbox)
	if err != nil {
		return res, err
	}
	defer release()
	stop := keepAlive(ctx)
	v, err := transfer.Validate(ctx, src, tgt, cp, opts.Rules)
	stop()
	if err != nil {
		return res, wrapIMAP("mailbox "+in.Mailbox.Address, err)
	}
	res.Folders, res.Messages, res.Bytes = len(v.Folders), v.Messages, v.Bytes
	res.Problems = v.Problems
	_, res.SkippedByReason, res.Staged = skippedSummary(cp.Skipped)
	t := v.Totals()
	res.Skipped, res.Missing, res.Duplicates = t.Skipped, t.Missing, t.Duplicates
	res.FlagMismatch, res.DateMismatch, res.Extra = t.FlagMismatch, t.DateMismatch, t.Extra
	for _, f := range v.Folders {
		if !f.OK() {
			res.Problems = append(res.Problems, fmt.Sprintf("folder %q -> %q: %d missing, %d duplicates, %d flag and %d date mismatches",
				f.Source, f.Target, f.Missing, f.Duplicates, f.FlagMismatch, f.DateMismatch))
		}
	}
	if len(res.Problems) > MaxReportedItems {
		res.Problems = res.Problems[:MaxReportedItems]
	}
	res.OK = v.OK()
	res.Report = staging.ReportName(in.Mailbox.Org, in.Mailbox.Address, report.ValidationPass)
	if err := a.saveJSON(ctx, res.Report, v); err != nil {
		return res, err
	}
	return res, nil
}

// SwitchRouting points delivery for the organization's addresses at the
// target (or back at the source with Revert).
func (a *Activities) SwitchRouting(ctx context.Context, in RoutingInput) (RoutingResult, error) {
	r := a.Router
	if r == nil {
		r = routing.None{}
	}
	var n int
	var err error
	if in.Revert {
		n, err = r.Revert(ctx, in.Org, in.Addresses)
	} else {
		n, err = r.Switch(ctx, in.Org, in.Addresses)
	}
	if errors.Is(err, routing.ErrPermanent) {
		return RoutingResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("organization %s: routing via %s: %v", in.Org, r.Describe(), err), ErrTypeConfig, nil)
	}
	if err != nil {
		return RoutingResult{}, fmt.Errorf("organization %s: routing via %s: %w", in.Org, r.Describe(), err)
	}
	return RoutingResult{Router: r.Describe(), Changed: n}, nil
}

func (a *Activities) loadLedger(ctx context.Context, name string) (transfer.Checkpoint, error) {
	var cp transfer.Checkpoint
	rc, _, err := a.Staging.Get(ctx, name)
	if errors.Is(err, staging.ErrNotFound) {
		return cp, nil
	}
	if err != nil {
		return cp, wrapIMAP("ledger "+name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if errors.Is(err, staging.ErrCorrupt) {
		// A ledger torn by a crash is no reason to stop: without it the pass
		// reconciles every folder against the target, which never duplicates.
		a.logger().Warn("ledger unreadable; reconciling from scratch", "ledger", name, "error", err)
		return transfer.Checkpoint{}, nil
	}
	if err != nil {
		return cp, fmt.Errorf("ledger %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Errorf("ledger %s: %w", name, err)
	}
	sort.Slice(cp.Folders, func(i, j int) bool { return cp.Folders[i].Source < cp.Folders[j].Source })
	return cp, nil
}

func (a *Activities) saveJSON(ctx context.Context, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if _, err := a.Staging.Put(ctx, name, bytes.NewReader(b), map[string]string{"kind": "ledger"}); err != nil {
		return wrapIMAP("staging "+name, err)
	}
	return nil
}
