package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

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
	if a := p.Approval; a != nil {
		sa = append(sa, SACutoverApprovedBy.ValueSet(a.Approver))
	}
	if c := p.Consistency; c != "" {
		sa = append(sa, SAConsistency.ValueSet(string(c)))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, sa...); err != nil {
		o.logger.Warn("upsert search attributes", "error", err)
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
	b.WriteString("\n\n| mailboxes | done | failed | skipped by operator | messages | MB | skipped items | consistency |\n|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %.1f | %d | %s |\n", p.MailboxesTotal, p.MailboxesDone, p.MailboxesFailed, p.MailboxesSkipped, p.Messages, float64(p.Bytes)/1e6, p.Skipped, p.Consistency)
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
