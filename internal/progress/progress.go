// Package progress renders organization progress for a terminal: a live bar
// per organization and a summary table at the end.
package progress

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"strings"
	"time"

	"github.com/mailshift/mailshift/internal/transfer"
	"github.com/mailshift/mailshift/workflows"
)

// Board redraws one line per organization. On a terminal it rewrites the
// lines in place; elsewhere (CI logs, pipes) it prints a line per
// organization only when it changed, at most every Every.
type Board struct {
	W     io.Writer
	TTY   bool
	Every time.Duration
	// Approver and Address go into the hints (see ApproveCommand), so a
	// hint can be pasted as it is.
	Approver string
	Address  string

	lines    int
	last     map[string]string
	lastAt   time.Time
	prevByte map[string]sample
}

type sample struct {
	bytes int64
	at    time.Time
	rate  float64
}

// NewBoard detects whether w is a terminal.
func NewBoard(w io.Writer) *Board {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb" {
			tty = true
		}
	}
	return &Board{W: w, TTY: tty, Every: 5 * time.Second, Approver: Operator(), last: map[string]string{}, prevByte: map[string]sample{}}
}

// Lines renders one line per organization without writing them; the
// transfer rate is measured between calls.
func (b *Board) Lines(ps []workflows.Progress, now time.Time) []string {
	if b.prevByte == nil {
		b.prevByte = map[string]sample{}
	}
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = b.line(p, now)
	}
	return lines
}

// Draw shows the current state.
func (b *Board) Draw(ps []workflows.Progress, now time.Time) {
	lines := b.Lines(ps, now)
	if b.last == nil {
		b.last = map[string]string{}
	}
	if b.TTY {
		if b.lines > 0 {
			fmt.Fprintf(b.W, "\x1b[%dA", b.lines)
		}
		for _, l := range lines {
			fmt.Fprintf(b.W, "\x1b[2K%s\n", l)
		}
		b.lines = len(lines)
		return
	}
	if now.Sub(b.lastAt) < b.Every {
		return
	}
	b.lastAt = now
	for i, p := range ps {
		key := p.Organization
		plain := stripRate(lines[i])
		if b.last[key] != plain {
			fmt.Fprintln(b.W, lines[i])
			b.last[key] = plain
		}
	}
}

// Break lets other output (a warning on stderr, say) stay visible: on a
// terminal the next Draw starts a new board below it instead of rewriting
// the lines above.
func (b *Board) Break() { b.lines = 0 }

// stripRate lets a non-terminal board skip lines where only the rate moved.
func stripRate(s string) string {
	if i := strings.Index(s, " MB/s"); i > 0 {
		if j := strings.LastIndex(s[:i], " "); j > 0 {
			return s[:j] + s[i+5:]
		}
	}
	return s
}

// barWidth is the width of a progress bar, in characters.
const barWidth = 24

// Bar draws done of total as barWidth characters, '#' for done and '.'
// for the rest: the same numbers as the "done/total mailboxes" counter
// beside it, so 0/24 is an empty bar and 12/24 a half one. How far the
// pass under way is shows as text ("pass 12/24"), not in the bar.
func Bar(done, total int) string {
	fill := 0
	if total > 0 {
		fill = min(max(barWidth*done/total, 0), barWidth)
	}
	return strings.Repeat("#", fill) + strings.Repeat(".", barWidth-fill)
}

