package workflows

import (
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/transfer"
)

// onOutcome takes a mailbox's reported pass out of the window, books it
// and shows the progress.
func (o *organization) onOutcome(ctx workflow.Context, out MailboxOutcome) {
	if out.Chain != "" && out.Chain != o.chain {
		return // a mailbox workflow of an earlier, abandoned organization run chain
	}
	f, ok := o.window.withdraw(out.Index, out.Seq)
	if !ok {
		return // an outcome of an older pass, or reported twice
	}
	o.p.MailboxesRunning = o.window.size()
	i := out.Index
	if out.Canceled || (f.Canceling && out.Error != "") {
		// Stopped by a pause, a skip or a rollback: not a failure. It runs
		// this pass again unless it was skipped meanwhile.
		if o.table.state(i) == mbActive {
			o.window.reinstate(i)
		}
		o.countPass(ctx, out.Pass, outcomeCanceled)
		o.progressed(ctx)
		return
	}
	o.book(out)
	if out.Error != "" {
		o.countPass(ctx, out.Pass, outcomeFailed)
	} else {
		o.countPass(ctx, out.Pass, outcomeOK)
	}
	o.progressed(ctx)
}

// book records a mailbox's finished pass.
func (o *organization) book(out MailboxOutcome) {
	p := &o.p
	i := out.Index
	p.PassDone++
	if out.Error != "" {
		o.fail(i, out.Address, out.Pass, out.Error)
		return
	}
	switch out.Pass {
	case PassReadiness:
		o.bookReadiness(out)
	case PassPreStage, PassDelta, PassFinal, PassPostSwitch:
		p.Messages += out.Copied
		p.Bytes += out.Bytes
		p.Throttled += out.Throttled
		p.ThrottledFor += out.ThrottledFor
		p.KeywordsDropped += out.KeywordsDropped
		o.markCopied(i)
		o.setSkips(i, skipCount{Total: out.Skipped, ByReason: out.SkippedByReason, Staged: out.Staged})
		if out.Consistency != "" { // validated in the same workflow
			o.bookValidation(out)
		}
	case PassImport:
		// Imported items were skipped as too large; they are in the target now.
		p.Messages += out.Copied
		p.Bytes += out.Bytes
		p.ImportedItems += out.Imported
		c := o.table.skips(i)
		reasons := map[string]int{}
		for r, n := range c.ByReason {
			reasons[r] = n
		}
		reasons[transfer.ReasonTooLarge] -= out.Imported
		if reasons[transfer.ReasonTooLarge] <= 0 {
			delete(reasons, transfer.ReasonTooLarge)
		}
		o.setSkips(i, skipCount{Total: max(0, c.Total-out.Imported), ByReason: reasons, Staged: max(0, c.Staged-out.Imported)})
	case PassArchive:
		p.ArchivedMessages += out.ArchivedMessages
		p.ArchivedBytes += out.ArchivedBytes
	case PassValidate:
		o.bookValidation(out)
	}
}

// bookReadiness records what readiness measured, and marks the mailbox
// small (local passes) or direct (post-switch pass alone) by its size.
func (o *organization) bookReadiness(out MailboxOutcome) {
	p := &o.p
	i := out.Index
	p.SourceMessages += out.SourceMessages
	p.SourceBytes += out.SourceBytes
	p.LargeItems += out.LargeItems
	if out.Ready && out.LargeItems == 0 && out.SourceBytes <= o.in.LocalPassMaxBytes {
		o.table.markSmall(i)
	}
	if o.lean && o.in.DirectMaxBytes > 0 && out.Ready && out.LargeItems == 0 && out.SourceBytes <= o.in.DirectMaxBytes {
		o.table.markDirect(i)
	}
	if out.Ready {
		return
	}
	o.fail(i, out.Address, out.Pass, "not ready: "+strings.Join(out.Problems, "; "))
	seen := map[string]bool{}
	for _, pr := range out.Problems {
		if k := activities.ProblemKind(pr); !seen[k] {
			seen[k] = true
			if p.ReadinessProblems == nil {
				p.ReadinessProblems = map[string]int{}
			}
			p.ReadinessProblems[k]++
		}
	}
}

