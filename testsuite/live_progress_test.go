package testsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/workflows"
)

// listed is what the Web UI's list shows of a workflow: its status and
// its search attributes, as DescribeWorkflowExecution returns them.
type listed struct {
	status enumspb.WorkflowExecutionStatus
	sa     map[string]*commonpb.Payload
}

func describeListed(ctx context.Context, t *testing.T, c client.Client, id string) listed {
	t.Helper()
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	info := d.GetWorkflowExecutionInfo()
	return listed{status: info.GetStatus(), sa: info.GetSearchAttributes().GetIndexedFields()}
}

func (l listed) int(name string) (n int64) {
	if p, ok := l.sa[name]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &n)
	}
	return n
}

func (l listed) float(name string) (f float64) {
	if p, ok := l.sa[name]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &f)
	}
	return f
}

func (l listed) bool(name string) (b bool) {
	if p, ok := l.sa[name]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &b)
	}
	return b
}

// currentDetails reads the Web UI's "current details" of a workflow the
// way the UI does: the SDK's built-in metadata query.
func currentDetails(ctx context.Context, t *testing.T, c client.Client, id string) string {
	t.Helper()
	v, err := c.QueryWorkflow(ctx, id, "", "__temporal_workflow_metadata")
	require.NoError(t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(t, v.Get(&md))
	return md.GetCurrentDetails()
}

// pollUntil calls ok every 50 ms until it is true or ctx ends; the last
// failure is in the message.
func pollUntil(ctx context.Context, t *testing.T, what string, ok func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		done, last := ok()
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; last: %s", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// TestListAndDetailsFollowAPausedPreStage is issue #14's Web UI check:
// while an organization is paused in pre-stage with mailboxes copied,
// its search attributes (the list's columns) and its current details
// (what the workflow page shows) say so, with counts that are not 0, and
// the list can filter the paused ones.
func TestListAndDetailsFollowAPausedPreStage(t *testing.T) {
	ctx, env := startDemo(t, 3*time.Minute, demo.Options{Seed: 11, Scale: 0.3, MaxMessageSize: 512 << 10})
	c := env.Client
	in := env.Inputs[0]
	// One mailbox at a time and no local passes, so pre-stage lasts long
	// enough to pause it in the middle.
	in.Approval, in.Concurrency, in.LocalPassBudget = workflows.ApprovalManual, 1, -1
	require.GreaterOrEqual(t, len(in.Mailboxes), 4)
	_, err := control.Start(ctx, c, workflows.TaskQueue, in)
	require.NoError(t, err)
	id := workflows.OrganizationWorkflowID(in.Code)

	var p workflows.Progress
	pollUntil(ctx, t, "two mailboxes pre-staged", func() (bool, string) {
		p, err = control.Progress(ctx, c, in.Code)
		return err == nil && p.Phase == workflows.PhasePreStage && p.PassDone >= 2, fmt.Sprintf("%+v", p)
	})
	require.NoError(t, control.Pause(ctx, c, in.Code))
	pollUntil(ctx, t, "the pause", func() (bool, string) {
		p, err = control.Progress(ctx, c, in.Code)
		return err == nil && p.Paused && p.MailboxesRunning == 0, fmt.Sprintf("%+v", p)
	})
	require.Equal(t, workflows.PhasePreStage, p.Phase, "paused before pre-stage ended")
	require.Positive(t, p.MailboxesCopied)
	require.Positive(t, p.Bytes)
	require.Positive(t, p.Messages)

	// The list: visibility is updated asynchronously after the upsert.
	var l listed
	pollUntil(ctx, t, "the paused organization's search attributes", func() (bool, string) {
		l = describeListed(ctx, t, c, id)
		return l.bool(workflows.SAMigrationPaused.GetName()) && l.int(workflows.SAMailboxesDone.GetName()) > 0,
			fmt.Sprintf("%s %v", l.status, l.sa)
	})
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, l.status)
	require.Positive(t, l.float(workflows.SABytesCopied.GetName()), "BytesCopied follows the pre-stage")
	require.Equal(t, int64(p.MailboxesCopied), l.int(workflows.SAMailboxesDone.GetName()), "MailboxesDone counts the copied mailboxes while the organization runs")
	require.Equal(t, float64(p.Bytes), l.float(workflows.SABytesCopied.GetName()))

	// Filterable: the list query a saved view uses finds it.
	pollUntil(ctx, t, "a list filtered on MigrationPaused", func() (bool, string) {
		r, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: `WorkflowType = 'Organization' AND MigrationPaused = true AND ExecutionStatus = 'Running'`,
		})
		if err != nil {
			return false, err.Error()
		}
		return r.GetCount() == 1, fmt.Sprint("count ", r.GetCount())
	})

	// The details: the workflow page's "current details".
	d := currentDetails(ctx, t, c, id)
	require.Contains(t, d, "(paused)")
	require.Contains(t, d, "**Paused**")
	row := detailsRow(t, d)
	require.Equal(t, in.Code, p.Organization)
	require.Equal(t, []string{
		itoa(p.MailboxesTotal), itoa(p.MailboxesCopied), "0", itoa(p.MailboxesFailed), "0", itoa(int(p.Messages)),
	}, row[:6], "details: %s", d)
	require.NotEqual(t, "0.0", row[6], "MB copied")
	require.Contains(t, d, "Pass **prestage**: "+itoa(p.PassDone)+" of "+itoa(p.PassTotal))

	// Resumed: the list and the details say so.
	require.NoError(t, control.Resume(ctx, c, in.Code))
	pollUntil(ctx, t, "the resume in the list", func() (bool, string) {
		l = describeListed(ctx, t, c, id)
		return !l.bool(workflows.SAMigrationPaused.GetName()), "still paused"
	})
	require.NotContains(t, currentDetails(ctx, t, c, id), "(paused)")
	_, err = control.Rollback(ctx, c, in.Code, "e2e-operator", "test over")
	require.NoError(t, err)
	_, err = control.Result(ctx, c, in.Code)
	require.NoError(t, err)
}

func itoa(n int) string { return strconv.Itoa(n) }

// detailsRow is the first data row of the details' table, cell by cell.
func detailsRow(t *testing.T, details string) []string {
	t.Helper()
	for _, line := range strings.Split(details, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| mailboxes") {
			var cells []string
			for _, c := range strings.Split(strings.Trim(line, "| "), "|") {
				cells = append(cells, strings.TrimSpace(c))
			}
			return cells
		}
	}
	t.Fatalf("no table in the details:\n%s", details)
	return nil
}

// reportStates counts the per-mailbox report's mailboxes by state.
func reportStates(ctx context.Context, t *testing.T, env *demo.Env, name string) map[string]int {
	t.Helper()
	r, _, err := env.Activities.Staging.Get(ctx, name)
	require.NoError(t, err)
	defer r.Close()
	var rows []struct {
		State string `json:"state"`
	}
	require.NoError(t, json.NewDecoder(r).Decode(&rows))
	out := map[string]int{}
	for _, row := range rows {
		out[row.State]++
	}
	return out
}