func (b *Board) line(p workflows.Progress, now time.Time) string {
	// While an organization runs, validated mailboxes stay at 0 until its
	// cutover: the bar and its counter show mailboxes copied instead, so
	// pre-stage visibly moves; once it has ended, mailboxes validated.
	n, what := p.MailboxesDone, "done"
	if !p.Phase.Terminal() {
		n, what = max(p.MailboxesCopied, p.MailboxesDone), "copied"
	}
	bar := Bar(n, p.MailboxesTotal)
	s := b.prevByte[p.Organization]
	if !s.at.IsZero() && now.Sub(s.at) > 500*time.Millisecond {
		inst := float64(p.Bytes-s.bytes) / now.Sub(s.at).Seconds()
		s.rate = 0.5*s.rate + 0.5*inst
		s.bytes, s.at = p.Bytes, now
	} else if s.at.IsZero() {
		s.bytes, s.at = p.Bytes, now
	}
	b.prevByte[p.Organization] = s
	phase := string(p.Phase)
	if p.Paused {
		phase += " (paused)"
	}
	if p.PassTotal > 0 && !p.Phase.Terminal() {
		phase += fmt.Sprintf(" pass %d/%d", p.PassDone, p.PassTotal)
	}
	// The hint goes last, so it can be copied to the end of the line.
	hint := ""
	if p.Phase == workflows.PhaseAwaitingCutover && p.Approval == nil {
		hint = " — approve with: " + ApproveCommand(p.Organization, b.Approver, b.Address)
	}
	return fmt.Sprintf("%-5s [%s] %3d/%-3d %-6s %s%6d msgs %8.1f MB %6.1f MB/s  %s%s",
		p.Organization, bar, n, p.MailboxesTotal, what, failed(p), p.Messages, mb(p.Bytes), s.rate/1e6, phase, hint)
}

// ApproveCommand is the starter command that approves org's cutover, ready
// to paste: approver is who runs it ("<name>" when unknown, e.g. USER
// unset), the reason a placeholder for the change ticket, and --address
// only when one was given.
func ApproveCommand(org, approver, address string) string {
	if strings.TrimSpace(approver) == "" {
		approver = "<name>"
	}
	s := "starter approve " + ShellQuote(org) + " --approver " + ShellQuote(approver) + ` --reason "<change ticket>"`
	if address != "" {
		s += " --address " + ShellQuote(address)
	}
	return s
}