// bookValidation records a mailbox's consistency score.
func (o *organization) bookValidation(out MailboxOutcome) {
	p := &o.p
	i := out.Index
	if p.ConsistencyCounts == nil {
		p.ConsistencyCounts = map[Consistency]int{}
	}
	p.ConsistencyCounts[out.Consistency]++
	if out.ValidationLevel != "" {
		if p.ValidationLevels == nil {
			p.ValidationLevels = map[string]int{}
		}
		p.ValidationLevels[out.ValidationLevel]++
	}
	p.Consistency = Worse(p.Consistency, out.Consistency)
	for _, r := range out.Rules {
		if p.RulesFired == nil {
			p.RulesFired = map[string]int{}
		}
		p.RulesFired[r.ID]++
	}
	if out.Consistency != Poor {
		o.table.set(i, mbValidated)
		p.MailboxesDone++
	} else if o.live {
		// The per-mailbox report lists it as Failed (messages missing or
		// duplicated); MailboxesFailed says so too, and the rollback that
		// follows leaves it counted.
		o.fail(i, out.Address, out.Pass, "validation scored Poor: "+ruleIDs(out.Rules))
	}
	if out.Consistency != Perfect && len(p.Findings) < MaxReportedFailures {
		var texts []string
		for _, r := range out.Rules {
			texts = append(texts, r.Detail)
		}
		p.Findings = append(p.Findings, MailboxFinding{Address: out.Address, Consistency: out.Consistency, Rules: texts})
	}
}

// setSkips replaces mailbox i's skipped-item counts and moves the
// organization's totals by the difference.
func (o *organization) setSkips(i int, c skipCount) {
	was, now := o.table.setSkips(i, c)
	p := &o.p
	p.Skipped += now.Total - was.Total
	p.StagedCount += now.Staged - was.Staged
	for r, n := range was.ByReason {
		p.SkippedByReason[r] -= n
		if p.SkippedByReason[r] == 0 {
			delete(p.SkippedByReason, r)
		}
	}
	for r, n := range now.ByReason {
		if n == 0 {
			continue
		}
		if p.SkippedByReason == nil {
			p.SkippedByReason = map[string]int{}
		}
		p.SkippedByReason[r] += n
	}
}

func (o *organization) fail(i int, address string, pass Pass, msg string) {
	if st := o.table.state(i); st != mbActive && st != mbValidated {
		return // already failed, or skipped by an operator meanwhile
	}
	o.table.set(i, mbFailed)
	o.uncopy(i)
	p := &o.p
	p.MailboxesFailed++
	if len(p.Failures) < MaxReportedFailures {
		p.Failures = append(p.Failures, MailboxFailure{Address: address, Pass: pass, Error: msg})
	}
}

// markCopied counts mailbox i in MailboxesCopied, once (live runs).
func (o *organization) markCopied(i int) {
	if o.live && !o.table.isCopied(i) {
		o.table.markCopied(i)
		o.p.MailboxesCopied++
	}
}

// uncopy takes a failed or skipped mailbox out of MailboxesCopied; a
// retried one counts again after its next copy.
func (o *organization) uncopy(i int) {
	if o.table.isCopied(i) {
		o.table.unmarkCopied(i)
		o.p.MailboxesCopied--
	}
}

// ruleIDs lists the ids of the rules that fired, worst first.
func ruleIDs(rules []Rule) string {
	ids := make([]string, 0, len(rules))
	for _, r := range rules {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ", ")
}

func removeFailure(fs []MailboxFailure, address string) []MailboxFailure {
	out := fs[:0]
	for _, f := range fs {
		if !strings.EqualFold(f.Address, address) {
			out = append(out, f)
		}
	}
	return out
}
