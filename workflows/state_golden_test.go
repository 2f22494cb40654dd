package workflows

import (
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/state-golden.json")

// goldenState sets every field that a run carries to the next one by
// continue-as-new, each to a value that is not its zero value.
func goldenState() OrganizationState {
	at := time.Date(2026, 11, 28, 21, 30, 0, 0, time.UTC)
	approval := func(who string) *Approval { return &Approval{Approver: who, Reason: "CAB-" + who, At: at} }
	return OrganizationState{
		P: Progress{
			Organization: "RXH", Name: "Royal X Hospital", Wave: "w3", Phase: PhaseAwaitingCutover, Paused: true, Concurrency: 16,
			MailboxesTotal: 12, MailboxesDone: 3, MailboxesFailed: 2, MailboxesSkipped: 1, MailboxesRunning: 2,
			Pass: PassDelta, PassDone: 4, PassTotal: 9, DeltaPasses: 2, Runs: 3, MailboxRuns: 41,
			ReadinessScore: 0.9, ReadinessOverride: approval("alice"), ReadinessProblems: map[string]int{"login": 1, "quota": 1},
			LargeItems: 4, SourceMessages: 1200, SourceBytes: 1 << 30, Messages: 1100, Bytes: 1 << 29,
			Skipped: 5, SkippedByReason: map[string]int{"too-large": 4, "rejected": 1}, StagedCount: 4, ImportedItems: 1,
			ArchivedMessages: 7, ArchivedBytes: 7000,
			Approval: approval("bob"), CutoverWindowOpensAt: at.Add(time.Hour), FrozenAt: at.Add(2 * time.Hour),
			Routing: "file /etc/postfix/transport", RoutingChanged: 9, RoutingReverted: true, RoutingRestored: 1,
			Consistency: Good, ConsistencyCounts: map[Consistency]int{Perfect: 2, Good: 1}, RulesFired: map[string]int{"skipped-items": 1},
			Findings:             []MailboxFinding{{Address: "a@rxh.example", Consistency: Good, Rules: []string{"1 item skipped"}}},
			SkippedItemsApproval: approval("carol"), RollbackRequested: approval("dana"),
			Failures: []MailboxFailure{{Address: "b@rxh.example", Pass: PassReadiness, Error: "AuthFailed: no"}},
			Reason:   "waiting", Reports: []string{"reports/RXH/mailboxes.csv"}, ReportError: "none",
			StartedAt: at.Add(-time.Hour), PhaseStartedAt: at, FinishedAt: at.Add(3 * time.Hour),
		},
		Status:      []byte{mbActive, mbFailed, mbSkipped, mbValidated, mbActive, mbActive, mbActive, mbActive, mbActive, mbActive, mbFailed, mbActive},
		Small:       []byte{0x05, 0x08},
		Direct:      []byte{0x02, 0x00},
		PassSeq:     6,
		PassOpen:    true,
		Next:        7,
		Requeue:     []int{4, 2},
		InFlight:    []flight{{Index: 5, Address: "c@rxh.example", Seq: 6, RunID: "run-1", Canceling: true}, {Index: 6, Address: "d@rxh.example", Seq: 6}},
		Step:        "archive",
		Cursor:      500,
		SkipCounts:  []byte{0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4},
		LastDeltaAt: at.Add(-30 * time.Minute),
		Switched:    true,
		Runs:        3,
	}
}

// TestCarriedStateIsByteCompatible pins the JSON that a run hands to the
// next by continue-as-new. A run started by the previous release continues
// into this one through exactly these bytes, so a change of field name,
// order or encoding breaks organizations in flight at an upgrade. Rewrite
// the golden file only together with a workflow.GetVersion gate.
func TestCarriedStateIsByteCompatible(t *testing.T) {
	b, err := json.MarshalIndent(OrganizationInput{Code: "RXH", State: new(goldenState())}, "", "  ")
	require.NoError(t, err)
	const golden = "testdata/state-golden.json"
	if *updateGolden {
		require.NoError(t, os.WriteFile(golden, b, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), string(b))

	// What a run reads back from those bytes and carries on is the same.
	var in OrganizationInput
	require.NoError(t, json.Unmarshal(want, &in))
	again, err := json.MarshalIndent(OrganizationInput{Code: in.Code, State: new(carryOver(t, in))}, "", "  ")
	require.NoError(t, err)
	require.Equal(t, string(want), string(again))
}

// carryOver loads a carried state into a run, as setup does, and returns
// what that run would carry to the next.
func carryOver(t *testing.T, in OrganizationInput) OrganizationState {
	t.Helper()
	o := &organization{in: in}
	o.load(nil, in.State)
	return o.carried()
}
