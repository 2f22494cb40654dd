package testsuite

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/workflows"
)

// TestPoorValidationRollsBackRoutingAndLeavesTheSourceUntouched drives one
// organization to a Poor validation: after the pre-stage the target loses
// two messages of one mailbox (the checkpoint says they were delivered, so
// no later pass copies them again). Validation finds them missing, the
// organization rolls back, the transport map is back to the very bytes it
// had before the migration, and the source is exactly the estate it was
// loaded with.
func TestPoorValidationRollsBackRoutingAndLeavesTheSourceUntouched(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := demo.Setup(ctx, demo.Options{
		Seed: 21, Scale: 0.2, TemporalAddr: "127.0.0.1:0", UIAddr: "off",
		WorkDir: t.TempDir(), MaxMessageSize: 512 << 10, Approval: workflows.ApprovalManual,
	})
	require.NoError(t, err)
	defer env.Close()
	in := env.Inputs[0]
	org := env.Estate.Orgs[0]
	require.GreaterOrEqual(t, len(org.Mailboxes), 2)

	// Mail for two of the organization's addresses is relayed somewhere
	// today; a rollback must put exactly these routes back.
	original := "# transport map, managed by hand and by mailshift\n" +
		strings.ToLower(org.Mailboxes[0].Address) + " relay:[exchange-old.example]:25\n" +
		"other@elsewhere.example smtp:[mx.elsewhere.example]\n" +
		strings.ToLower(org.Mailboxes[1].Address) + " relay:[exchange-old.example]:25\n"
	require.NoError(t, os.WriteFile(env.Config.Routing.Path, []byte(original), 0o644))

	_, err = control.Start(ctx, env.Client, workflows.TaskQueue, in)
	require.NoError(t, err)
	waitPhase(t, ctx, env, in.Code, workflows.PhaseAwaitingCutover)

	// The target loses two messages of one mailbox, and gets two others
	// (mail delivered there), so its message count does not show the loss
	// and the final pass does not copy them again: only validation sees it.
	victim := org.Mailboxes[0]
	require.GreaterOrEqual(t, inboxCount(ctx, t, env.Target.Addr(), victim.User, victim.Password), uint32(2))
	expungeFirst(t, env.Target.Addr(), victim.User, victim.Password, 2)
	for i := range 2 {
		appendTo(t, env.Target.Addr(), victim.User, victim.Password, fmt.Sprintf("<new-%d@elsewhere.example>", i))
	}

	_, err = control.ApproveCutover(ctx, env.Client, in.Code, "e2e-operator", "CAB-42")
	require.NoError(t, err)
	p, err := control.Result(ctx, env.Client, in.Code)
	require.NoError(t, err)

	require.Equal(t, workflows.PhaseRolledBack, p.Phase, "reason: %s", p.Reason)
	require.Equal(t, workflows.Poor, p.Consistency)
	require.Equal(t, 1, p.RulesFired[workflows.RuleMissing])
	require.Contains(t, p.Reason, "validation scored Poor")
	require.True(t, p.RoutingReverted)
	var poor []string
	for _, f := range p.Findings {
		if f.Consistency == workflows.Poor {
			poor = append(poor, f.Address)
			require.Contains(t, strings.Join(f.Rules, " "), "2 source messages are not in the target")
		}
	}
	require.Equal(t, []string{victim.Address}, poor)

	// The list cannot mistake it for a success: the workflow failed, with
	// the error type saying why and the final Progress as its details.
	id := workflows.OrganizationWorkflowID(in.Code)
	l := describeListed(ctx, t, env.Client, id)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_FAILED, l.status)
	var out workflows.Progress
	werr := env.Client.GetWorkflow(ctx, id, "").Get(ctx, &out)
	var app *temporal.ApplicationError
	require.ErrorAs(t, werr, &app)
	require.Equal(t, activities.ErrTypeOrganizationRolledBack, app.Type())
	require.True(t, app.NonRetryable())
	ended, ok := workflows.OrganizationEnded(werr)
	require.True(t, ok)
	require.Equal(t, p.Reason, ended.Reason)
	// MailboxesFailed is the report's failed mailboxes, in the Progress and
	// in the list.
	require.Equal(t, 1, p.MailboxesFailed, "the mailbox validation scored Poor")
	require.Len(t, p.Reports, 3)
	require.Equal(t, p.MailboxesFailed, reportStates(ctx, t, env, p.Reports[2])["Failed"], "report %s", p.Reports[2])
	pollUntil(ctx, t, "the final search attributes", func() (bool, string) {
		l = describeListed(ctx, t, env.Client, id)
		return l.sa[workflows.SAMigrationPhase.GetName()] != nil && l.int(workflows.SAMailboxesFailed.GetName()) == int64(p.MailboxesFailed), fmt.Sprint(l.sa)
	})
	require.Equal(t, int64(p.MailboxesDone), l.int(workflows.SAMailboxesDone.GetName()))

	// The routing map is byte for byte what it was.
	got, err := os.ReadFile(env.Config.Routing.Path)
	require.NoError(t, err)
	require.Equal(t, original, string(got))

	// The source is exactly the estate it was loaded with: compare it with a
	// fresh server loaded from the same estate (bytes, flags, dates).
	pristine, err := estate.StartServer(estate.ServerOptions{Name: "pristine"})
	require.NoError(t, err)
	defer pristine.Close()
	require.NoError(t, pristine.Load(env.Estate))
	rep, err := estate.VerifyEstate(ctx, env.Estate, pristine.Addr(), env.Source.Addr(), estate.VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Positive(t, rep.Messages)
}
