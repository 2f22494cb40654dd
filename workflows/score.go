package workflows

import (
	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/score"
)

// Consistency grades a validated mailbox or organization, after the
// consistency scores of Microsoft's migration reports.
type Consistency string

const (
	// Perfect: every source message is in the target once, with its flags
	// and date, as far as the validation level looks (full: byte-exact;
	// metadata: size and Message-ID, and the size the copy recorded;
	// sample: also the sampled bodies byte-exact); nothing skipped.
	Perfect Consistency = score.Perfect
	// Good: nothing lost; the only differences are recoverable or expected
	// (large items kept in the staging store, mail that arrived in the
	// target after the routing switch).
	Good Consistency = score.Good
	// Investigate: something was not migrated or differs in its metadata
	// (bad items, flag or date mismatches); an operator must approve the
	// skipped items before the organization completes.
	Investigate Consistency = score.Investigate
	// Poor: messages missing without a recorded reason, duplicated, or
	// altered in the target; the organization is rolled back.
	Poor Consistency = score.Poor
)

// Worse returns the worse of two scores.
func Worse(a, b Consistency) Consistency { return Consistency(score.Worse(string(a), string(b))) }

// Rule is one scoring rule that fired: a stable id and what it saw.
type Rule struct {
	ID     string      `json:"id"`
	Score  Consistency `json:"score"`
	Detail string      `json:"detail"`
}

// Rule ids, as counted in Progress.RulesFired.
const (
	RuleMissing    = score.RuleMissing
	RuleDuplicates = score.RuleDuplicates
	RuleBadItems   = score.RuleBadItems
	RuleFlags      = score.RuleFlags
	RuleDates      = score.RuleDates
	RuleStaged     = score.RuleStaged
	RuleExtra      = score.RuleExtra
	RuleAltered    = score.RuleAltered
	RuleKeywords   = score.RuleKeywords
	// RuleCompared says what a re-rendering target was compared by; it
	// never lowers a score.
	RuleCompared = score.RuleCompared
)

// Score grades one mailbox's validation and says which rules fired, worst
// first. It is pure: the workflow and the reports use the same rules
// (internal/score).
func Score(v activities.ValidateResult) (Consistency, []Rule) {
	g, hits := score.Grade(score.Counts{
		Missing: v.Missing, Duplicates: v.Duplicates, FlagMismatch: v.FlagMismatch, DateMismatch: v.DateMismatch,
		Extra: v.Extra, SkippedByReason: v.SkippedByReason, Staged: v.Staged, Altered: v.Altered,
		Rerendered: v.Rerendered, Level: v.Level, KeywordsDropped: v.KeywordsDropped,
	})
	var rules []Rule
	for _, h := range hits {
		rules = append(rules, Rule{ID: h.ID, Score: Consistency(h.Grade), Detail: h.Detail})
	}
	return Consistency(g), rules
}

// OverallConsistency is the consistency an organization may be reported
// with. Consistency grades the validated mailboxes only, and a failed
// mailbox was never validated (or scored Poor, and failed): so while any
// mailbox failed, the organization is no better than Investigate, and a
// summary never prints Perfect for an organization that lost a mailbox.
// Pure and read by the printers; the workflow's own decisions (rollback,
// the skipped-items approval) still follow Consistency.
func (p Progress) OverallConsistency() Consistency {
	if p.MailboxesFailed > 0 {
		return Worse(p.Consistency, Investigate)
	}
	return p.Consistency
}
