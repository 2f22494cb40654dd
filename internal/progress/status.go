package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/mailshift/mailshift/workflows"
)

// StatusRow is one workflow in `starter status --output json`: an
// organization or a campaign. The output is one JSON array of them.
type StatusRow struct {
	Kind        string          `json:"kind"` // "organization" or "campaign"
	Code        string          `json:"code"` // organization code, or campaign name
	Name        string          `json:"name,omitempty"`
	Phase       string          `json:"phase"`
	Terminal    bool            `json:"terminal"` // no further phase follows
	Wave        string          `json:"wave"`
	Mailboxes   StatusMailboxes `json:"mailboxes"`
	Messages    int64           `json:"messages"`
	Bytes       int64           `json:"bytes"`
	Paused      bool            `json:"paused"`
	Consistency string          `json:"consistency"`
	Reason      string          `json:"reason"`
	StartedAt   *time.Time      `json:"started_at"`  // null when unknown
	FinishedAt  *time.Time      `json:"finished_at"` // null while it runs
	// Organizations counts a campaign's organizations; absent for an
	// organization.
	Organizations *StatusOrganizations `json:"organizations,omitempty"`
}

// StatusMailboxes counts mailboxes. For a campaign Total is the mailboxes
// planned and Done those of the organizations started.
type StatusMailboxes struct {
	Total   int `json:"total"`
	Done    int `json:"done"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// StatusOrganizations counts a campaign's organizations.
type StatusOrganizations struct {
	Planned    int `json:"planned"`
	Started    int `json:"started"`
	Running    int `json:"running"`
	Completed  int `json:"completed"`
	Failed     int `json:"failed"`
	RolledBack int `json:"rolled_back"`
}

// StatusRows turns organizations and campaigns into rows, organizations
// first, each in the order given.
func StatusRows(orgs []workflows.Progress, camps []workflows.CampaignProgress) []StatusRow {
	rows := make([]StatusRow, 0, len(orgs)+len(camps))
	for _, p := range orgs {
		rows = append(rows, StatusRow{
			Kind: "organization", Code: p.Organization, Name: p.Name, Phase: string(p.Phase), Terminal: p.Phase.Terminal(), Wave: p.Wave,
			Mailboxes:   StatusMailboxes{Total: p.MailboxesTotal, Done: p.MailboxesDone, Failed: p.MailboxesFailed, Skipped: p.MailboxesSkipped},
			Messages:    p.Messages,
			Bytes:       p.Bytes,
			Paused:      p.Paused,
			Consistency: string(p.OverallConsistency()),
			Reason:      p.Reason,
			StartedAt:   timeOrNil(p.StartedAt),
			FinishedAt:  timeOrNil(p.FinishedAt),
		})
	}
	for _, c := range camps {
		rows = append(rows, StatusRow{
			Kind: "campaign", Code: c.Name, Phase: c.Phase, Terminal: c.Phase == workflows.CampaignPhaseCompleted || !c.FinishedAt.IsZero(),
			Mailboxes:  StatusMailboxes{Total: c.MailboxesPlanned, Done: c.MailboxesStarted},
			Paused:     c.Paused,
			StartedAt:  timeOrNil(c.StartedAt),
			FinishedAt: timeOrNil(c.FinishedAt),
			Organizations: &StatusOrganizations{
				Planned: c.Planned, Started: c.Started, Running: c.Running,
				Completed: c.Completed, Failed: c.Failed, RolledBack: c.RolledBack,
			},
		})
	}
	return rows
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// WriteStatusJSON writes the rows as one indented JSON array ("[]" when
// there are none).
func WriteStatusJSON(w io.Writer, orgs []workflows.Progress, camps []workflows.CampaignProgress) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(StatusRows(orgs, camps))
}

// WriteStatusText writes a section per kind: the organizations as board
// lines (bar, counters, phase, hints; finished ones with their end time),
// then the campaigns one line each.
func (b *Board) WriteStatusText(w io.Writer, orgs []workflows.Progress, camps []workflows.CampaignProgress, now time.Time) {
	if len(orgs) == 0 && len(camps) == 0 {
		fmt.Fprintln(w, "no organization or campaign matches")
		return
	}
	if len(orgs) > 0 {
		fmt.Fprintf(w, "organizations (%d):\n", len(orgs))
		for i, l := range b.Lines(orgs, now) {
			if p := orgs[i]; p.Phase.Terminal() && !p.FinishedAt.IsZero() {
				l += "  finished " + p.FinishedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintln(w, l)
		}
	}
	if len(camps) > 0 {
		if len(orgs) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "campaigns (%d):\n", len(camps))
		for _, c := range camps {
			paused := ""
			if c.Paused {
				paused = " (paused)"
			}
			fmt.Fprintf(w, "%-12s %s%s: organizations %d/%d started, %d running, %d completed, %d failed, %d rolled back; mailboxes %d/%d started\n",
				c.Name, c.Phase, paused, c.Started, c.Planned, c.Running, c.Completed, c.Failed, c.RolledBack, c.MailboxesStarted, c.MailboxesPlanned)
		}
	}
}
