package workflows

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/transfer"
)

// TestStateOfFiftyThousandMailboxesFitsAContinueAsNewInput: every mailbox
// of a 50,000-mailbox organization skipped items, a thousand are in
// flight, and the state a run carries to the next still stays far below
// Temporal's 2 MB payload limit.
func TestStateOfFiftyThousandMailboxesFitsAContinueAsNewInput(t *testing.T) {
	const n = 50000
	o := &organization{total: n, table: newMailboxTable(OrganizationInput{Mailboxes: make([]MailboxSpec, n)}, nil), window: newPassWindow("BIG", nil)}
	for i := range n {
		o.setSkips(i, skipCount{Total: 3, ByReason: map[string]int{transfer.ReasonTooLarge: 2, transfer.ReasonRejected: 1}, Staged: 2})
	}
	for i := range 1000 {
		o.window.inFlight = append(o.window.inFlight, flight{Index: i, Address: "someone.with.a.long.name@a-large-trust.nhs.example", Seq: 7, RunID: "0193a7b2-1c2d-7e3f-8a9b-0c1d2e3f4a5b"})
	}
	b, err := json.Marshal(OrganizationInput{Code: "BIG", State: new(o.carried())})
	require.NoError(t, err)
	require.Less(t, len(b), 1<<20, "continue-as-new input of %d bytes", len(b))
	require.Equal(t, 3*n, o.p.Skipped)
	require.Equal(t, map[string]int{transfer.ReasonTooLarge: 2 * n, transfer.ReasonRejected: n}, o.p.SkippedByReason)
	require.Equal(t, 2*n, o.p.StagedCount)

	// A later pass replaces a mailbox's counts; an import removes items.
	o.setSkips(7, skipCount{Total: 1, ByReason: map[string]int{"something-new": 1}})
	require.Equal(t, skipCount{Total: 1, ByReason: map[string]int{reasonOther: 1}}, o.table.skips(7))
	require.Equal(t, 3*n-2, o.p.Skipped)
	require.Equal(t, 1, o.p.SkippedByReason[reasonOther])
	o.setSkips(7, skipCount{})
	require.Equal(t, skipCount{}, o.table.skips(7))
	require.Zero(t, o.p.SkippedByReason[reasonOther])
	require.NotContains(t, o.p.SkippedByReason, reasonOther)
	// Counts saturate rather than wrap, and what was added is taken away
	// exactly when the mailbox reports again.
	before, orig := o.p.Skipped, o.table.skips(9)
	o.setSkips(9, skipCount{Total: 70000, ByReason: map[string]int{transfer.ReasonTooLarge: 70000}})
	require.Equal(t, 0xFFFF, o.table.skips(9).ByReason[transfer.ReasonTooLarge])
	o.setSkips(9, orig)
	require.Equal(t, before, o.p.Skipped)
}

// The reports name the transfer passes as the workflows do.
func TestReportTransferPassesAreTheWorkflowPasses(t *testing.T) {
	require.Equal(t, report.TransferPasses, []string{string(PassPreStage), string(PassDelta), string(PassFinal), string(PassPostSwitch)})
}
