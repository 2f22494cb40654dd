package htmlreport

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/workflows"
)

// MaxRows bounds every table of mailboxes (failures, findings): the rest is
// counted in an "and N more" line pointing at the CSV.
const MaxRows = 200

// maxNotes bounds the unreadable-object notes listed.
const maxNotes = 20

// Failure is a failed mailbox and why.
type Failure struct {
	Address string
	Pass    string
	Reason  string
}

// Finding is a validated mailbox whose score is not Perfect.
type Finding struct {
	Address     string
	Consistency string
	Rules       []string
}

// Organization is one organization's HTML report, collected a mailbox at a
// time (Add): counts, skipped items by reason, scores, a bounded list of
// failures and findings, and the passes' times for the charts. Memory grows
// by about 24 bytes per pass, nothing else with the organization's size.
type Organization struct {
	Code, Name string
	// Store describes where the mailbox reports were read.
	Store     string
	Generated time.Time
	// Progress is the organization's workflow result or progress query,
	// when Temporal answered; TemporalNote says why it is missing.
	Progress     *workflows.Progress
	TemporalNote string

	Mailboxes       int
	States          map[report.State]int
	SourceMessages  int64
	Messages, Bytes int64 // in the target, as the mailbox reports count them
	SkippedItems    int
	Staged          int
	SkippedByReason map[string]int
	Scores          map[string]int
	// Levels counts validated mailboxes by validation level.
	Levels     map[string]int
	RulesFired map[string]int
	Started    time.Time
	Finished   time.Time

	failures     []Failure
	failed       int
	failedSeen   map[string]bool
	findings     []Finding
	findingsMore int
	notes        []string
	notesMore    int
	timeline     timeline
	// untimed counts mailboxes with finished passes but no recorded times
	// (reports written before passes recorded them).
	untimed int
}

// NewOrganization starts an empty report.
func NewOrganization(code, name, store string) *Organization {
	return &Organization{Code: code, Name: name, Store: store, Generated: time.Now().UTC(),
		States: map[report.State]int{}, SkippedByReason: map[string]int{}, Scores: map[string]int{}, Levels: map[string]int{},
		RulesFired: map[string]int{}, failedSeen: map[string]bool{}}
}

// Add counts one mailbox's report.
func (o *Organization) Add(r *report.MailboxReport) {
	o.Mailboxes++
	o.States[r.State]++
	o.SourceMessages += r.SourceMessages
	o.Messages += r.TargetMessages
	o.Bytes += r.TargetBytes
	o.SkippedItems += r.Skipped
	o.Staged += r.Staged
	for reason, n := range r.SkippedByReason {
		o.SkippedByReason[reason] += n
	}
	if r.Validation != nil && r.Validation.Level != "" {
		o.Levels[r.Validation.Level]++
	}
	if r.Consistency != "" {
		o.Scores[r.Consistency]++
		for _, id := range r.Rules {
			o.RulesFired[id]++
		}
		if r.Consistency != string(workflows.Perfect) {
			if len(o.findings) < MaxRows {
				o.findings = append(o.findings, Finding{Address: r.Address, Consistency: r.Consistency, Rules: r.Rules})
			} else {
				o.findingsMore++
			}
		}
	}
	if r.State == report.Failed {
		o.addFailure(Failure{Address: r.Address, Pass: "validation", Reason: r.LastError})
	}
	for _, n := range r.Notes {
		if len(o.notes) < maxNotes {
			o.notes = append(o.notes, n)
		} else {
			o.notesMore++
		}
	}
	timed := false
	for _, p := range r.Passes {
		if p.Started.IsZero() || p.Finished.IsZero() {
			continue
		}
		timed = true
		o.timeline.addSpan(p.Started, p.Finished, p.Bytes)
	}
	if len(r.Passes) > 0 && !timed {
		o.untimed++
	}
	if (r.State == report.Completed || r.State == report.CompletedWithWarnings) && !r.Finished.IsZero() {
		o.timeline.addEvent(r.Finished, 1)
	}
	if !r.Started.IsZero() && (o.Started.IsZero() || r.Started.Before(o.Started)) {
		o.Started = r.Started
	}
	if r.Finished.After(o.Finished) {
		o.Finished = r.Finished
	}
}

func (o *Organization) addFailure(f Failure) {
	// Every failed address is remembered (not only those listed), so a
	// mailbox the store and the workflow both report counts once.
	if o.failedSeen[f.Address] {
		return
	}
	o.failedSeen[f.Address] = true
	o.failed++
	if len(o.failures) < MaxRows {
		o.failures = append(o.failures, f)
	}
}

// SetProgress adds what the organization's workflow knows: its phase and
// outcome, its score, and the failures the store cannot show (a transfer
// that failed leaves no report, only a ledger at most).
func (o *Organization) SetProgress(p workflows.Progress) {
	o.Progress = &p
	if o.Name == "" {
		o.Name = p.Name
	}
	for _, f := range p.Failures {
		o.addFailure(Failure{Address: f.Address, Pass: string(f.Pass), Reason: f.Error})
	}
}

// Options tune WriteOrganization.
type Options struct {
	// Name is the organization's name, when known.
	Name string
	// Concurrency is how many mailboxes are read from the store at once.
	Concurrency int
	// Score grades validated mailboxes (see report.Options.Score);
	// default ScoreMailbox.
	Score func(*report.MailboxReport) (string, []string)
	// Progress is the organization's workflow result or progress, if
	// Temporal answered; TemporalNote says why not otherwise.
	Progress     *workflows.Progress
	TemporalNote string
}

// WriteOrganization reads the mailboxes' reports from the store (a few at
// a time, as report.Options.Each does) and writes the organization's HTML
// report to w.
func WriteOrganization(ctx context.Context, w io.Writer, store staging.Store, org string, mailboxes []string, opts Options) (*Organization, error) {
	o := NewOrganization(org, opts.Name, store.Describe())
	if opts.Score == nil {
		opts.Score = ScoreMailbox
	}
	ro := report.Options{Concurrency: opts.Concurrency, Score: opts.Score}
	err := ro.Each(ctx, store, org, mailboxes, func(r *report.MailboxReport) error {
		o.Add(r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("organization %s: reading mailbox reports from %s: %w", org, store.Describe(), err)
	}
	if opts.Progress != nil {
		o.SetProgress(*opts.Progress)
	}
	o.TemporalNote = opts.TemporalNote
	if err := o.Render(w); err != nil {
		return nil, fmt.Errorf("organization %s: writing HTML: %w", org, err)
	}
	return o, nil
}

// ScoreMailbox grades a validated mailbox with the workflows' own rules
// (workflows.Score), for report.Options.Score.
func ScoreMailbox(r *report.MailboxReport) (string, []string) {
	v := r.Validation
	c, rules := workflows.Score(activities.ValidateResult{
		OK: v.OK, Folders: v.Folders, Messages: v.Messages, Bytes: v.Bytes, Skipped: v.Skipped,
		Missing: v.Missing, Duplicates: v.Duplicates, FlagMismatch: v.FlagMismatch, DateMismatch: v.DateMismatch,
		Extra: v.Extra, SkippedByReason: r.SkippedByReason, Staged: r.Staged, Problems: v.Problems,
	})
	ids := make([]string, len(rules))
	for i, rule := range rules {
		ids[i] = rule.ID
	}
	return string(c), ids
}
