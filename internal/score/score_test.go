package score_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/score"
)

// TestReRenderedTargetRules: what a re-rendering target was compared by is
// always said and never lowers the grade; keywords the target did not keep
// make a mailbox Good, not worse.
func TestReRenderedTargetRules(t *testing.T) {
	g, hits := score.Grade(score.Counts{Rerendered: true, Level: "sample"})
	require.Equal(t, score.Perfect, g)
	require.Len(t, hits, 1)
	require.Equal(t, score.RuleCompared, hits[0].ID)
	require.Contains(t, hits[0].Detail, "Message-ID")
	require.Contains(t, hits[0].Detail, "INTERNALDATE")
	require.Contains(t, hits[0].Detail, "decoded content of sampled messages")
	require.Contains(t, hits[0].Detail, "sizes and bytes are not compared")

	_, hits = score.Grade(score.Counts{Rerendered: true, Level: "metadata"})
	require.NotContains(t, hits[0].Detail, "content")

	g, hits = score.Grade(score.Counts{Rerendered: true, Level: "full", KeywordsDropped: 7})
	require.Equal(t, score.Good, g)
	require.Equal(t, []string{score.RuleKeywords, score.RuleCompared}, []string{hits[0].ID, hits[1].ID})
	require.Contains(t, hits[0].Detail, "7 messages were copied without their keywords")

	g, _ = score.Grade(score.Counts{Rerendered: true, Level: "full", Duplicates: 1})
	require.Equal(t, score.Poor, g)

	// A target that keeps bytes says nothing about it.
	g, hits = score.Grade(score.Counts{Level: "full"})
	require.Equal(t, score.Perfect, g)
	require.Empty(t, hits)
}
