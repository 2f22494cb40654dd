package testsuite

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/faultproxy"
	"github.com/mailshift/mailshift/workflows"
)

// TestLostWorkerHandsMailboxOnQuickly measures how long a mailbox whose
// worker goes away waits before another worker resumes it, with the
// default heartbeat timeout:
//   - SIGKILL (a crash): the server notices the missing heartbeats and
//     retries the transfer within 30 s;
//   - SIGTERM (a rolling restart, the next worker already polling): the
//     transfer stops at its checkpoint, says it handed the mailbox back,
//     and the next worker resumes it within 5 s.
//
// The source sits behind a loopback proxy that slows each connection, so
// the transfer is still running when the worker goes and when it resumes;
// then the limit is lifted, the organization must validate, and the target
// must equal the source.
func TestLostWorkerHandsMailboxOnQuickly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and starts an embedded Temporal server")
	}
	bin := buildWorker(t)
	est := estate.Generate(estate.Spec{Seed: 31, LargeItems: -1, Orgs: []estate.OrgSpec{
		{Code: "RKL", Name: "Recovery after a kill", Mailboxes: 1, MeanMessages: 600},
		{Code: "RTM", Name: "Recovery after a stop", Mailboxes: 1, MeanMessages: 600},
	}})
	src, err := estate.StartServer(estate.ServerOptions{Name: "source"})
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	tgt, err := estate.StartServer(estate.ServerOptions{Name: "target"})
	require.NoError(t, err)
	t.Cleanup(func() { tgt.Close() })
	require.NoError(t, src.Load(est))
	require.NoError(t, tgt.AddUsers(est))
	proxy, err := faultproxy.Start(src.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { proxy.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	srv, c := embeddedServer(t, ctx)
	startWorker := workerProcess(t, bin, srv.FrontendAddr(), workerConfig(t, est, "imap://"+proxy.Addr(), tgt.URL(), 8, ""))

	for i, tc := range []struct {
		name  string
		sig   syscall.Signal
		limit time.Duration
	}{{"SIGKILL", syscall.SIGKILL, 30 * time.Second}, {"SIGTERM", syscall.SIGTERM, 5 * time.Second}} {
		org := est.Orgs[i]
		proxy.SetRate(100 << 10)
		w := startWorker()
		in := workflows.OrganizationInput{Code: org.Code, Name: org.Name, SourceEndpoint: "source", TargetEndpoint: "target"}
		for _, mb := range org.Mailboxes {
			in.Mailboxes = append(in.Mailboxes, workflows.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
		}
		_, err := control.Start(ctx, c, workflows.TaskQueue, in)
		require.NoError(t, err)

		running := waitTransfer(ctx, t, c, org.Code, 0)
		var next *exec.Cmd
		if tc.sig == syscall.SIGTERM {
			// A rolling restart: the next worker polls before this one stops.
			next = startWorker()
			waitPollers(ctx, t, c, 2)
		}
		gone := time.Now()
		require.NoError(t, w.Process.Signal(tc.sig))
		_ = w.Wait()
		stopped := time.Since(gone)
		if next == nil {
			next = startWorker() // a supervisor restarts the crashed worker
		}
		resumed := waitTransfer(ctx, t, c, org.Code, running.attempt)
		took := resumed.started.Sub(gone)
		t.Logf("%s: %s's transfer (attempt %d) resumed as attempt %d after %s (old worker exited in %s)",
			tc.name, org.Code, running.attempt, resumed.attempt, took.Round(10*time.Millisecond), stopped.Round(10*time.Millisecond))
		require.Less(t, took, tc.limit, "%s: the mailbox waited too long for another worker", tc.name)

		proxy.SetRate(0)
		ps, err := control.Watch(ctx, c, []string{org.Code}, 250*time.Millisecond, nil)
		require.NoError(t, err)
		require.True(t, ps[0].Validated(), "%s: %s %v %s", org.Code, ps[0].Phase, ps[0].Failures, ps[0].Reason)
		require.NoError(t, next.Process.Signal(syscall.SIGTERM))
		_ = next.Wait()
	}
	rep, err := estate.VerifyEstate(ctx, est, src.Addr(), tgt.Addr(), estate.VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	_, total, _ := est.Totals()
	require.Equal(t, total, rep.Messages)
}

type transferAttempt struct {
	attempt int32
	started time.Time
}

// waitTransfer waits until org's mailbox has a TransferMailbox activity
// running as a regular activity, in an attempt after `after`.
func waitTransfer(ctx context.Context, t *testing.T, c client.Client, org string, after int32) transferAttempt {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH 'mailbox/%s/'", workflows.MailboxWorkflowName, org),
		})
		require.NoError(t, err)
		for _, e := range resp.Executions {
			d, err := c.DescribeWorkflowExecution(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
			if err != nil {
				continue
			}
			for _, pa := range d.GetPendingActivities() {
				if pa.GetActivityType().GetName() == "TransferMailbox" && pa.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED && pa.GetAttempt() > after {
					return transferAttempt{attempt: pa.GetAttempt(), started: pa.GetLastStartedTime().AsTime()}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: no transfer attempt after %d started within 2 minutes", org, after)
	return transferAttempt{}
}

// waitPollers waits until n workers poll mailshift's activity task queue.
func waitPollers(ctx context.Context, t *testing.T, c client.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := c.DescribeTaskQueue(ctx, workflows.TaskQueue, enums.TASK_QUEUE_TYPE_ACTIVITY)
		require.NoError(t, err)
		ids := map[string]bool{}
		for _, p := range resp.GetPollers() {
			ids[p.GetIdentity()] = true
		}
		if len(ids) >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("fewer than %d workers poll %s after a minute", n, workflows.TaskQueue)
}
