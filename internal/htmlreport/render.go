package htmlreport

import (
	"bufio"
	"embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/mailshift/mailshift/internal/progress"
	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/transfer"
	"github.com/mailshift/mailshift/workflows"
)

//go:embed templates/*.html
var templateFS embed.FS

// The templates are parsed once; html/template escapes every value by
// context (text, attribute, SVG), so addresses, reasons and names chosen by
// others cannot inject markup.
var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"int":        func(n int) string { return groupInt(int64(n)) },
	"int64":      groupInt,
	"bytes":      func(n int64) string { return humanBytes(float64(n)) },
	"when":       when,
	"add":        func(a, b int) int { return a + b },
	"orgCommand": OrgCommand,
	"sub":        func(a, b int) int { return a - b },
	"join": func(ss []string) string {
		out := ""
		for i, s := range ss {
			if i > 0 {
				out += ", "
			}
			out += s
		}
		return out
	},
}).ParseFS(templateFS, "templates/*.html"))

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// Rule is one scoring rule as the report shows it.
type Rule struct {
	ID        string
	Grade     workflows.Consistency
	Meaning   string
	Mailboxes int
}

// Rules are the workflows' scoring rules (workflows.Score), worst grade
// first. A test checks the grades against Score itself.
var Rules = []Rule{
	{ID: workflows.RuleMissing, Grade: workflows.Poor, Meaning: "source messages are not in the target and no reason is recorded"},
	{ID: workflows.RuleDuplicates, Grade: workflows.Poor, Meaning: "messages are in the target more often than in the source"},
	{ID: workflows.RuleAltered, Grade: workflows.Poor, Meaning: "target messages differ from what was copied: their size, or a sampled body, against the copy's digests"},
	{ID: workflows.RuleBadItems, Grade: workflows.Investigate, Meaning: "items were not migrated: rejected by the target, unreadable, or too large and not staged (see the skipped items)"},
	{ID: workflows.RuleFlags, Grade: workflows.Investigate, Meaning: "messages differ in their flags"},
	{ID: workflows.RuleDates, Grade: workflows.Investigate, Meaning: "messages differ in their received date"},
	{ID: workflows.RuleStaged, Grade: workflows.Good, Meaning: "large items are kept in the staging store, not in the target"},
	{ID: workflows.RuleExtra, Grade: workflows.Good, Meaning: "messages in the target are not in the source (mail delivered after the switch)"},
}

// LevelsText names the validation levels of the validated mailboxes, as
// "metadata (24 mailboxes)".
func (o *Organization) LevelsText() string {
	var parts []string
	for _, l := range transfer.Levels {
		if n := o.Levels[string(l)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s (%d mailboxes)", l, n))
		}
	}
	return strings.Join(parts, ", ")
}

// Grades are the consistency scores, best first, with what each means.
var Grades = []struct {
	Grade   workflows.Consistency
	Meaning string
}{
	{workflows.Perfect, "every source message is in the target once, with its flags and date, as far as the validation level looks (full: byte for byte; metadata: size and Message-ID, and the size the copy recorded; sample: also the sampled bodies byte for byte); nothing skipped"},
	{workflows.Good, "nothing lost; the only differences are expected (large items staged, mail delivered after the switch)"},
	{workflows.Investigate, "something was not migrated or differs in its metadata; an operator approves the skipped items before the organization completes"},
	{workflows.Poor, "messages missing without a recorded reason, duplicated, or altered in the target; the organization is rolled back"},
}

type kv struct {
	Label, Value, Class string
}

type reasonRow struct {
	Reason string
	Count  int
}

type orgView struct {
	*Organization
	Title                   string
	Outcome, OutcomeClass   string
	OutcomeSource           string
	Phase                   string
	Dates                   []kv
	Counts                  []kv
	StateCounts             []kv
	Charts                  []Chart
	ChartNote               string
	Reasons                 []reasonRow
	ReasonsChart            *Chart
	Score, ScoreSource      string
	ScoreClass              string
	ScoreCounts             []kv
	ScoreChart              *Chart
	RuleRows                []Rule
	GradeRows               []kv
	Findings                []Finding
	FindingsMore            int
	Failures                []Failure
	FailuresMore            int
	FailuresNote            string
	Notes                   []string
	NotesMore               int
	CSVCommand, SkippedCSV  string
	FailedTotal, DoneTotal  int
	MailboxesTotal, Skipped int
}

