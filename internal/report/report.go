// Package report builds per-mailbox migration reports (state, passes,
// messages, bytes, durations, skipped items with their reasons, validation)
// from what the activities leave in the staging store: the per-pass reports
// (<org>/<mailbox>/report-<pass>.json), the validation
// (report-validation.json) and the ledger (<org>/<mailbox>/ledger.json).
//
// It reads one mailbox at a time (a few at once, delivered in order), so an
// organization of 50,000 mailboxes is reported in bounded memory with Each
// and the streaming writers; Build collects the reports of small ones.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/mailshift/mailshift/internal/score"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// State is where a mailbox's migration stands, as the staging store shows it.
type State string

const (
	// NotStarted: nothing of the mailbox is in the store.
	NotStarted State = "NotStarted"
	// InProgress: a transfer left a ledger but no pass has finished (it is
	// running, or it failed; the store does not record which).
	InProgress State = "InProgress"
	// Synced: a pre-cutover pass (prestage or delta) finished.
	Synced State = "Synced"
	// AwaitingValidation: the final (or post-switch) pass finished and the
	// mailbox was not validated yet.
	AwaitingValidation State = "AwaitingValidation"
	// Completed: validated; nothing missing, duplicated or skipped.
	Completed State = "Completed"
	// CompletedWithWarnings: validated and nothing is missing, but items were
	// skipped (see SkippedItems) or flags or dates differ.
	CompletedWithWarnings State = "CompletedWithWarnings"
	// Failed: validation found messages missing or duplicated, or problems;
	// or the mailbox's last pass failed (LastError says how), or readiness
	// found it not ready.
	Failed State = "Failed"
	// Skipped: an operator took the mailbox out of its organization
	// (skip-mailbox); the organization decided it, the store cannot tell.
	Skipped State = "Skipped"
)

// FailurePass names the record an activity saves when a pass over a
// mailbox fails (<org>/<mailbox>/report-failure.json): the store alone
// then tells a failed pass from one that never ran.
const FailurePass = "failure"

