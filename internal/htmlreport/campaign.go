package htmlreport

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/mailshift/mailshift/internal/progress"
	"github.com/mailshift/mailshift/workflows"
)

// MaxCampaignRows bounds the campaign's table of organizations (problems
// first); MaxCampaignSections the organizations given a section of their
// own (those that did not validate).
const (
	MaxCampaignRows     = 1000
	MaxCampaignSections = 50
	maxSectionFailures  = 5
)

// CampaignOrg is one organization of a campaign: its plan, and its
// workflow's progress or result once it started.
type CampaignOrg struct {
	Code, Name, Wave string
	Day              string // planned start day
	Mailboxes        int
	Progress         *workflows.Progress
}

// Campaign is a campaign's HTML report: one row per organization and the
// campaign's progress over time, from its organizations' workflows (the
// mailbox reports are per organization: starter report ORG).
type Campaign struct {
	Name      string
	Progress  workflows.CampaignProgress
	Orgs      []CampaignOrg
	Generated time.Time
}

type campaignRow struct {
	CampaignOrg
	Outcome, Class string
	Done, Failed   int
	Bytes          int64
	Score          string
	Section        bool
	Failures       []workflows.MailboxFailure
	FailuresMore   int
	Reason         string
	Started        time.Time
	Finished       time.Time
}

type campaignView struct {
	*Campaign
	Title     string
	Phase     string
	PhaseOK   bool
	Counts    []kv
	Dates     []kv
	Charts    []Chart
	ChartNote string
	Rows      []campaignRow
	RowsMore  int
	Sections  []campaignRow
	SectMore  int
}

// rank orders rows: what needs a look first, then running, validated,
// not started.
func (r campaignRow) rank() int {
	switch r.Class {
	case "bad":
		return 0
	case "warn":
		return 1
	case "info":
		return 2
	case "ok":
		return 3
	}
	return 4
}

// Render writes the campaign's page, self-contained like an organization's.
func (c *Campaign) Render(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if err := templates.ExecuteTemplate(bw, "campaign.html", c.view()); err != nil {
		return fmt.Errorf("campaign %s: writing HTML: %w", c.Name, err)
	}
	return bw.Flush()
}

func (c *Campaign) view() campaignView {
	if c.Generated.IsZero() {
		c.Generated = time.Now().UTC()
	}
	v := campaignView{Campaign: c, Title: "mailshift campaign report: " + c.Name}
	var tl timeline
	var done, failed int
	var bytes int64
	rows := make([]campaignRow, 0, len(c.Orgs))
	for _, o := range c.Orgs {
		r := campaignRow{CampaignOrg: o, Outcome: "Planned", Score: "—"}
		if p := o.Progress; p != nil {
			r.Outcome, r.Class = outcomeOf(*p)
			r.Done, r.Failed, r.Bytes, r.Reason = p.MailboxesDone, p.MailboxesFailed, p.Bytes, p.Reason
			r.Started, r.Finished = p.StartedAt, p.FinishedAt
			if p.Consistency != "" || p.MailboxesFailed > 0 {
				r.Score = string(p.OverallConsistency())
			}
			if p.MailboxesTotal > 0 {
				r.Mailboxes = p.MailboxesTotal
			}
			r.Failures = p.Failures[:min(len(p.Failures), maxSectionFailures)]
			r.FailuresMore = p.MailboxesFailed - len(r.Failures)
			end := p.FinishedAt
			if end.IsZero() {
				end = c.Generated
			}
			tl.addSpan(p.StartedAt, end, p.Bytes)
			tl.addEvent(p.FinishedAt, int64(p.MailboxesDone))
		}
		done, failed, bytes = done+r.Done, failed+r.Failed, bytes+r.Bytes
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].rank() < rows[j].rank() })
	for i := range rows {
		if rows[i].rank() <= 1 {
			if len(v.Sections) < MaxCampaignSections {
				rows[i].Section = true
				v.Sections = append(v.Sections, rows[i])
			} else {
				v.SectMore++
			}
		}
	}
	v.Rows = rows[:min(len(rows), MaxCampaignRows)]
	v.RowsMore = len(rows) - len(v.Rows)

	p := c.Progress
	// The running campaign's phase is the workflow's own name for it.
	v.Phase, v.PhaseOK = "Running", p.Phase == workflows.CampaignPhaseCompleted
	if v.PhaseOK {
		v.Phase = "Completed"
	}
	v.Counts = []kv{
		{Label: "Organizations", Value: groupInt(int64(max(p.Planned, len(c.Orgs))))},
		{Label: "Started", Value: groupInt(int64(p.Started))},
		{Label: "Running", Value: groupInt(int64(p.Running))},
		{Label: "Completed", Value: groupInt(int64(p.Completed)), Class: "ok"},
		{Label: "Failed", Value: groupInt(int64(p.Failed)), Class: badIf(p.Failed)},
		{Label: "Rolled back", Value: groupInt(int64(p.RolledBack)), Class: badIf(p.RolledBack)},
		{Label: "Mailboxes planned", Value: groupInt(int64(p.MailboxesPlanned))},
		{Label: "Mailboxes done", Value: groupInt(int64(done)), Class: "ok"},
		{Label: "Mailboxes failed", Value: groupInt(int64(failed)), Class: badIf(failed)},
		{Label: "Data copied", Value: humanBytes(float64(bytes))},
	}
	v.Dates = []kv{
		{Label: "Plan", Value: fmt.Sprintf("%s to %s (%d days)", p.FirstDay, p.LastDay, p.Days)},
		{Label: "Started", Value: when(p.StartedAt)}, {Label: "Finished", Value: when(p.FinishedAt)},
	}
	if !p.NextStartAt.IsZero() {
		v.Dates = append(v.Dates, kv{Label: "Next organization", Value: p.NextOrg + " at " + when(p.NextStartAt)})
	}
	v.Dates = append(v.Dates, kv{Label: "Report generated", Value: when(c.Generated)})
	if tl.empty() {
		v.ChartNote = "No chart yet: no organization has started."
	} else {
		s := tl.buckets()
		d := make([]float64, len(s.Done))
		for i, n := range s.Done {
			d[i] = float64(n)
		}
		v.Charts = []Chart{
			cumulative(s, "Mailboxes done (validated), cumulative, as organizations finish", "mailboxes", d, count),
			cumulative(s, "Data copied, cumulative", "bytes", s.Bytes, humanBytes),
			rate(s, "Throughput", "MB/s", s.Bytes, 1e6, mbps),
		}
	}
	return v
}

func badIf(n int) string {
	if n > 0 {
		return "bad"
	}
	return ""
}

// OrgCommand is the command that writes an organization's own report.
func OrgCommand(code string) string {
	return "starter report " + progress.ShellQuote(code) + " --format html --out " + progress.ShellQuote(code+".html")
}