// Render writes the report as one self-contained HTML page: styles and
// charts inline, nothing fetched from anywhere.
func (o *Organization) Render(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if err := templates.ExecuteTemplate(bw, "organization.html", o.view()); err != nil {
		return err
	}
	return bw.Flush()
}

func (o *Organization) view() orgView {
	v := orgView{Organization: o}
	v.Title = "mailshift report: " + o.Code
	if o.Name != "" {
		v.Title += " — " + o.Name
	}
	p := o.Progress
	done := o.States[report.Completed] + o.States[report.CompletedWithWarnings]
	v.MailboxesTotal, v.DoneTotal, v.FailedTotal = o.Mailboxes, done, o.failed
	v.Skipped = -1
	started, finished := o.Started, o.Finished
	if p != nil {
		v.MailboxesTotal, v.DoneTotal, v.Skipped = p.MailboxesTotal, p.MailboxesDone, p.MailboxesSkipped
		v.FailedTotal = max(p.MailboxesFailed, o.failed)
		v.Phase = string(p.Phase)
		started, finished = p.StartedAt, p.FinishedAt
	}
	v.Outcome, v.OutcomeClass, v.OutcomeSource = o.outcome()
	v.Dates = []kv{{Label: "Started", Value: when(started)}, {Label: "Finished", Value: when(finished)}}
	if p != nil && p.FinishedAt.IsZero() {
		v.Dates = append(v.Dates, kv{Label: "In phase " + string(p.Phase) + " since", Value: when(p.PhaseStartedAt)})
	}
	v.Dates = append(v.Dates, kv{Label: "Report generated", Value: when(o.Generated)})

	skipped := "—"
	if v.Skipped >= 0 {
		skipped = groupInt(int64(v.Skipped))
	}
	failedClass := ""
	if v.FailedTotal > 0 {
		failedClass = "bad"
	}
	v.Counts = []kv{
		{Label: "Mailboxes", Value: groupInt(int64(v.MailboxesTotal))},
		{Label: "Done (validated)", Value: groupInt(int64(v.DoneTotal)), Class: "ok"},
		{Label: "Failed", Value: groupInt(int64(v.FailedTotal)), Class: failedClass},
		{Label: "Skipped by an operator", Value: skipped},
		{Label: "Messages in the target", Value: groupInt(o.Messages)},
		{Label: "Data in the target", Value: humanBytes(float64(o.Bytes))},
		{Label: "Items skipped", Value: groupInt(int64(o.SkippedItems))},
		{Label: "of them staged", Value: groupInt(int64(o.Staged))},
	}
	for _, s := range []report.State{report.Completed, report.CompletedWithWarnings, report.Failed, report.AwaitingValidation, report.Synced, report.InProgress, report.NotStarted} {
		if n := o.States[s]; n > 0 {
			v.StateCounts = append(v.StateCounts, kv{Label: string(s), Value: groupInt(int64(n))})
		}
	}

	o.charts(&v)
	for _, r := range byCount(o.SkippedByReason) {
		v.Reasons = append(v.Reasons, reasonRow{Reason: r, Count: o.SkippedByReason[r]})
	}
	if len(v.Reasons) > 0 {
		labels, values := make([]string, len(v.Reasons)), make([]int, len(v.Reasons))
		for i, r := range v.Reasons {
			labels[i], values[i] = r.Reason, r.Count
		}
		c := hbars("Skipped items by reason", labels, values, nil)
		v.ReasonsChart = &c
	}
	o.score(&v)
	v.Failures = o.failures
	v.FailuresMore = max(v.FailedTotal-len(o.failures), 0)
	if p == nil {
		v.FailuresNote = "Without Temporal only failed validations are listed: a mailbox whose transfer failed shows as InProgress or NotStarted above, and its error is in the organization's workflow."
	} else if len(p.Failures) >= workflows.MaxReportedFailures {
		v.FailuresNote = fmt.Sprintf("The workflow keeps the first %d failures with their errors; the others are in its history.", workflows.MaxReportedFailures)
	}
	v.Findings, v.FindingsMore = o.findings, o.findingsMore
	v.Notes, v.NotesMore = o.notes, o.notesMore
	v.CSVCommand = "starter report " + progress.ShellQuote(o.Code) + " --format csv --out " + progress.ShellQuote(o.Code+"-mailboxes.csv")
	v.SkippedCSV = "starter report " + progress.ShellQuote(o.Code) + " --skipped --format csv --out " + progress.ShellQuote(o.Code+"-skipped-items.csv")
	return v
}