// ShellQuote quotes s for a POSIX shell: in double quotes when nothing in
// it expands there, in single quotes otherwise. Plain words stay bare.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@+=,") == "" {
		return s
	}
	if !strings.ContainsAny(s, "\"$`\\!") {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func failed(p workflows.Progress) string {
	if p.MailboxesFailed == 0 {
		return ""
	}
	return fmt.Sprintf("(%d failed) ", p.MailboxesFailed)
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// Summary prints the final table, one row per organization, then every
// failure and staged item.
func Summary(w io.Writer, ps []workflows.Progress) {
	fmt.Fprintf(w, "\n%-6s %-22s %-21s %5s %6s %8s %9s  %-26s %8s\n", "ORG", "NAME", "PHASE", "OK", "FAILED", "MESSAGES", "MB", "SKIPPED (REASONS)", "DURATION")
	var tok, tf int
	var tb int64
	var tmsg int64
	for _, p := range ps {
		dur := p.FinishedAt.Sub(p.StartedAt)
		if p.FinishedAt.IsZero() {
			dur = 0
		}
		fmt.Fprintf(w, "%-6s %-22s %-21s %5d %6d %8d %9.1f  %-26s %8s\n",
			p.Organization, trunc(p.Name, 22), p.Phase, p.MailboxesDone, p.MailboxesFailed, p.Messages, mb(p.Bytes),
			skipped(p), dur.Round(100*time.Millisecond))
		tok += p.MailboxesDone
		tf += p.MailboxesFailed
		tb += p.Bytes
		tmsg += p.Messages
	}
	fmt.Fprintf(w, "%-6s %-22s %-21s %5d %6d %8d %9.1f\n", "TOTAL", fmt.Sprintf("%d organizations", len(ps)), "", tok, tf, tmsg, mb(tb))
	for _, p := range ps {
		for _, f := range p.Failures {
			fmt.Fprintf(w, "  FAILED %s %s (%s): %s\n", p.Organization, f.Address, f.Pass, f.Error)
		}
		if p.Reason != "" && p.Phase != workflows.PhaseCompleted {
			fmt.Fprintf(w, "  %s: %s\n", p.Organization, p.Reason)
		}
		if p.TargetMessages > 0 {
			fmt.Fprintf(w, "  %s: %d messages (%.1f MB) in the target, counted from the ledgers and validations (this run appended %d)\n",
				p.Organization, p.TargetMessages, mb(p.TargetBytes), p.Messages)
		}
		if p.MailboxesUnchanged > 0 {
			fmt.Fprintf(w, "  %s: %d mailbox(es) unchanged on both sides since their last validation: nothing copied or read, their last score kept\n", p.Organization, p.MailboxesUnchanged)
		}
		if p.StagedCount > 0 {
			fmt.Fprintf(w, "  %s: %d large items kept in the staging store (see the mailbox reports)\n", p.Organization, p.StagedCount)
		}
		if p.Throttled > 0 {
			fmt.Fprintf(w, "  %s: the target throttled the copy %d time(s); it waited %s as asked, then went on (per mailbox: throttled, throttled_s in mailboxes.csv)\n",
				p.Organization, p.Throttled, p.ThrottledFor.Round(time.Second))
		}
		if p.KeywordsDropped > 0 {
			fmt.Fprintf(w, "  %s: %d message(s) copied without their keywords, which the target does not keep (listed in keywords.csv)\n", p.Organization, p.KeywordsDropped)
		}
		if len(p.Reports) > 0 {
			fmt.Fprintf(w, "  %s: per-mailbox reports in the staging store: %s\n", p.Organization, strings.Join(p.Reports, ", "))
		} else if p.ReportError != "" {
			fmt.Fprintf(w, "  %s: reports not written: %s\n", p.Organization, p.ReportError)
		}
		if p.Consistency != "" || p.MailboxesFailed > 0 {
			fmt.Fprintf(w, "  %s: consistency %s%s\n", p.Organization, p.OverallConsistency(), consistencyReasons(p))
		}
	}
}

func skipped(p workflows.Progress) string {
	if p.Skipped == 0 {
		return "0"
	}
	reasons := make([]string, 0, len(p.SkippedByReason))
	for r, n := range p.SkippedByReason {
		reasons = append(reasons, fmt.Sprintf("%s: %d", r, n))
	}
	sort.Strings(reasons)
	return fmt.Sprintf("%d (%s)", p.Skipped, strings.Join(reasons, ", "))
}

func trunc(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// consistencyReasons lists the scoring rules that fired, with how many
// mailboxes each, most severe first.
func consistencyReasons(p workflows.Progress) string {
	failed := ""
	if p.MailboxesFailed > 0 {
		failed = fmt.Sprintf("%d mailbox(es) failed and are not migrated; ", p.MailboxesFailed)
	}
	if len(p.RulesFired) == 0 {
		if p.Consistency == "" {
			return " (" + strings.TrimSuffix(failed, "; ") + ")"
		}
		return " (" + failed + "every validated mailbox " + exactText(p) + "; nothing skipped" + levelsText(p) + ")"
	}
	ids := make([]string, 0, len(p.RulesFired))
	for id := range p.RulesFired {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s in %d mailbox(es)", id, p.RulesFired[id]))
	}
	var counts []string
	for _, c := range []workflows.Consistency{workflows.Perfect, workflows.Good, workflows.Investigate, workflows.Poor} {
		if n := p.ConsistencyCounts[c]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, c))
		}
	}
	return fmt.Sprintf(" (%s%s; rules: %s%s)", failed, strings.Join(counts, ", "), strings.Join(parts, ", "), levelsText(p))
}

// exactText says what a Perfect score proved at the levels the mailboxes
// were validated at.
func exactText(p workflows.Progress) string {
	if len(p.ValidationLevels) == 1 && p.ValidationLevels[string(transfer.LevelFull)] > 0 || len(p.ValidationLevels) == 0 {
		return "byte-exact with flags and dates"
	}
	return "has every message once, with its size, flags and date, as the copy recorded it"
}

// levelsText names the validation levels the score was computed at.
func levelsText(p workflows.Progress) string {
	if len(p.ValidationLevels) == 0 {
		return ""
	}
	var parts []string
	for _, l := range transfer.Levels {
		if n := p.ValidationLevels[string(l)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", l, n))
		}
	}
	return "; validated at " + strings.Join(parts, ", ")
}

// Operator is who the person at this terminal is, for the default of
// --approver and --operator and for pasteable hints: $USER, else $LOGNAME,
// else the account name (containers and cron jobs often set neither).
func Operator() string {
	for _, v := range []string{"USER", "LOGNAME"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
