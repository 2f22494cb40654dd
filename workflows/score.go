package workflows

import (
	"fmt"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/transfer"
)

// Consistency grades a validated mailbox or organization, after the
// consistency scores of Microsoft's migration reports.
type Consistency string

const (
	// Perfect: every source message is in the target, byte-exact, with its
	// flags and date; nothing skipped.
	Perfect Consistency = "Perfect"
	// Good: nothing lost; the only differences are recoverable or expected
	// (large items kept in the staging store, mail that arrived in the
	// target after the routing switch).
	Good Consistency = "Good"
	// Investigate: something was not migrated or differs in its metadata
	// (bad items, flag or date mismatches); an operator must approve the
	// skipped items before the organization completes.
	Investigate Consistency = "Investigate"
	// Poor: messages missing without a recorded reason, or duplicated; the
	// organization is rolled back.
	Poor Consistency = "Poor"
)

var consistencyRank = map[Consistency]int{"": 0, Perfect: 1, Good: 2, Investigate: 3, Poor: 4}

// Worse returns the worse of two scores.
func Worse(a, b Consistency) Consistency {
	if consistencyRank[b] > consistencyRank[a] {
		return b
	}
	return a
}

// Rule is one scoring rule that fired: a stable id and what it saw.
type Rule struct {
	ID     string      `json:"id"`
	Score  Consistency `json:"score"`
	Detail string      `json:"detail"`
}

// Rule ids, as counted in Progress.RulesFired.
const (
	RuleMissing    = "missing"
	RuleDuplicates = "duplicates"
	RuleBadItems   = "bad-items"
	RuleFlags      = "flag-mismatch"
	RuleDates      = "date-mismatch"
	RuleStaged     = "staged-large-items"
	RuleExtra      = "new-mail-in-target"
)

// Score grades one mailbox's validation and says which rules fired, worst
// first. It is pure: the workflow and the reports use the same rules.
func Score(v activities.ValidateResult) (Consistency, []Rule) {
	var rules []Rule
	add := func(id string, c Consistency, format string, args ...any) {
		rules = append(rules, Rule{ID: id, Score: c, Detail: fmt.Sprintf(format, args...)})
	}
	if v.Missing > 0 {
		add(RuleMissing, Poor, "%d source messages are not in the target and no reason is recorded", v.Missing)
	}
	if v.Duplicates > 0 {
		add(RuleDuplicates, Poor, "%d messages are in the target more often than in the source", v.Duplicates)
	}
	lost := 0
	for reason, n := range v.SkippedByReason {
		if reason != transfer.ReasonTooLarge {
			lost += n
		}
	}
	unstagedLarge := v.SkippedByReason[transfer.ReasonTooLarge] - v.Staged
	if unstagedLarge > 0 {
		lost += unstagedLarge
	}
	if lost > 0 {
		add(RuleBadItems, Investigate, "%d items were not migrated (rejected by the target, unreadable, or too large and not staged); see the skipped items", lost)
	}
	if v.FlagMismatch > 0 {
		add(RuleFlags, Investigate, "%d messages differ in flags", v.FlagMismatch)
	}
	if v.DateMismatch > 0 {
		add(RuleDates, Investigate, "%d messages differ in their received date", v.DateMismatch)
	}
	if v.Staged > 0 {
		add(RuleStaged, Good, "%d large items are kept in the staging store, not in the target", v.Staged)
	}
	if v.Extra > 0 {
		add(RuleExtra, Good, "%d messages in the target are not in the source (mail delivered after the switch)", v.Extra)
	}
	score := Perfect
	for _, r := range rules {
		score = Worse(score, r.Score)
	}
	return score, rules
}