// Failure is a failed pass, as saved under FailurePass. A later pass that
// finishes (Finished after At) supersedes it.
type Failure struct {
	Pass  string    `json:"pass"`
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

// TransferPasses are the passes whose reports TransferMailbox saves, in the
// order a migration runs them (workflows.PassPreStage, PassDelta, PassFinal,
// PassPostSwitch). A later delta pass replaces the earlier one's report.
var TransferPasses = []string{"prestage", "delta", "final", "post-switch"}

// ValidationPass names the report ValidateMailbox saves.
const ValidationPass = "validation"

// PassReport is one finished pass.
type PassReport struct {
	Pass           string    `json:"pass"`
	Folders        int       `json:"folders"`
	Copied         int64     `json:"copied"`
	Bytes          int64     `json:"bytes"`
	Matched        int64     `json:"matched"`
	SourceMessages int64     `json:"source_messages"`
	SkippedTotal   int       `json:"skipped_total"`
	Resumed        bool      `json:"resumed"`
	Started        time.Time `json:"started,omitzero"`
	Finished       time.Time `json:"finished,omitzero"`
	// DurationSeconds is Finished-Started (0 when the pass report predates
	// recorded times).
	DurationSeconds float64 `json:"duration_seconds"`
	// Throttled counts the target's requests to slow down during the pass,
	// and ThrottledFor the time spent waiting on them.
	Throttled    int           `json:"throttled,omitempty"`
	ThrottledFor time.Duration `json:"throttled_for,omitempty"`
}

// Validation summarises the mailbox's validation.
type Validation struct {
	OK             bool  `json:"ok"`
	Folders        int   `json:"folders"`
	Messages       int   `json:"messages"` // source messages expected in the target
	Bytes          int64 `json:"bytes"`
	TargetMessages int   `json:"target_messages"` // every message in the compared target folders
	Skipped        int   `json:"skipped"`
	Missing        int   `json:"missing"`
	Duplicates     int   `json:"duplicates"`
	FlagMismatch   int   `json:"flag_mismatch"`
	DateMismatch   int   `json:"date_mismatch"`
	Extra          int   `json:"extra"`
	// Level is how deep the validation looked (metadata, sample, full);
	// Altered and Sampled as in transfer.FolderCheck.
	Level    string   `json:"level,omitempty"`
	Altered  int      `json:"altered,omitempty"`
	Sampled  int      `json:"sampled,omitempty"`
	Problems []string `json:"problems,omitempty"`
	// Rerendered: the target re-renders MIME; messages were compared by
	// identity and content, not bytes.
	Rerendered bool `json:"rerendered,omitempty"`
}

// KeywordNote is a message copied without its keywords to a target that
// keeps none: not a failure, but the user loses those labels.
type KeywordNote struct {
	Folder       string   `json:"folder"`
	UIDValidity  uint32   `json:"uidvalidity"`
	UID          uint32   `json:"uid"`
	TargetFolder string   `json:"target_folder"`
	TargetUID    uint32   `json:"target_uid,omitempty"`
	Keywords     []string `json:"keywords"`
}

// MailboxReport is one mailbox's migration, after the fashion of
// Get-MigrationUserStatistics.
type MailboxReport struct {
	Organization string `json:"organization"`
	Address      string `json:"address"`
	State        State  `json:"state"`
	// Consistency and Rules are filled by Options.Score for validated
	// mailboxes (the workflows' scoring rules: Perfect, Good, ...).
	Consistency string       `json:"consistency,omitempty"`
	Rules       []string     `json:"rules,omitempty"`
	Passes      []PassReport `json:"passes,omitempty"`
	// Started is the first recorded pass start, Finished the last recorded
	// end; DurationSeconds sums the passes' durations.
	Started         time.Time `json:"started,omitzero"`
	Finished        time.Time `json:"finished,omitzero"`
	DurationSeconds float64   `json:"duration_seconds"`
	// Folders, Copied, CopiedBytes and Matched are the ledger's totals over
	// every pass; Imported counts staged items appended later.
	Folders        int   `json:"folders"`
	SourceMessages int64 `json:"source_messages"` // as the last finished pass saw the source
	Copied         int64 `json:"copied"`
	CopiedBytes    int64 `json:"copied_bytes"`
	Matched        int64 `json:"matched"`
	Imported       int   `json:"imported"`
	ImportedBytes  int64 `json:"imported_bytes"`
	// TargetMessages and TargetBytes are the migrated messages in the
	// target: as validated (expected minus missing, and their bytes) when
	// the mailbox was validated, otherwise copied+matched+imported and the
	// bytes mailshift wrote.
	TargetMessages int64 `json:"target_messages"`
	TargetBytes    int64 `json:"target_bytes"`
	// Skipped counts items not in the target (imported ones excluded);
	// Staged of them are kept in the staging store.
	Skipped         int            `json:"skipped"`
	SkippedByReason map[string]int `json:"skipped_by_reason,omitempty"`
	Staged          int            `json:"staged"`
	// SkippedItems lists every item the ledger records, imported ones
	// included (Imported set).
	SkippedItems []transfer.SkippedItem `json:"skipped_items,omitempty"`
	// KeywordsDropped counts messages copied without their keywords (the
	// ledger's count); KeywordNotes lists them, from the copy's digests.
	KeywordsDropped int64         `json:"keywords_dropped,omitempty"`
	KeywordNotes    []KeywordNote `json:"keyword_notes,omitempty"`
	Validation      *Validation   `json:"validation,omitempty"`
	LastError       string        `json:"last_error,omitempty"`
	// Notes name stored objects that could not be read (corrupt, not JSON).
	Notes []string `json:"notes,omitempty"`
}

// Options tune Each and Build. The zero value is ready to use.
type Options struct {
	// Concurrency is how many mailboxes are read at once (default 8); the
	// reports are still delivered in input order.
	Concurrency int
	// Score grades a validated mailbox (it is not called for others) into
	// a consistency and the ids of the rules that fired; default
	// DefaultScore, the workflows' own rules (internal/score).
	Score func(r *MailboxReport) (consistency string, rules []string)
}

// DefaultScore grades a validated mailbox by the rules the workflows score
// it with: a report never leaves consistency and rules empty for a
// validated mailbox.
func DefaultScore(r *MailboxReport) (string, []string) {
	v := r.Validation
	g, hits := score.Grade(score.Counts{
		Missing: v.Missing, Duplicates: v.Duplicates, FlagMismatch: v.FlagMismatch, DateMismatch: v.DateMismatch,
		Extra: v.Extra, SkippedByReason: r.SkippedByReason, Staged: r.Staged, Altered: v.Altered,
		Rerendered: v.Rerendered, Level: v.Level, KeywordsDropped: int(r.KeywordsDropped),
	})
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.ID)
	}
	return g, ids
}

