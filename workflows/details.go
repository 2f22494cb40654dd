package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// liveUpsertEvery bounds how often progress alone (a mailbox pass booked)
// upserts the search attributes: each upsert is a history event, and an
// organization of 50,000 mailboxes books 100,000 passes or more. A phase
// change, a pause or resume and an approval upsert at once. The details
// cost no event and follow every pass.
const liveUpsertEvery = 10 * time.Second

// listedValues are the search attributes that move while mailboxes run.
type listedValues struct {
	done, failed int
	bytes        int64
	paused       bool
}

// listedNow is what the list should show now. MailboxesDone counts the
// validated mailboxes once the organization has ended (as Progress does),
// and while it runs the mailboxes copied to the target so far: during
// pre-stage nothing is validated yet, and "0 done" is what an operator
// misread as no progress.
func (o *organization) listedNow() listedValues {
	p := &o.p
	done := p.MailboxesDone
	if !p.Phase.Terminal() {
		done = max(done, p.MailboxesCopied)
	}
	return listedValues{done: done, failed: p.MailboxesFailed, bytes: p.Bytes, paused: p.Paused}
}

// publish upserts the search attributes and the Web UI's current details.
func (o *organization) publish(ctx workflow.Context) {
	p := &o.p
	sa := []temporal.SearchAttributeUpdate{
		SAOrganizationCode.ValueSet(o.in.Code),
		SAMigrationPhase.ValueSet(string(p.Phase)),
		SAWave.ValueSet(o.in.Wave),
		SAMailboxesTotal.ValueSet(int64(p.MailboxesTotal)),
		SAMailboxesDone.ValueSet(int64(p.MailboxesDone)),
		SAMailboxesFailed.ValueSet(int64(p.MailboxesFailed)),
		SABytesCopied.ValueSet(float64(p.Bytes)),
	}
	if o.live {
		l := o.listedNow()
		sa[4] = SAMailboxesDone.ValueSet(int64(l.done))
		sa = append(sa, SAMigrationPaused.ValueSet(l.paused))
		o.listed, o.listedAt = l, workflow.Now(ctx)
	}
	if a := p.Approval; a != nil {
		sa = append(sa, SACutoverApprovedBy.ValueSet(a.Approver))
	}
	c := p.Consistency
	if o.truth && c != "" {
		// The Web UI's list filters by it: never Perfect with a failed
		// mailbox (a value, not a command: replay does not compare it).
		c = p.OverallConsistency()
	}
	if c != "" {
		sa = append(sa, SAConsistency.ValueSet(string(c)))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, sa...); err != nil {
		o.logger.Warn("upsert search attributes", "error", err)
	}
	workflow.SetCurrentDetails(ctx, o.details())
	o.gaugePhase(ctx)
}

// progressed shows a change of the counters: the details at once (no
// history event), the search attributes when one of them changed and the
// last upsert is liveUpsertEvery old. A change inside that interval is
// upserted with the next pass booked after it, or the next phase change,
// pause or approval, or when a pause has stopped the last running mailbox;
// a timer to catch it would cost events of its own.
// Runs before versionLiveProgress showed progress only at phase changes.
func (o *organization) progressed(ctx workflow.Context) {
	if !o.live {
		return
	}
	// A paused organization whose last running mailbox just reported will
	// not change again until it is resumed: what the list shows now is
	// what it shows for the whole pause, so it must be the truth.
	settled := o.paused && o.window.size() == 0
	if l := o.listedNow(); l != o.listed && (settled || !workflow.Now(ctx).Before(o.listedAt.Add(liveUpsertEvery))) {
		o.publish(ctx)
		return
	}
	workflow.SetCurrentDetails(ctx, o.details())
}

// details is the markdown shown as "current details" in the Web UI.
func (o *organization) details() string {
	p := &o.p
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** %s — phase **%s**", o.in.Code, o.in.Name, p.Phase)
	if p.Paused {
		b.WriteString(" (paused)")
	}
	if o.live {
		o.liveDetails(&b)
	} else {
		b.WriteString("\n\n| mailboxes | done | failed | skipped by operator | messages | MB | skipped items | consistency |\n|---|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %.1f | %d | %s |\n", p.MailboxesTotal, p.MailboxesDone, p.MailboxesFailed, p.MailboxesSkipped, p.Messages, float64(p.Bytes)/1e6, p.Skipped, p.Consistency)
	}
	if p.Pass != "" {
		fmt.Fprintf(&b, "\nPass **%s**: %d of %d mailboxes, %d running.\n", p.Pass, p.PassDone, p.PassTotal, p.MailboxesRunning)
	}
	if a := p.Approval; a != nil {
		fmt.Fprintf(&b, "\nCutover approved by %s: %s\n", a.Approver, a.Reason)
	}
	if p.Reason != "" {
		fmt.Fprintf(&b, "\n%s\n", p.Reason)
	}
	return b.String()
}

// liveDetails is the table of a live-progress run: copied and validated
// apart, and what the organization waits for, if anything.
func (o *organization) liveDetails(b *strings.Builder) {
	p := &o.p
	b.WriteString("\n\n| mailboxes | copied | validated | failed | skipped by operator | messages | MB | skipped items | consistency |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(b, "| %d | %d | %d | %d | %d | %d | %.1f | %d | %s |\n", p.MailboxesTotal, p.MailboxesCopied, p.MailboxesDone, p.MailboxesFailed, p.MailboxesSkipped, p.Messages, float64(p.Bytes)/1e6, p.Skipped, p.Consistency)
	switch {
	case p.Paused:
		fmt.Fprintf(b, "\n**Paused**: no mailbox starts until `%s`.\n", SignalResume)
	case p.Phase == PhaseAwaitingCutover && p.Approval == nil:
		fmt.Fprintf(b, "\n**Waiting for approval**: `%s`.\n", UpdateApproveCutover)
	case p.Phase == PhaseAwaitingCutover && !p.CutoverWindowOpensAt.IsZero():
		fmt.Fprintf(b, "\nWaiting for the cutover window, which opens %s.\n", p.CutoverWindowOpensAt.Format(time.RFC3339))
	case p.Phase == PhaseAwaitingSkippedApproval:
		fmt.Fprintf(b, "\n**Waiting for approval**: `%s`.\n", UpdateApproveSkippedItems)
	case p.Phase == PhaseReadinessBlocked:
		fmt.Fprintf(b, "\n**Waiting for a decision**: `%s` or `%s`.\n", UpdateOverrideReadiness, UpdateRollback)
	}
}
