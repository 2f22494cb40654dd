package testsuite

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
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

// faultRig is what a fault case may break: a loopback proxy in front of
// each IMAP server, and the worker process.
type faultRig struct {
	t           *testing.T
	c           client.Client
	src, tgt    *faultproxy.Proxy
	worker      *exec.Cmd
	startWorker func() *exec.Cmd
}

// faultCase breaks something while a transfer runs and returns when the
// fault is over (the network healed, a process restarted). limit, when set,
// is the longest the copy may then take to move again.
type faultCase struct {
	name   string
	limit  time.Duration
	inject func(r *faultRig) time.Time
}

func stallFor(p *faultproxy.Proxy, d time.Duration) time.Time {
	p.Stall(true)
	time.Sleep(d) // the length of the outage is the fault itself
	p.Stall(false)
	return time.Now()
}

func (r *faultRig) signalWorker(sig syscall.Signal, nextFirst bool) time.Time {
	var next *exec.Cmd
	if nextFirst { // a rolling restart: the next worker polls first
		next = r.startWorker()
		waitPollers(context.Background(), r.t, r.c, 2)
	}
	require.NoError(r.t, r.worker.Process.Signal(sig))
	_ = r.worker.Wait()
	gone := time.Now()
	if next == nil {
		next = r.startWorker() // a supervisor restarts the crashed worker
	}
	r.worker = next
	return gone
}

var faultCases = []faultCase{
	{name: "source connections cut mid-transfer", inject: func(r *faultRig) time.Time { r.src.Cut(); return time.Now() }},
	{name: "target connections cut mid-APPEND", inject: func(r *faultRig) time.Time { r.tgt.Cut(); return time.Now() }},
	{name: "both sides cut 5 times, 2 s apart", inject: func(r *faultRig) time.Time {
		for i := range 5 {
			if i > 0 {
				time.Sleep(2 * time.Second)
			}
			r.src.Cut()
			r.tgt.Cut()
		}
		return time.Now()
	}},
	{name: "source stalled 25 s (longer than the heartbeat timeout)", inject: func(r *faultRig) time.Time { return stallFor(r.src, 25*time.Second) }},
	{name: "target stalled 10 s", inject: func(r *faultRig) time.Time { return stallFor(r.tgt, 10*time.Second) }},
	{name: "source slowed to 5 KB/s for 10 s", inject: func(r *faultRig) time.Time {
		r.src.SetRate(5 << 10)
		time.Sleep(10 * time.Second)
		r.src.SetRate(faultRate)
		return time.Now()
	}},
	{name: "worker SIGKILL, restarted at once", limit: 30 * time.Second, inject: func(r *faultRig) time.Time { return r.signalWorker(syscall.SIGKILL, false) }},
	{name: "worker SIGTERM, next worker already polling", limit: 5 * time.Second, inject: func(r *faultRig) time.Time { return r.signalWorker(syscall.SIGTERM, true) }},
}

// faultRate slows each proxied connection so that every fault lands in a
// running transfer; the limit is lifted once the copy has moved again.
const faultRate = 100 << 10

// TestFaultSuite breaks the network and the worker in the middle of
// transfers, one fault per organization, and measures how long the copy
// takes to move again once the fault is over (the target's message count,
// read over IMAP independently of mailshift, grows). Every organization
// must then validate, and its target must equal its source: nothing
// missing, nothing twice, nothing altered. The table it logs is
// docs/faults.md's.
func TestFaultSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and starts an embedded Temporal server")
	}
	bin := buildWorker(t)
	spec := estate.Spec{Seed: 41, LargeItems: -1}
	for i := range faultCases {
		spec.Orgs = append(spec.Orgs, estate.OrgSpec{Code: fmt.Sprintf("FLT%d", i+1), Name: faultCases[i].name, Mailboxes: 1, MeanMessages: 400})
	}
	est := estate.Generate(spec)
	src, tgt := startInProcess(t, est)
	rig := &faultRig{t: t}
	var err error
	if rig.src, err = faultproxy.Start(src.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rig.src.Close() })
	if rig.tgt, err = faultproxy.Start(tgt.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rig.tgt.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	srv, c := embeddedServer(t, ctx)
	rig.c = c
	rig.startWorker = workerProcess(t, bin, srv.FrontendAddr(), workerConfig(t, est, "imap://"+rig.src.Addr(), "imap://"+rig.tgt.Addr(), 8, ""))
	rig.worker = rig.startWorker()

	var table strings.Builder
	table.WriteString("| fault | copy moving again after | messages checked | missing, duplicated or altered |\n|---|---:|---:|---:|\n")
	for i, fc := range faultCases {
		org := &est.Orgs[i]
		rig.src.SetRate(faultRate)
		rig.tgt.SetRate(faultRate)
		in := workflows.OrganizationInput{Code: org.Code, Name: org.Name, SourceEndpoint: "source", TargetEndpoint: "target"}
		for _, mb := range org.Mailboxes {
			in.Mailboxes = append(in.Mailboxes, workflows.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
		}
		_, err := control.Start(ctx, c, workflows.TaskQueue, in)
		require.NoError(t, err)
		waitTransfer(ctx, t, c, org.Code, 0)

		ended := fc.inject(rig)
		recovered := waitMoving(ctx, t, tgt, org, ended)
		took := recovered.Sub(ended)
		rig.src.SetRate(0)
		rig.tgt.SetRate(0)

		ps, err := control.Watch(ctx, c, []string{org.Code}, 250*time.Millisecond, nil)
		require.NoError(t, err)
		require.True(t, ps[0].Validated(), "%s (%s): %s %v %s", fc.name, org.Code, ps[0].Phase, ps[0].Failures, ps[0].Reason)
		var rep estate.Report
		want := 0
		for j := range org.Mailboxes {
			mb := &org.Mailboxes[j]
			r, err := estate.Verify(ctx, src.Account(mb), tgt.Account(mb), estate.VerifyOptions{})
			require.NoError(t, err)
			rep.Add(r)
			for _, f := range mb.Folders {
				want += len(f.Messages)
			}
		}
		require.True(t, rep.OK(), "%s: %s", fc.name, rep.String())
		require.Equal(t, want, rep.Messages, fc.name)
		t.Logf("%s: the copy moved again %s after the fault ended; %d messages exact", fc.name, took.Round(10*time.Millisecond), rep.Messages)
		fmt.Fprintf(&table, "| %s | %.1f s | %d | %d |\n", fc.name, took.Seconds(), rep.Messages, len(rep.Problems))
		if fc.limit > 0 {
			require.Less(t, took, fc.limit, "%s: recovery too slow", fc.name)
		}
	}
	t.Logf("fault table (docs/faults.md):\n%s", table.String())
}

// waitMoving waits until org's target holds more messages than it did when
// the fault ended, and returns when it saw that.
func waitMoving(ctx context.Context, t *testing.T, tgt *estate.Server, org *estate.Org, since time.Time) time.Time {
	t.Helper()
	count := func() int {
		n := 0
		for j := range org.Mailboxes {
			c, err := estate.Count(ctx, tgt.Account(&org.Mailboxes[j]))
			require.NoError(t, err)
			n += c
		}
		return n
	}
	base := count()
	deadline := since.Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if count() > base {
			return time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: the copy did not move for 3 minutes after the fault ended", org.Code)
	return time.Time{}
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
