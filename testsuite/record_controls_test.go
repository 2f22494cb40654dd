package testsuite

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/workflows"
)

// TestRecordControlHistories records, when MAILSHIFT_RECORD_HISTORIES names
// a directory, organizations driven by operators: one paused and resumed
// in pre-stage, its concurrency changed, a mailbox skipped and retried,
// delta passes on a timer until a manual approval, continuing as new every
// 4 mailboxes, a mailbox added; and one rolled back while it waits for its cutover. The
// replay test then checks the update handlers, timers and cancels that the
// plain recordings never exercise.
func TestRecordControlHistories(t *testing.T) {
	dir := recordDir(t)
	ctx, env := startDemo(t, 5*time.Minute, demo.Options{Seed: 11, Scale: 0.3, MaxMessageSize: 512 << 10, PlainPayloads: true})
	var err error
	c := env.Client
	waitFor := func(code, what string, ok func(workflows.Progress) bool) workflows.Progress {
		t.Helper()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			p, err := control.Progress(ctx, c, code)
			if err == nil && ok(p) {
				return p
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: waiting for %s: %v (last progress %+v)", code, what, ctx.Err(), p)
			case <-tick.C:
			}
		}
	}

	a := env.Inputs[0]
	a.Approval, a.MailboxesPerRun, a.DeltaInterval, a.Concurrency = workflows.ApprovalManual, 4, 2*time.Second, 2
	_, err = control.Start(ctx, c, workflows.TaskQueue, a)
	require.NoError(t, err)
	waitFor(a.Code, "pre-stage", func(p workflows.Progress) bool { return p.Phase == workflows.PhasePreStage })
	require.NoError(t, control.Pause(ctx, c, a.Code))
	waitFor(a.Code, "the pause", func(p workflows.Progress) bool { return p.Paused && p.MailboxesRunning == 0 })
	_, err = control.SetConcurrency(ctx, c, a.Code, 3, "recorder")
	require.NoError(t, err)
	require.NoError(t, control.Resume(ctx, c, a.Code))
	waitFor(a.Code, "the cutover wait and a delta pass", func(p workflows.Progress) bool {
		return p.Phase == workflows.PhaseAwaitingCutover && p.DeltaPasses >= 1
	})
	skipped, skippedID := a.Mailboxes[1].Address, workflows.MailboxWorkflowID(a.TargetEndpoint, a.Mailboxes[1].TargetUser)
	_, err = control.SkipMailbox(ctx, c, a.Code, skipped, "recorder", "leaver")
	require.NoError(t, err)
	_, err = control.RetryMailbox(ctx, c, a.Code, skipped, "recorder", "came back")
	require.NoError(t, err)
	// A mailbox added while it waits (truthful-progress): the table grows
	// and the final pass copies it. It is a mailbox of another demo
	// organization, which this recording does not start before a ends.
	other := env.Inputs[1].Mailboxes
	_, err = control.AddMailboxes(ctx, c, a.Code, workflows.AddMailboxesRequest{Operator: "recorder", Mailboxes: other[len(other)-1:]})
	require.NoError(t, err)
	_, err = control.ApproveCutover(ctx, c, a.Code, "recorder", "CAB-1")
	require.NoError(t, err)
	pa, err := control.Result(ctx, c, a.Code)
	require.NoError(t, err)
	require.True(t, pa.Validated(), "%s %v", pa.Phase, pa.Failures)

	b := env.Inputs[len(env.Inputs)-1]
	b.Approval = workflows.ApprovalManual
	_, err = control.Start(ctx, c, workflows.TaskQueue, b)
	require.NoError(t, err)
	waitFor(b.Code, "the cutover wait", func(p workflows.Progress) bool { return p.Phase == workflows.PhaseAwaitingCutover })
	_, err = control.Rollback(ctx, c, b.Code, "recorder", "postponed")
	require.NoError(t, err)
	pb, err := control.Result(ctx, c, b.Code)
	require.NoError(t, err)
	require.Equal(t, workflows.PhaseRolledBack, pb.Phase)

	saveRuns(t, ctx, env, dir, "controls-organization", workflows.OrganizationWorkflowID(a.Code), pa.Runs)
	saveRuns(t, ctx, env, dir, "controls-mailbox", skippedID, 1)
	saveRuns(t, ctx, env, dir, "rollback-organization", workflows.OrganizationWorkflowID(b.Code), pb.Runs)
}
