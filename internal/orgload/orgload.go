// Package orgload runs organizations of many tiny mailboxes through the real
// workflows on the embedded Temporal server, for the scale test and the
// workflow benchmark: the IMAP side (in-process servers, one small message
// per mailbox) is cheap, so what is measured is the orchestration.
package orgload

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/workflows"
)

// TinyEstate is one organization of n mailboxes, each with one small
// message in its INBOX.
func TinyEstate(code string, n int) *estate.Estate {
	org := estate.Org{Code: code, Name: "Scale " + code, Domain: "scale.example"}
	date := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		addr := fmt.Sprintf("u%06d@scale.example", i)
		raw := fmt.Sprintf("From: sender@scale.example\r\nTo: %s\r\nSubject: hello %d\r\nMessage-ID: <%d@scale.example>\r\nDate: Fri, 01 Mar 2024 09:00:00 +0000\r\n\r\nHello %d.\r\n", addr, i, i, i)
		org.Mailboxes = append(org.Mailboxes, estate.Mailbox{
			Address: addr, DisplayName: addr, User: addr, Password: fmt.Sprintf("pw-%d", i),
			Folders: []estate.Folder{{Name: "INBOX", Messages: []estate.Message{{Raw: []byte(raw), Date: date}}}},
		})
	}
	return &estate.Estate{Orgs: []estate.Org{org}}
}

// Options size a run.
type Options struct {
	Mailboxes       int
	Concurrency     int // mailboxes of the organization at once
	MailboxesPerRun int // continue-as-new threshold (0: the workflow's default)
	// DirectMaxBytes moves mailboxes up to this size in the post-switch
	// pass alone (see workflows.OrganizationInput); 0 pre-stages them all.
	DirectMaxBytes int64
	WorkDir        string
	Logger         *slog.Logger
}

// Result is what a run measured.
type Result struct {
	Wall time.Duration
	// MailboxWorkflows counts the Mailbox workflows the organization
	// started (one per mailbox and pass).
	MailboxWorkflows int
	Runs             int // Organization runs (1 + continue-as-new count)
	MaxHistory       int // events in the longest Organization run
	Progress         workflows.Progress
}

// Env is a running embedded server, worker and IMAP servers.
type Env struct {
	*demo.Env
}

// Setup starts everything for an organization of n tiny mailboxes.
func Setup(ctx context.Context, o Options) (*Env, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	env, err := demo.Setup(ctx, demo.Options{
		TemporalAddr: "127.0.0.1:0", UIAddr: "off", WorkDir: o.WorkDir, Logger: o.Logger,
		Estate: TinyEstate("SCALE", o.Mailboxes),
		Worker: worker.Options{
			MaxConcurrentWorkflowTaskPollers: 8,
			MaxConcurrentActivityTaskPollers: 8,
		},
		Register: func(w worker.Worker) {
			w.RegisterWorkflowWithOptions(baselineWorkflow, workflow.RegisterOptions{Name: "BaselineWorkflow"})
			w.RegisterActivityWithOptions(baselineActivity, activity.RegisterOptions{Name: "BaselineActivity"})
		},
	})
	if err != nil {
		return nil, err
	}
	return &Env{env}, nil
}

// Organization migrates the organization and reports what it took.
func (e *Env) Organization(ctx context.Context, o Options) (Result, error) {
	var res Result
	in := e.Inputs[0]
	in.Concurrency = o.Concurrency
	in.MailboxesPerRun = o.MailboxesPerRun
	in.DirectMaxBytes = o.DirectMaxBytes
	ref, err := activities.StageInventory(ctx, e.Activities.Staging, in.Code, in.Mailboxes)
	if err != nil {
		return res, err
	}
	in.Mailboxes, in.Inventory = nil, &ref
	start := time.Now()
	if _, err := control.Start(ctx, e.Client, workflows.TaskQueue, in); err != nil {
		return res, err
	}
	p, err := control.Result(ctx, e.Client, in.Code)
	if err != nil {
		return res, err
	}
	res.Wall = time.Since(start)
	res.Progress = p
	res.MailboxWorkflows = p.MailboxRuns
	res.Runs, res.MaxHistory, err = e.runs(ctx, workflows.OrganizationWorkflowID(in.Code))
	return res, err
}

// runs follows an organization's continue-as-new chain and returns the
// number of runs and the longest history.
func (e *Env) runs(ctx context.Context, id string) (int, int, error) {
	var runIDs []string
	var token []byte
	for {
		resp, err := e.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", id), NextPageToken: token,
		})
		if err != nil {
			return 0, 0, err
		}
		for _, ex := range resp.Executions {
			runIDs = append(runIDs, ex.GetExecution().GetRunId())
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	longest := 0
	for _, run := range runIDs {
		d, err := e.Client.DescribeWorkflowExecution(ctx, id, run)
		if err != nil {
			return 0, 0, err
		}
		longest = max(longest, int(d.GetWorkflowExecutionInfo().GetHistoryLength()))
	}
	return len(runIDs), longest, nil
}

// Baseline runs n trivial workflows of one trivial activity each, all at
// once, on the same server and worker: what the machine can do at best.
func (e *Env) Baseline(ctx context.Context, n int) (time.Duration, error) {
	start := time.Now()
	runs := make([]client.WorkflowRun, n)
	for i := range n {
		r, err := e.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: fmt.Sprintf("baseline/%d/%d", start.UnixNano(), i), TaskQueue: workflows.TaskQueue,
			WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		}, "BaselineWorkflow", i)
		if err != nil {
			return 0, err
		}
		runs[i] = r
	}
	for _, r := range runs {
		if err := r.Get(ctx, nil); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func baselineWorkflow(ctx workflow.Context, i int) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var out int
	err := workflow.ExecuteActivity(ctx, "BaselineActivity", i).Get(ctx, &out)
	return out, err
}

func baselineActivity(_ context.Context, i int) (int, error) { return i + 1, nil }
