package testsuite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/workflows"
)

// Histories are recorded, when MAILSHIFT_RECORD_HISTORIES names a
// directory, for workflows/TestHistoriesOfShippedVersionsReplay: record
// before a change to the workflows ships, into
// workflows/testdata/histories/<version>/. They are recorded with
// PlainPayloads: the replayer reads them with the default data converter,
// and they must not depend on a demo's throwaway key.

// recordDir is the directory to record into, after skipping the test when
// MAILSHIFT_RECORD_HISTORIES is unset.
func recordDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MAILSHIFT_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set MAILSHIFT_RECORD_HISTORIES to record histories")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// saveRuns writes every run of workflow id to dir as <kind>-NN.json
// (protojson, as the replayer reads it), oldest run first, once the
// visibility store lists at least wantRuns of them.
func saveRuns(t *testing.T, ctx context.Context, env *demo.Env, dir, kind, id string, wantRuns int) {
	t.Helper()
	var runs []*workflowpb.WorkflowExecutionInfo
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r, err := env.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id), PageSize: 1000})
		require.NoError(t, err)
		runs = r.Executions
		if len(runs) >= wantRuns {
			break
		}
		require.True(t, time.Now().Before(deadline), "%s: %d runs listed, want %d", id, len(runs), wantRuns)
	}
	slices.SortFunc(runs, func(a, b *workflowpb.WorkflowExecutionInfo) int {
		return a.GetStartTime().AsTime().Compare(b.GetStartTime().AsTime())
	})
	for k, ex := range runs {
		b, err := protojson.Marshal(fetchHistory(t, ctx, env, id, ex.GetExecution().GetRunId()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%02d.json", kind, k)), b, 0o644))
	}
	t.Logf("%s: %d runs", id, len(runs))
}

// TestRecordHistories records every run of one organization (continuing
// as new every 4 mailboxes, some of them direct), then of its re-run with
// nothing changed, and every pass of one of its mailboxes.
func TestRecordHistories(t *testing.T) {
	dir := recordDir(t)
	ctx, env := startDemo(t, 4*time.Minute, demo.Options{Seed: 11, Scale: 0.3, MaxMessageSize: 512 << 10, PlainPayloads: true})
	var err error
	in := env.Inputs[0]
	in.MailboxesPerRun = 4
	in.DirectMaxBytes = 1 << 20
	_, err = control.Start(ctx, env.Client, workflows.TaskQueue, in)
	require.NoError(t, err)
	p, err := control.Result(ctx, env.Client, in.Code)
	require.NoError(t, err)
	require.True(t, p.Validated(), "%s %v", p.Phase, p.Failures)
	// A re-run with nothing changed: every mailbox unchanged, checked again
	// before the final pass and after the switch.
	_, err = control.Start(ctx, env.Client, workflows.TaskQueue, in)
	require.NoError(t, err)
	again, err := control.Result(ctx, env.Client, in.Code)
	require.NoError(t, err)
	require.True(t, again.Validated(), "%s %v", again.Phase, again.Failures)
	require.Positive(t, again.MailboxesUnchanged, "the re-run found no mailbox unchanged")
	saveRuns(t, ctx, env, dir, "organization", workflows.OrganizationWorkflowID(in.Code), p.Runs+again.Runs)
	saveRuns(t, ctx, env, dir, "mailbox", workflows.MailboxWorkflowID(in.TargetEndpoint, in.Mailboxes[0].TargetUser), 1)
}

// TestRecordCampaignHistories records every run of a campaign of the demo
// estate's three organizations over two planned days (the calendar starts
// yesterday, so both have begun) that continues as new after each start:
// twice while organizations remain to start, once more while the last
// ones run, and the last run learns of their ends by signal and completes.
func TestRecordCampaignHistories(t *testing.T) {
	dir := recordDir(t)
	ctx, env := startDemo(t, 3*time.Minute, demo.Options{Seed: 4, Scale: 0.15, PlainPayloads: true})
	in := twoDayCampaign(t, env, "record")
	in.OrgsPerRun = 1
	_, err := control.StartCampaign(ctx, env.Client, workflows.TaskQueue, in)
	require.NoError(t, err)
	p, err := control.CampaignResult(ctx, env.Client, in.Name)
	require.NoError(t, err)
	require.Equal(t, 2, p.Days)
	require.Equal(t, len(env.Inputs), p.Completed, "%+v", p)
	require.Greater(t, p.Runs, 1, "the campaign continued as new")
	saveRuns(t, ctx, env, dir, "campaign", workflows.CampaignWorkflowID(in.Name), p.Runs)
}
