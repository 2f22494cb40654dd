package serve

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/internal/devserver"
)

// orphanActivity stands for a transfer: its first attempt records a
// checkpoint and then hangs, as on a worker that died mid-copy; a later
// attempt returns the checkpoint it resumed from.
func orphanActivity(ctx context.Context) (string, error) {
	if activity.GetInfo(ctx).Attempt == 1 {
		activity.RecordHeartbeat(ctx, "checkpoint-1")
		<-ctx.Done()
		return "", ctx.Err()
	}
	var from string
	if !activity.HasHeartbeatDetails(ctx) {
		return "", errors.New("retry started without the last checkpoint")
	}
	if err := activity.GetHeartbeatDetails(ctx, &from); err != nil {
		return "", err
	}
	return from, nil
}

func orphanWorkflow(ctx workflow.Context) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    2 * time.Minute, // what a restart would otherwise wait
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond},
	})
	var from string
	err := workflow.ExecuteActivity(ctx, orphanActivity).Get(ctx, &from)
	return from, err
}

// TestRequeueOrphans: an activity started by a previous serve process's
// worker (which can no longer heartbeat) is handed back at once, keeping
// its checkpoint, and finishes on the next attempt long before its
// heartbeat timeout would have expired.
func TestRequeueOrphans(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{FrontendAddr: "127.0.0.1:0", UIAddr: devserver.UIOff})
	require.NoError(t, err)
	defer srv.Stop()

	const queue = "serve-orphans"
	dead := workerIdentity(1)
	old, err := srv.Client(ctx, client.Options{Identity: dead})
	require.NoError(t, err)
	defer old.Close()
	// The "dead" worker keeps its hung first attempt until the end; it
	// stops polling once that attempt is taken, so the retry is the new
	// worker's.
	w := worker.New(old, queue, worker.Options{MaxConcurrentActivityExecutionSize: 1})
	w.RegisterWorkflow(orphanWorkflow)
	w.RegisterActivity(orphanActivity)
	require.NoError(t, w.Start())
	defer w.Stop()

	run, err := old.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "orphan", TaskQueue: queue}, orphanWorkflow)
	require.NoError(t, err)
	// Wait until the server holds the first attempt's checkpoint.
	for {
		d, err := old.DescribeWorkflowExecution(ctx, run.GetID(), "")
		require.NoError(t, err)
		if pas := d.GetPendingActivities(); len(pas) == 1 && pas[0].GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED &&
			pas[0].GetHeartbeatDetails() != nil {
			require.Equal(t, dead, pas[0].GetLastWorkerIdentity())
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the first attempt never heartbeated")
		case <-time.After(50 * time.Millisecond):
		}
	}

	self := workerIdentity(2)
	c, err := srv.Client(ctx, client.Options{Identity: self})
	require.NoError(t, err)
	defer c.Close()
	nw := worker.New(c, queue, worker.Options{})
	nw.RegisterWorkflow(orphanWorkflow)
	nw.RegisterActivity(orphanActivity)
	n, err := requeueOrphans(ctx, c, srv.Namespace(), self)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, nw.Start())
	defer nw.Stop()

	begin := time.Now()
	var from string
	require.NoError(t, run.Get(ctx, &from))
	require.Equal(t, "checkpoint-1", from)
	require.Less(t, time.Since(begin), 30*time.Second)

	n, err = requeueOrphans(ctx, c, srv.Namespace(), self)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to hand back")
}
