package workflows

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/transfer"
)

// TestUnchangedMailboxesTakeNoPassWhileTheyStayUnchanged: of three
// mailboxes, readiness finds user00 and user01 unchanged since their last
// validation. user00 stays so and takes no pass at all: it is booked with
// its sealed result (one staged item: Good). user01 gets mail after
// readiness: the check after the switch sees it, and it takes the
// post-switch pass (copy and validation). user02 takes every pass. The
// cutover comes right after the pre-stage, so there is no final pass and
// no check before it; a run recorded before fresh-recheck still checks
// before the skipped final pass, and ends the same.
func TestUnchangedMailboxesTakeNoPassWhileTheyStayUnchanged(t *testing.T) {
	t.Run("current", func(t *testing.T) { unchangedMailboxes(t, false) })
	t.Run("before fresh-recheck", func(t *testing.T) { unchangedMailboxes(t, true) })
}

func unchangedMailboxes(t *testing.T, beforeFreshRecheck bool) {
	env := newEnv(t)
	wantChecks := 1
	if beforeFreshRecheck {
		env.OnGetVersion(versionFreshRecheck, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		wantChecks = 2
	}
	var a *activities.Activities
	var mu sync.Mutex
	var passes []string
	checks := 0
	sealed := activities.ValidateResult{OK: true, Messages: 7, Bytes: 700, Level: string(transfer.LevelMetadata), Skipped: 1, Staged: 1, SkippedByReason: map[string]int{transfer.ReasonTooLarge: 1}}
	env.OnActivity(a.CheckReadinessBatch, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ReadinessBatchInput) ([]activities.ReadinessBrief, error) {
		require.True(t, in.Sealed, "readiness is asked to look at the seals")
		return []activities.ReadinessBrief{
			{Ready: true, Unchanged: true, Messages: 7, Bytes: 700},
			{Ready: true, Unchanged: true, Messages: 7, Bytes: 700},
			{Ready: true, Messages: 5, Bytes: 500},
		}, nil
	})
	env.OnActivity(a.CheckUnchanged, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UnchangedInput) ([]activities.UnchangedBrief, error) {
		checks++
		var out []activities.UnchangedBrief
		for _, m := range in.Mailboxes {
			// user01's source gets mail after readiness; a run that checks
			// before the final pass sees it only after the switch.
			still := m.Address == "user00@rxh.example" || checks < wantChecks
			if still {
				v := sealed
				out = append(out, activities.UnchangedBrief{Unchanged: true, Validation: &v})
			} else {
				out = append(out, activities.UnchangedBrief{})
			}
		}
		return out, nil
	})
	env.OnActivity(a.TransferMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TransferInput) (activities.TransferResult, error) {
		mu.Lock()
		passes = append(passes, in.Mailbox.Address+" "+in.Pass)
		mu.Unlock()
		return activities.TransferResult{Copied: 1, Bytes: 100}, nil
	})
	env.OnActivity(a.ValidateMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ValidateInput) (activities.ValidateResult, error) {
		mu.Lock()
		passes = append(passes, in.Mailbox.Address+" validate")
		mu.Unlock()
		return activities.ValidateResult{OK: true, Level: string(transfer.LevelMetadata)}, nil
	})
	env.OnActivity(a.SwitchRouting, mock.Anything, mock.Anything).Return(activities.RoutingResult{}, nil)
	env.ExecuteWorkflow(Organization, orgInput(3))
	p := result(t, env)

	sort.Strings(passes)
	require.Equal(t, []string{
		"user01@rxh.example post-switch", "user01@rxh.example validate",
		"user02@rxh.example post-switch", "user02@rxh.example prestage", "user02@rxh.example validate",
	}, passes)
	require.Equal(t, wantChecks, checks, "checked again after the switch (and before the final pass, before fresh-recheck)")
	require.True(t, p.FinalPassSkipped, "the cutover came right after the pre-stage")
	require.Equal(t, PhaseCompleted, p.Phase, p.Reason)
	require.Equal(t, 3, p.MailboxesDone)
	require.Equal(t, 1, p.MailboxesUnchanged)
	require.Equal(t, Good, p.Consistency, "user00 keeps its sealed score")
	require.Equal(t, 1, p.ConsistencyCounts[Good])
	require.Equal(t, 1, p.StagedCount)
	require.Equal(t, 3, p.ValidationLevels[string(transfer.LevelMetadata)])
	require.Equal(t, 3, p.MailboxesCopied)
}

// TestRetriedMailboxLosesItsUnchangedMark: an unchanged mailbox that an
// operator skips and then retries takes the passes still to come (the
// final pass, since it was not in the last copy pass, and the post-switch
// pass with its validation), and is no longer counted unchanged.
func TestRetriedMailboxLosesItsUnchangedMark(t *testing.T) {
	env := newEnv(t)
	var a *activities.Activities
	var mu sync.Mutex
	passes := map[string][]string{}
	env.OnActivity(a.CheckReadinessBatch, mock.Anything, mock.Anything).Return([]activities.ReadinessBrief{
		{Ready: true, Unchanged: true, Messages: 7, Bytes: 700},
		{Ready: true, Unchanged: true, Messages: 7, Bytes: 700},
	}, nil)
	env.OnActivity(a.CheckUnchanged, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UnchangedInput) ([]activities.UnchangedBrief, error) {
		out := make([]activities.UnchangedBrief, len(in.Mailboxes))
		for i := range out {
			out[i] = activities.UnchangedBrief{Unchanged: true, Validation: &activities.ValidateResult{OK: true, Level: string(transfer.LevelMetadata)}}
		}
		return out, nil
	})
	env.OnActivity(a.TransferMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TransferInput) (activities.TransferResult, error) {
		mu.Lock()
		passes[in.Mailbox.Address] = append(passes[in.Mailbox.Address], in.Pass)
		mu.Unlock()
		return activities.TransferResult{}, nil
	})
	env.OnActivity(a.ValidateMailbox, mock.Anything, mock.Anything).Return(activities.ValidateResult{OK: true, Level: string(transfer.LevelMetadata)}, nil)
	env.OnActivity(a.SwitchRouting, mock.Anything, mock.Anything).Return(activities.RoutingResult{}, nil)
	in := orgInput(2)
	in.Approval = ApprovalManual
	skip, retry, ok := &updateResult{}, &updateResult{}, &updateResult{}
	var waiting Progress
	env.RegisterDelayedCallback(func() {
		waiting = query(t, env)
		env.UpdateWorkflow(UpdateSkipMailbox, "skip", skip, MailboxControl{Address: "user00@rxh.example", Operator: "ops", Reason: "test"})
		env.UpdateWorkflow(UpdateRetryMailbox, "retry", retry, MailboxControl{Address: "user00@rxh.example", Operator: "ops", Reason: "test"})
		env.UpdateWorkflow(UpdateApproveCutover, "ok", ok, Approval{Approver: "bob", Reason: "CAB-9"})
	}, time.Minute)
	env.ExecuteWorkflow(Organization, in)
	p := result(t, env)
	require.NoError(t, skip.err)
	require.NoError(t, retry.err)
	require.NoError(t, ok.err)
	require.Equal(t, 2, waiting.MailboxesUnchanged)
	require.Equal(t, PhaseCompleted, p.Phase, p.Reason)
	require.Equal(t, []string{"final", "post-switch"}, passes["user00@rxh.example"])
	require.Empty(t, passes["user01@rxh.example"])
	require.Equal(t, 1, p.MailboxesUnchanged)
	require.Equal(t, 2, p.MailboxesDone)
}
