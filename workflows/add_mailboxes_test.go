package workflows

import (
	"errors"
	"time"

	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/activities"
)

// add-mailboxes refuses, with a typed reason, what a running organization
// cannot take; the table grows with every per-mailbox structure.
func TestAddMailboxesValidator(t *testing.T) {
	in := orgInput(3)
	o := &organization{in: in, truth: true, table: newMailboxTable(in, nil), total: 3}
	o.p.Phase = PhaseAwaitingCutover
	newOne := MailboxSpec{Address: "new@rxh.example", SourceUser: "new", TargetUser: "new"}
	ok := AddMailboxesRequest{Operator: "ops", Mailboxes: []MailboxSpec{newOne}}
	require.NoError(t, o.validateAddMailboxes(ok))

	typ := func(err error) string {
		t.Helper()
		require.Error(t, err)
		return errType(err)
	}
	require.Equal(t, activities.ErrTypeControlRefused, typ(o.validateAddMailboxes(AddMailboxesRequest{Mailboxes: ok.Mailboxes})), "no operator")
	require.Equal(t, activities.ErrTypeControlRefused, typ(o.validateAddMailboxes(AddMailboxesRequest{Operator: "ops", Mailboxes: in.Mailboxes[:1]})), "already in")
	for _, ph := range []Phase{PhaseCutover, PhaseValidation, PhaseAwaitingSkippedApproval} {
		o.p.Phase = ph
		require.Equal(t, activities.ErrTypeTooLate, typ(o.validateAddMailboxes(ok)), ph)
	}
	o.p.Phase = PhaseReadiness
	require.Equal(t, activities.ErrTypeControlRefused, typ(o.validateAddMailboxes(ok)), "readiness under way")
	o.p.Phase = PhasePreStage
	o.p.RollbackRequested = &Approval{Approver: "ops"}
	require.Equal(t, activities.ErrTypeControlRefused, typ(o.validateAddMailboxes(ok)), "rolling back")
	o.p.RollbackRequested = nil
	old := &organization{in: in, table: newMailboxTable(in, nil), total: 3}
	old.p.Phase = PhasePreStage
	require.Equal(t, activities.ErrTypeControlRefused, typ(old.validateAddMailboxes(ok)), "a run before truthful-progress")

	// Growth: bitmaps and skip counts cover the new index; the state
	// carries the batch; a run loaded from it sees every mailbox.
	o.table.markSmall(2)
	o.table.setSkips(1, skipCount{Total: 1, ByReason: map[string]int{"rejected": 1}})
	for range 6 {
		o.table.add(addedBatch{Mailboxes: []MailboxSpec{newOne}})
	}
	require.Equal(t, 9, o.table.len())
	o.table.markSmall(8)
	o.table.setSkips(8, skipCount{Total: 2, ByReason: map[string]int{"rejected": 2}})
	require.True(t, o.table.isSmall(8))
	require.Equal(t, 2, o.table.skips(8).Total)
	var st OrganizationState
	o.table.save(&st)
	require.Len(t, st.Added, 6)
	again := newMailboxTable(in, &st)
	require.Equal(t, 6, again.addedCount())
	spec, err := again.spec(nil, 5)
	require.NoError(t, err)
	require.Equal(t, newOne, spec)
}

func errType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}

// TestMailboxAddedWhileWaitingGetsTheFinalPass: a cutover approved right
// after the pre-stage skips the final pass, unless a mailbox was added
// meanwhile: that one has not been copied yet, and must be before the
// switch.
func TestMailboxAddedWhileWaitingGetsTheFinalPass(t *testing.T) {
	env := newEnv(t)
	f := &fakeData{}
	f.install(env)
	in := orgInput(2)
	in.Approval = ApprovalManual
	late := MailboxSpec{Address: "late@rxh.example", SourceUser: "late@rxh.example", TargetUser: "late@rxh.example"}
	added, approved := &updateResult{}, &updateResult{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateAddMailboxes, "add", added, AddMailboxesRequest{Operator: "ops", Mailboxes: []MailboxSpec{late}})
		env.UpdateWorkflow(UpdateApproveCutover, "ok", approved, Approval{Approver: "bob", Reason: "CAB-7"})
	}, time.Minute)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.NoError(t, added.err)
	require.NoError(t, approved.err)
	require.Equal(t, PhaseCompleted, p.Phase, p.Reason)
	require.False(t, p.FinalPassSkipped)
	require.Equal(t, []string{"final", "post-switch"}, f.byMailbox[late.Address])
	require.Equal(t, []string{"prestage", "final", "post-switch"}, f.byMailbox[in.Mailboxes[0].Address])
}
