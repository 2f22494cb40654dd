package testsuite

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/progress"
	"github.com/mailshift/mailshift/workflows"
)

// TestStatusListsFinishedOrganizations runs one small organization to the
// end and lists it the way `starter status --output json` does
// (control.ListStatus, then progress.WriteStatusJSON), with filters.
func TestStatusListsFinishedOrganizations(t *testing.T) {
	ctx, env := startDemo(t, 90*time.Second, demo.Options{Seed: 5, Scale: 0.1})
	env.Inputs = env.Inputs[:1]
	org := env.Inputs[0].Code
	ps, err := env.Migrate(ctx, nil)
	require.NoError(t, err)
	require.True(t, ps[0].Validated(), "%+v", ps[0])

	status := func(f control.StatusFilter) []progress.StatusRow {
		orgs, camps, err := control.ListStatus(ctx, env.Client, f, true)
		require.NoError(t, err)
		var buf bytes.Buffer
		require.NoError(t, progress.WriteStatusJSON(&buf, orgs, camps))
		var rows []progress.StatusRow
		require.NoError(t, json.Unmarshal(buf.Bytes(), &rows), buf.String())
		return rows
	}
	// Visibility is eventually consistent: wait for the final phase there.
	var rows []progress.StatusRow
	require.Eventually(t, func() bool {
		rows = status(control.StatusFilter{Phase: string(workflows.PhaseCompleted)})
		return len(rows) == 1
	}, 20*time.Second, 200*time.Millisecond, "status --phase Completed lists the organization")
	r := rows[0]
	require.Equal(t, "organization", r.Kind)
	require.Equal(t, org, r.Code)
	require.Equal(t, string(workflows.PhaseCompleted), r.Phase)
	require.True(t, r.Terminal)
	require.Equal(t, "demo", r.Wave)
	require.Equal(t, ps[0].MailboxesTotal, r.Mailboxes.Total)
	require.Equal(t, r.Mailboxes.Total, r.Mailboxes.Done)
	require.Equal(t, ps[0].Messages, r.Messages)
	require.NotNil(t, r.StartedAt)
	require.NotNil(t, r.FinishedAt)

	// The text listing shows it finished, with a full bar.
	orgs, camps, err := control.ListStatus(ctx, env.Client, control.StatusFilter{}, true)
	require.NoError(t, err)
	var text, js bytes.Buffer
	(&progress.Board{}).WriteStatusText(&text, orgs, camps, time.Now())
	require.NoError(t, progress.WriteStatusJSON(&js, orgs, camps))
	t.Logf("status:\n%s\nstatus --output json:\n%s", text.String(), js.String())
	require.Contains(t, text.String(), org+" ")
	require.Contains(t, text.String(), "["+progress.Bar(1, 1)+"]")
	require.Contains(t, text.String(), "Completed")

	require.Len(t, status(control.StatusFilter{}), 1, "no filter: every organization, finished ones too")
	require.Len(t, status(control.StatusFilter{Wave: "demo", Codes: []string{org}}), 1)
	require.Empty(t, status(control.StatusFilter{Phase: string(workflows.PhasePreStage)}), "--phase PreStage filters it out")
	require.Empty(t, status(control.StatusFilter{Wave: `demo' OR WorkflowType = 'Organization`}), "a quote in a value stays in the value")
}
