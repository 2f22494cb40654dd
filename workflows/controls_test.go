package workflows

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/activities"
)

// TestControlsRefuseWhatTheyCannotRecord: a control that records a person
// needs the person, an approval needs its reason, and a misspelled field
// is refused by name instead of being dropped. Every refusal is a typed,
// non-retryable error, so no caller retries it.
func TestControlsRefuseWhatTheyCannotRecord(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	in := orgInput(3)
	in.Approval = ApprovalManual
	noReason, typo, noOperator, skipTypo, retryActive, unknownField, ok := &updateResult{}, &updateResult{}, &updateResult{}, &updateResult{}, &updateResult{}, &updateResult{}, &updateResult{}
	var waiting Progress
	env.RegisterDelayedCallback(func() {
		waiting = query(t, env)
		env.UpdateWorkflow(UpdateApproveCutover, "no-reason", noReason, Approval{Approver: "bob", Reason: " "})
		env.UpdateWorkflow(UpdateApproveCutover, "typo", typo, map[string]any{"approver": "bob", "reasn": "CAB-1"})
		env.UpdateWorkflow(UpdateSetConcurrency, "no-operator", noOperator, ConcurrencyRequest{Concurrency: 4})
		env.UpdateWorkflow(UpdateSkipMailbox, "skip-typo", skipTypo, map[string]any{"address": in.Mailboxes[1].Address, "operatr": "ops"})
		env.UpdateWorkflow(UpdateRetryMailbox, "retry-active", retryActive, MailboxControl{Address: in.Mailboxes[0].Address, Operator: "ops"})
		env.UpdateWorkflow(UpdateSetConcurrency, "unknown-field", unknownField, map[string]any{"concurrency": 4, "operator": "ops", "force": true})
		env.UpdateWorkflow(UpdateApproveCutover, "ok", ok, Approval{Approver: "bob", Reason: "CAB-1"})
	}, 48*time.Hour)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)

	require.Equal(t, PhaseAwaitingCutover, waiting.Phase)
	require.ErrorContains(t, noReason.err, "a reason is required to approve cutover")
	require.ErrorContains(t, typo.err, `unknown field "reasn"`)
	require.ErrorContains(t, typo.err, "approver, reason, at")
	require.ErrorContains(t, noOperator.err, "operator is required")
	require.ErrorContains(t, skipTypo.err, `unknown field "operatr"`)
	require.ErrorContains(t, unknownField.err, `unknown field "force"`)
	require.ErrorContains(t, retryActive.err, "only failed or skipped mailboxes can be retried")
	for name, err := range map[string]error{"no-reason": noReason.err, "no-operator": noOperator.err, "retry-active": retryActive.err, "typo": typo.err, "skip-typo": skipTypo.err} {
		var app *temporal.ApplicationError
		require.True(t, errors.As(err, &app), name)
		require.True(t, app.NonRetryable(), "%s: %v", name, err)
		require.NotContains(t, err.Error(), "retryable: true", name)
	}
	var app *temporal.ApplicationError
	require.True(t, errors.As(retryActive.err, &app))
	require.Equal(t, activities.ErrTypeMailboxNotRetryable, app.Type())
	require.True(t, errors.As(noOperator.err, &app))
	require.Equal(t, activities.ErrTypeControlRefused, app.Type())

	require.NoError(t, ok.err)
	require.Equal(t, PhaseCompleted, p.Phase)
	require.Equal(t, "CAB-1", p.Approval.Reason)
	require.Equal(t, waiting.Concurrency, p.Concurrency, "no refused set-concurrency took effect")
	require.Zero(t, p.MailboxesSkipped, "the misspelled skip did nothing")
}

// Unknown fields are noted, not fatal to decoding: what a run stored before
// (Progress, histories) decodes as ever, and the validator refuses them.
func TestControlArgumentsNoteUnknownFields(t *testing.T) {
	var a Approval
	require.NoError(t, a.UnmarshalJSON([]byte(`{"approver":"bob","reason":"CAB-1","at":"2026-12-01T10:00:00Z"}`)))
	require.Equal(t, "bob", a.Approver)
	require.Empty(t, a.unknown)
	require.NoError(t, a.UnmarshalJSON([]byte(`{"approver":"bob","operator":"x","Reason":"y"}`)))
	require.Equal(t, []string{"operator"}, a.unknown, "field names match as encoding/json matches them")
	require.Equal(t, "y", a.Reason)
	require.ErrorContains(t, strictArgs(a.unknown, a), `unknown field "operator" (the fields are: approver, reason, at)`)
	var p Progress
	require.NoError(t, json.Unmarshal([]byte(`{"approval":{"approver":"bob","at":"2026-12-01T10:00:00Z"}}`), &p))
	require.Equal(t, "bob", p.Approval.Approver)
}
