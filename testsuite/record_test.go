package testsuite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/workflows"
)

// TestRecordHistories records, when MAILSHIFT_RECORD_HISTORIES names a
// directory, every run of one organization (continuing as new every 4
// mailboxes, some of them direct) and every pass of one of its mailboxes,
// for workflows/TestHistoriesOfShippedVersionsReplay: record before a
// change to the workflows ships, into
// workflows/testdata/histories/<version>/.
func TestRecordHistories(t *testing.T) {
	dir := os.Getenv("MAILSHIFT_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set MAILSHIFT_RECORD_HISTORIES to record histories")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env, err := demo.Setup(ctx, demo.Options{Seed: 11, Scale: 0.3, TemporalAddr: "127.0.0.1:0", UIAddr: "off", WorkDir: t.TempDir(), MaxMessageSize: 512 << 10})
	require.NoError(t, err)
	defer env.Close()
	in := env.Inputs[0]
	in.MailboxesPerRun = 4
	in.DirectMaxBytes = 1 << 20
	_, err = control.Start(ctx, env.Client, workflows.TaskQueue, in)
	require.NoError(t, err)
	p, err := control.Result(ctx, env.Client, in.Code)
	require.NoError(t, err)
	require.True(t, p.Validated(), "%s %v", p.Phase, p.Failures)
	save := func(kind, id string) {
		r, err := env.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id), PageSize: 1000})
		require.NoError(t, err)
		for k, ex := range r.Executions {
			b, err := protojson.Marshal(fetchHistory(t, ctx, env, id, ex.GetExecution().GetRunId()))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%02d.json", kind, k)), b, 0o644))
		}
		t.Logf("%s: %d runs", id, len(r.Executions))
	}
	save("organization", workflows.OrganizationWorkflowID(in.Code))
	save("mailbox", workflows.MailboxWorkflowID(in.Code, in.Mailboxes[0].Address))
}