// outcome is the organization's end (or that it still runs), and where
// that was learnt.
func (o *Organization) outcome() (label, class, source string) {
	if p := o.Progress; p != nil {
		label, class = outcomeOf(*p)
		return label, class, "the organization's workflow"
	}
	source = "the staging store only (Temporal did not answer)"
	done := o.States[report.Completed] + o.States[report.CompletedWithWarnings]
	switch {
	case o.Mailboxes > 0 && done == o.Mailboxes:
		return "Every mailbox validated", "ok", source
	case o.States[report.Failed] > 0:
		return "Mailboxes failed validation", "bad", source
	}
	return "Not finished, or stopped", "info", source
}

func (o *Organization) charts(v *orgView) {
	switch {
	case o.timeline.empty() && o.untimed > 0:
		v.ChartNote = fmt.Sprintf("No chart: the %d mailboxes' pass reports carry no start and finish times (written by a mailshift that did not record them). The counts above are complete.", o.untimed)
		return
	case o.timeline.empty():
		v.ChartNote = "No chart yet: no pass has finished."
		return
	}
	s := o.timeline.buckets()
	done := make([]float64, len(s.Done))
	for i, n := range s.Done {
		done[i] = float64(n)
	}
	v.Charts = []Chart{
		cumulative(s, "Mailboxes done (validated), cumulative", "mailboxes", done, count),
		cumulative(s, "Data copied, cumulative", "bytes", s.Bytes, humanBytes),
		rate(s, "Throughput", "MB/s", s.Bytes, 1e6, mbps),
	}
	if o.untimed > 0 {
		v.ChartNote = fmt.Sprintf("%d mailboxes are not in the charts: their pass reports carry no times.", o.untimed)
	}
}

func (o *Organization) score(v *orgView) {
	counts, rules := o.Scores, o.RulesFired
	v.ScoreSource = "recomputed from the stored validations with the workflow's rules"
	worst := workflows.Consistency("")
	for c := range o.Scores {
		worst = workflows.Worse(worst, workflows.Consistency(c))
	}
	if o.States[report.Failed] > 0 {
		// A failed mailbox was not validated: never Perfect (OverallConsistency).
		worst = workflows.Worse(worst, workflows.Investigate)
	}
	if p := o.Progress; p != nil && (p.Consistency != "" || p.MailboxesFailed > 0) {
		v.ScoreSource = "the organization's workflow"
		worst = p.OverallConsistency()
		counts = map[string]int{}
		for c, n := range p.ConsistencyCounts {
			counts[string(c)] = n
		}
		rules = p.RulesFired
	} else if p == nil {
		v.ScoreSource += "; the workflow's own score is unavailable (" + o.temporalWhy() + ")"
	}
	v.Score = string(worst)
	if v.Score == "" {
		v.Score = "not scored yet"
	}
	v.ScoreClass = map[workflows.Consistency]string{workflows.Perfect: "ok", workflows.Good: "ok", workflows.Investigate: "warn", workflows.Poor: "bad"}[worst]
	var labels []string
	var values []int
	var classes []string
	for _, g := range Grades {
		n := counts[string(g.Grade)]
		v.ScoreCounts = append(v.ScoreCounts, kv{Label: string(g.Grade), Value: groupInt(int64(n))})
		v.GradeRows = append(v.GradeRows, kv{Label: string(g.Grade), Value: g.Meaning})
		labels, values = append(labels, string(g.Grade)), append(values, n)
		classes = append(classes, map[workflows.Consistency]string{workflows.Perfect: "ok", workflows.Good: "good", workflows.Investigate: "warn", workflows.Poor: "bad"}[g.Grade])
	}
	if len(counts) > 0 {
		c := hbars("Mailboxes by consistency score", labels, values, classes)
		v.ScoreChart = &c
	}
	for _, r := range Rules {
		r.Mailboxes = rules[r.ID]
		v.RuleRows = append(v.RuleRows, r)
	}
}

func (o *Organization) temporalWhy() string {
	if o.TemporalNote != "" {
		return o.TemporalNote
	}
	return "not asked"
}

// outcomeOf says how an organization ended, or that it runs, and the
// badge's class.
func outcomeOf(p workflows.Progress) (label, class string) {
	switch p.Phase {
	case workflows.PhaseCompleted:
		if p.Validated() {
			return "Validated", "ok"
		}
		return "Completed", "warn"
	case workflows.PhaseCompletedWithFailures:
		return "Completed with failures", "warn"
	case workflows.PhaseRolledBack:
		return "RolledBack", "bad"
	case workflows.PhaseFailed:
		return "Failed", "bad"
	}
	return "Running", "info"
}