// DefaultConcurrency is Options.Concurrency's default.
const DefaultConcurrency = 8

// Each calls fn with the report of every mailbox, in order.
func Each(ctx context.Context, store staging.Store, org string, mailboxes []string, fn func(*MailboxReport) error) error {
	return Options{}.Each(ctx, store, org, mailboxes, fn)
}

// Build returns the reports of mailboxes, in order. Missing objects make a
// mailbox NotStarted, never an error; errors are the store's (or ctx's).
func Build(ctx context.Context, store staging.Store, org string, mailboxes []string) ([]MailboxReport, error) {
	return Options{}.Build(ctx, store, org, mailboxes)
}

// Build is the package's Build with options.
func (o Options) Build(ctx context.Context, store staging.Store, org string, mailboxes []string) ([]MailboxReport, error) {
	out := make([]MailboxReport, 0, len(mailboxes))
	err := o.Each(ctx, store, org, mailboxes, func(r *MailboxReport) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}

// Each reads up to Concurrency mailboxes at once and calls fn with their
// reports in input order. It stops at the first error, fn's included.
func (o Options) Each(ctx context.Context, store staging.Store, org string, mailboxes []string, fn func(*MailboxReport) error) error {
	n := o.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	type slot struct {
		r    MailboxReport
		err  error
		done chan struct{}
	}
	ctx, cancel := context.WithCancel(ctx)
	window := make(chan *slot, n-1)
	go func() {
		defer close(window)
		for _, m := range mailboxes {
			s := &slot{done: make(chan struct{})}
			select {
			case window <- s:
			case <-ctx.Done():
				return
			}
			go func() {
				defer close(s.done)
				s.r, s.err = o.mailbox(ctx, store, org, m)
			}()
		}
	}()
	defer func() {
		// Leave nothing running behind: stop the reader, wait for readers.
		cancel()
		for s := range window {
			<-s.done
		}
	}()
	for s := range window {
		<-s.done
		if s.err != nil {
			return s.err
		}
		if err := fn(&s.r); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Mailbox reads one mailbox's report.
func (o Options) Mailbox(ctx context.Context, store staging.Store, org, address string) (MailboxReport, error) {
	return o.mailbox(ctx, store, org, address)
}

func (o Options) mailbox(ctx context.Context, store staging.Store, org, address string) (MailboxReport, error) {
	r := MailboxReport{Organization: org, Address: address, State: NotStarted}
	var cp transfer.Checkpoint
	hasLedger, err := r.load(ctx, store, staging.LedgerName(org, address), &cp)
	if err != nil {
		return r, err
	}
	var took time.Duration
	for _, pass := range TransferPasses {
		var p PassReport // decoded from the saved activities.TransferResult
		ok, err := r.load(ctx, store, staging.ReportName(org, address, pass), &p)
		if err != nil {
			return r, err
		}
		if ok {
			took += r.addPass(pass, p)
		}
	}
	r.DurationSeconds = seconds(took)
	var v transfer.Validation
	validated, err := r.load(ctx, store, staging.ReportName(org, address, ValidationPass), &v)
	if err != nil {
		return r, err
	}
	if validated {
		r.Validation = summarise(v)
	}
	var f Failure
	failed, err := r.load(ctx, store, staging.ReportName(org, address, FailurePass), &f)
	if err != nil {
		return r, err
	}
	r.addLedger(cp)
	if r.KeywordsDropped > 0 {
		segs, notes, err := Digests(ctx, store, org, address)
		if err != nil {
			return r, err
		}
		r.Notes = append(r.Notes, notes...)
		r.addKeywordNotes(segs)
	}
	r.State = r.state(hasLedger)
	if failed {
		r.addFailure(f)
	}
	if r.Validation != nil {
		score := o.Score
		if score == nil {
			score = DefaultScore
		}
		r.Consistency, r.Rules = score(&r)
	}
	return r, nil
}

// load decodes a stored JSON object into v. A missing object is (false,
// nil); one that cannot be read back (corrupt, not JSON) is noted and
// (false, nil); other failures (network, credentials, ctx) are errors.
func (r *MailboxReport) load(ctx context.Context, store staging.Store, name string, v any) (bool, error) {
	rc, _, err := store.Get(ctx, name)
	if errors.Is(err, staging.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("report %s: %w", name, err)
	}
	defer rc.Close()
	// Read to EOF: that is where the store verifies the content's hash.
	b, err := io.ReadAll(rc)
	if errors.Is(err, staging.ErrCorrupt) {
		r.Notes = append(r.Notes, fmt.Sprintf("%s: %v", name, err))
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("report %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("%s: not readable: %v", name, err))
		return false, nil
	}
	return true, nil
}

// addPass records a finished pass and returns how long it took.
func (r *MailboxReport) addPass(pass string, pr PassReport) time.Duration {
	p := pr
	pr.Pass, pr.DurationSeconds = pass, 0
	var took time.Duration
	if !p.Started.IsZero() && p.Finished.After(p.Started) {
		took = p.Finished.Sub(p.Started)
		pr.DurationSeconds = seconds(took)
	}
	r.Passes = append(r.Passes, pr)
	r.SourceMessages = p.SourceMessages
	if !p.Started.IsZero() && (r.Started.IsZero() || p.Started.Before(r.Started)) {
		r.Started = p.Started
	}
	if p.Finished.After(r.Finished) {
		r.Finished = p.Finished
	}
	return took
}

// seconds rounds to the millisecond.
func seconds(d time.Duration) float64 { return d.Round(time.Millisecond).Seconds() }

func summarise(v transfer.Validation) *Validation {
	t := v.Totals()
	return &Validation{OK: v.OK(), Folders: len(v.Folders), Messages: v.Messages, Bytes: v.Bytes, Problems: v.Problems,
		TargetMessages: t.TargetMessages, Skipped: t.Skipped, Missing: t.Missing, Duplicates: t.Duplicates,
		FlagMismatch: t.FlagMismatch, DateMismatch: t.DateMismatch, Extra: t.Extra,
		Level: string(v.Level), Altered: t.Altered, Sampled: t.Sampled, Rerendered: v.Rerendered}
}

func (r *MailboxReport) addLedger(cp transfer.Checkpoint) {
	r.Folders = len(cp.Folders)
	for _, f := range cp.Folders {
		r.Copied += f.Copied
		r.CopiedBytes += f.Bytes
		r.Matched += f.Matched
	}
	r.SkippedItems = cp.Skipped
	for _, f := range cp.Folders {
		r.KeywordsDropped += f.KeywordsDropped
	}
	for _, s := range cp.Skipped {
		if s.Imported {
			r.Imported++
			r.ImportedBytes += s.Size
			continue
		}
		if r.SkippedByReason == nil {
			r.SkippedByReason = map[string]int{}
		}
		r.Skipped++
		r.SkippedByReason[s.Reason]++
		if s.StagedAs != "" {
			r.Staged++
		}
	}
	r.TargetMessages = r.Copied + r.Matched + int64(r.Imported)
	r.TargetBytes = r.CopiedBytes + r.ImportedBytes
	if v := r.Validation; v != nil {
		r.TargetMessages = int64(v.Messages - v.Missing)
		r.TargetBytes = v.Bytes
	}
}

func (r *MailboxReport) state(hasLedger bool) State {
	if v := r.Validation; v != nil {
		switch {
		case v.Missing > 0 || v.Duplicates > 0 || len(v.Problems) > 0:
			r.LastError = validationError(v)
			return Failed
		case r.Skipped > 0 || v.FlagMismatch > 0 || v.DateMismatch > 0:
			return CompletedWithWarnings
		}
		return Completed
	}
	last := ""
	for _, p := range r.Passes {
		last = p.Pass
	}
	switch last {
	case "final", "post-switch":
		return AwaitingValidation
	case "prestage", "delta":
		return Synced
	}
	if hasLedger {
		return InProgress
	}
	if len(r.Notes) > 0 {
		r.LastError = r.Notes[0]
		return InProgress // something was written, but cannot be read back
	}
	return NotStarted
}

// addFailure makes the mailbox Failed if its latest pass failed: the
// failure is later than every finished pass and the validation did not
// pass after it (a validated mailbox keeps its validation's verdict).
func (r *MailboxReport) addFailure(f Failure) {
	if r.State == Completed || r.State == CompletedWithWarnings || r.State == Failed {
		return
	}
	if !f.At.After(r.Finished) {
		return // a later pass finished: the failure was overcome
	}
	r.State = Failed
	r.LastError = f.Pass + ": " + f.Error
}

// Outcome is what an organization's workflow decided of a mailbox. The
// store records what finished; only the workflow knows that a pass failed
// for good (all retries spent), that readiness refused a mailbox, or that
// an operator skipped it.
type Outcome struct {
	// Status is the workflow's: "active", "failed", "skipped" or
	// "validated" (workflows' mailbox table).
	Status string `json:"status"`
	Pass   string `json:"pass,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Apply corrects the report by the workflow's outcome: a failed mailbox
// is Failed with the failure's pass and error (the store's own error if
// the workflow no longer holds it), a skipped one Skipped.
func (r *MailboxReport) Apply(o Outcome) {
	switch o.Status {
	case "failed":
		r.State = Failed
		switch {
		case o.Error != "":
			r.LastError = o.Pass + ": " + o.Error
		case r.LastError == "":
			r.LastError = "failed; the error is in the Mailbox workflow's history (only the first failures are kept in the organization's progress)"
		}
	case "skipped":
		r.State = Skipped
		if r.LastError == "" {
			r.LastError = "skipped by an operator"
		}
	}
}

func validationError(v *Validation) string {
	var parts []string
	if v.Missing > 0 {
		parts = append(parts, fmt.Sprintf("%d messages missing", v.Missing))
	}
	if v.Duplicates > 0 {
		parts = append(parts, fmt.Sprintf("%d duplicated", v.Duplicates))
	}
	if len(v.Problems) > 0 {
		parts = append(parts, v.Problems[0])
	}
	return "validation: " + strings.Join(parts, "; ")
}

// Discover lists the mailboxes of org that have a ledger or a pass report
// in the store, sorted. It lists the whole <org>/ prefix (staged items
// included), so an inventory is the better source for large organizations.
func Discover(ctx context.Context, store staging.Store, org string) ([]string, error) {
	prefix := staging.Name(org) + "/"
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, o := range objs {
		mailbox, file, ok := strings.Cut(strings.TrimPrefix(o.Name, prefix), "/")
		if !ok || strings.Contains(file, "/") || file != "ledger.json" && !(strings.HasPrefix(file, "report-") && strings.HasSuffix(file, ".json")) {
			continue
		}
		m, err := url.PathUnescape(mailbox)
		if err != nil || seen[m] {
			continue
		}
		seen[m] = true
		out = append(out, m)
	}
	sort.Strings(out)
	return out, nil
}

// addKeywordNotes lists the messages whose keywords the copy did not send,
// once each (a pass run again writes its segment again), in folder and UID
// order.
func (r *MailboxReport) addKeywordNotes(segs []transfer.FolderDigests) {
	type key struct {
		folder   string
		validity uint32
		uid      uint32
	}
	seen := map[key]bool{}
	for _, s := range segs {
		for _, d := range s.Digests {
			k := key{s.Source, s.UIDValidity, d.UID}
			if len(d.Keywords) == 0 || seen[k] {
				continue
			}
			seen[k] = true
			r.KeywordNotes = append(r.KeywordNotes, KeywordNote{Folder: s.Source, UIDValidity: s.UIDValidity, UID: d.UID, TargetFolder: s.Target, TargetUID: d.TargetUID, Keywords: d.Keywords})
		}
	}
	sort.Slice(r.KeywordNotes, func(i, j int) bool {
		a, b := r.KeywordNotes[i], r.KeywordNotes[j]
		if a.Folder != b.Folder {
			return a.Folder < b.Folder
		}
		if a.UIDValidity != b.UIDValidity {
			return a.UIDValidity < b.UIDValidity
		}
		return a.UID < b.UID
	})
}

// Digests reads every digest segment of a mailbox. A segment that cannot
// be read is left out with a note.
func Digests(ctx context.Context, store staging.Store, org, mailbox string) ([]transfer.FolderDigests, []string, error) {
	objs, err := store.List(ctx, staging.DigestPrefix(org, mailbox))
	if err != nil {
		return nil, nil, err
	}
	var out []transfer.FolderDigests
	var notes []string
	for _, o := range objs {
		rc, _, err := store.Get(ctx, o.Name)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, err
			}
			notes = append(notes, fmt.Sprintf("digest segment %s: %v", o.Name, err))
			continue
		}
		var d transfer.FolderDigests
		err = json.NewDecoder(rc).Decode(&d)
		rc.Close()
		if err != nil {
			notes = append(notes, fmt.Sprintf("digest segment %s: %v", o.Name, err))
			continue
		}
		out = append(out, d)
	}
	return out, notes, nil
}
