// Package score holds the consistency rules that grade a validated mailbox.
// It is pure and a leaf, so the workflows (which decide a rollback by it)
// and the reports written by an activity or the starter (which cannot
// import the workflows) grade a mailbox by the very same rules.
package score

import (
	"fmt"

	"github.com/mailshift/mailshift/internal/transfer"
)

// Grades, best first (workflows.Consistency takes the same strings).
const (
	Perfect     = "Perfect"
	Good        = "Good"
	Investigate = "Investigate"
	Poor        = "Poor"
)

// Rule ids.
const (
	RuleMissing    = "missing"
	RuleDuplicates = "duplicates"
	RuleBadItems   = "bad-items"
	RuleFlags      = "flag-mismatch"
	RuleDates      = "date-mismatch"
	RuleStaged     = "staged-large-items"
	RuleExtra      = "new-mail-in-target"
	RuleAltered    = "altered"
	// RuleKeywords: messages copied without keywords the target does not keep.
	RuleKeywords = "keywords-not-kept"
	// RuleCompared says what a validation of a re-rendering target compared;
	// it never lowers the grade.
	RuleCompared = "compared-by-content"
)

var rank = map[string]int{"": 0, Perfect: 1, Good: 2, Investigate: 3, Poor: 4}

// Worse returns the worse of two grades.
func Worse(a, b string) string {
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// Counts are what a validation found, and the mailbox's skipped items.
type Counts struct {
	Missing, Duplicates, FlagMismatch, DateMismatch, Extra int
	// Altered target messages differ from what the copy appended.
	Altered int
	// SkippedByReason counts the skipped items not in the target; Staged
	// of them are kept in the staging store.
	SkippedByReason map[string]int
	Staged          int
	// Rerendered: the target re-renders MIME, so messages were compared by
	// identity and content, not bytes; Level is how deep.
	Rerendered bool
	Level      string
	// KeywordsDropped counts messages copied without their keywords.
	KeywordsDropped int
}

// Hit is a rule that fired.
type Hit struct {
	ID, Grade, Detail string
}

// Grade grades one validated mailbox and lists the rules that fired, in a
// fixed order (worst first).
func Grade(v Counts) (string, []Hit) {
	var hits []Hit
	add := func(id, g, format string, args ...any) {
		hits = append(hits, Hit{ID: id, Grade: g, Detail: fmt.Sprintf(format, args...)})
	}
	if v.Missing > 0 {
		add(RuleMissing, Poor, "%d source messages are not in the target and no reason is recorded", v.Missing)
	}
	if v.Duplicates > 0 {
		add(RuleDuplicates, Poor, "%d messages are in the target more often than in the source", v.Duplicates)
	}
	if v.Altered > 0 {
		add(RuleAltered, Poor, "%d target messages differ from what was copied (size or content against the copy's digests)", v.Altered)
	}
	lost := 0
	for reason, n := range v.SkippedByReason {
		if reason != transfer.ReasonTooLarge {
			lost += n
		}
	}
	if unstagedLarge := v.SkippedByReason[transfer.ReasonTooLarge] - v.Staged; unstagedLarge > 0 {
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
	if v.KeywordsDropped > 0 {
		add(RuleKeywords, Good, "%d messages were copied without their keywords, which the target does not keep; each is listed with them in keywords.csv", v.KeywordsDropped)
	}
	if v.Extra > 0 {
		add(RuleExtra, Good, "%d messages in the target are not in the source (mail delivered after the switch)", v.Extra)
	}
	if v.Rerendered {
		what := "Message-ID (Subject, From and Date for a message without one), INTERNALDATE and the flags the target keeps"
		switch v.Level {
		case "full":
			what += ", and a digest of every message's decoded content on both sides"
		case "sample":
			what += ", and a digest of the decoded content of sampled messages against the copy's"
		}
		add(RuleCompared, Perfect, "the target re-renders MIME: compared by %s; sizes and bytes are not compared", what)
	}
	g := Perfect
	for _, h := range hits {
		g = Worse(g, h.Grade)
	}
	return g, hits
}
