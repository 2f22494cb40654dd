package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/workflows"
)

func TestBarMatchesTheCounter(t *testing.T) {
	for _, c := range []struct {
		done, total int
		want        string
	}{
		{0, 24, strings.Repeat(".", 24)},
		{12, 24, strings.Repeat("#", 12) + strings.Repeat(".", 12)},
		{24, 24, strings.Repeat("#", 24)},
		{1, 3, strings.Repeat("#", 8) + strings.Repeat(".", 16)},
		{0, 0, strings.Repeat(".", 24)},
		{30, 24, strings.Repeat("#", 24)},
	} {
		if got := Bar(c.done, c.total); got != c.want {
			t.Errorf("Bar(%d, %d) = %s, want %s", c.done, c.total, got, c.want)
		}
	}
}

func TestLineBarIgnoresThePassAndFailures(t *testing.T) {
	b := NewBoard(&bytes.Buffer{})
	// Pre-stage finished its pass for every mailbox: none is validated yet.
	p := workflows.Progress{Organization: "RXH", Phase: workflows.PhasePreStage, MailboxesTotal: 24, PassDone: 24, PassTotal: 24, MailboxesFailed: 3}
	l := b.Lines([]workflows.Progress{p}, time.Now())[0]
	if !strings.Contains(l, "["+strings.Repeat(".", 24)+"]") || !strings.Contains(l, "  0/24 ") {
		t.Errorf("0/24 must show an empty bar: %s", l)
	}
	p.MailboxesDone = 12
	l = b.Lines([]workflows.Progress{p}, time.Now())[0]
	if !strings.Contains(l, "["+strings.Repeat("#", 12)+strings.Repeat(".", 12)+"]") || !strings.Contains(l, " 12/24 ") || !strings.Contains(l, "pass 24/24") {
		t.Errorf("12/24 must show a half bar: %s", l)
	}
}

func TestApproveHintCanBePasted(t *testing.T) {
	p := workflows.Progress{Organization: "RXH", Phase: workflows.PhaseAwaitingCutover, MailboxesTotal: 2}
	b := &Board{Approver: "alice"}
	l := b.Lines([]workflows.Progress{p}, time.Now())[0]
	if want := `approve with: starter approve RXH --approver alice --reason "<change ticket>"`; !strings.HasSuffix(l, want) {
		t.Errorf("hint %q, want suffix %q", l, want)
	}
	b = &Board{Address: "temporal.example:7233"}
	l = b.Lines([]workflows.Progress{p}, time.Now())[0]
	if want := `starter approve RXH --approver "<name>" --reason "<change ticket>" --address temporal.example:7233`; !strings.HasSuffix(l, want) {
		t.Errorf("hint %q, want suffix %q", l, want)
	}
	for in, want := range map[string]string{
		"alice":         "alice",
		"Jane Doe":      `"Jane Doe"`,
		"<name>":        `"<name>"`,
		"it's $HOME":    `'it'\''s $HOME'`,
		"":              `""`,
		"a@b.example:1": "a@b.example:1",
	} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestStatusJSONShape(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	orgs := []workflows.Progress{
		{Organization: "RXH", Name: "Rex Holdings", Wave: "w1", Phase: workflows.PhaseCompleted, MailboxesTotal: 24, MailboxesDone: 23, MailboxesFailed: 1,
			MailboxesSkipped: 0, Messages: 1200, Bytes: 5e6, Consistency: workflows.Perfect, StartedAt: start, FinishedAt: start.Add(time.Hour)},
		{Organization: "KLM", Phase: workflows.PhasePreStage, MailboxesTotal: 3, Paused: true, Reason: "paused by bob"},
	}
	camps := []workflows.CampaignProgress{{Name: "spring", Phase: workflows.CampaignPhaseRunning, Planned: 4, Started: 2, Running: 1, Completed: 1, MailboxesPlanned: 40, MailboxesStarted: 27, StartedAt: start}}
	var buf bytes.Buffer
	if err := WriteStatusJSON(&buf, orgs, camps); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	for _, r := range rows {
		for _, k := range []string{"kind", "code", "phase", "terminal", "wave", "mailboxes", "messages", "bytes", "paused", "consistency", "reason", "started_at", "finished_at"} {
			if _, ok := r[k]; !ok {
				t.Errorf("row %v has no %q", r["code"], k)
			}
		}
		mb := r["mailboxes"].(map[string]any)
		for _, k := range []string{"total", "done", "failed", "skipped"} {
			if _, ok := mb[k]; !ok {
				t.Errorf("row %v: mailboxes has no %q", r["code"], k)
			}
		}
	}
	r := rows[0]
	if r["kind"] != "organization" || r["code"] != "RXH" || r["phase"] != "Completed" || r["terminal"] != true || r["wave"] != "w1" ||
		r["mailboxes"].(map[string]any)["done"] != 23.0 || r["messages"] != 1200.0 || r["consistency"] != "Investigate" /* 1 failed: never Perfect (issue #13) */ ||
		r["started_at"] != "2026-03-01T10:00:00Z" || r["finished_at"] != "2026-03-01T11:00:00Z" {
		t.Errorf("finished organization: %v", r)
	}
	if r := rows[1]; r["terminal"] != false || r["paused"] != true || r["started_at"] != nil || r["finished_at"] != nil || r["organizations"] != nil {
		t.Errorf("running organization: %v", r)
	}
	if r := rows[2]; r["kind"] != "campaign" || r["code"] != "spring" || r["organizations"].(map[string]any)["started"] != 2.0 || r["mailboxes"].(map[string]any)["total"] != 40.0 {
		t.Errorf("campaign: %v", r)
	}
	buf.Reset()
	if err := WriteStatusJSON(&buf, nil, nil); err != nil || strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("no rows: %q, %v", buf.String(), err)
	}
}

// An organization whose validated mailboxes are all Perfect but one of
// whose mailboxes failed printed "consistency Perfect" (issue #13).
func TestSummaryNeverPerfectWithAFailedMailbox(t *testing.T) {
	var b strings.Builder
	p := workflows.Progress{Organization: "RXH", Phase: workflows.PhaseCompletedWithFailures, MailboxesTotal: 3, MailboxesDone: 2, MailboxesFailed: 1,
		Consistency: workflows.Perfect, ConsistencyCounts: map[workflows.Consistency]int{workflows.Perfect: 2},
		Failures: []workflows.MailboxFailure{{Address: "c@rxh", Pass: workflows.PassFinal, Error: "AuthFailed: login refused"}}}
	Summary(&b, []workflows.Progress{p})
	out := b.String()
	if strings.Contains(out, "Perfect (") || !strings.Contains(out, "consistency Investigate (1 mailbox(es) failed") {
		t.Fatalf("summary:\n%s", out)
	}
}
