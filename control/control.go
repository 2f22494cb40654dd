// Package control is the typed Go API for driving mailshift from programs:
// start organizations, watch their progress, pause, resume, change
// concurrency and approve cutovers. The starter CLI is built on it; the
// same operations are available from the temporal CLI under the names in
// package workflows.
package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/workflows"
)

// Start starts an organization's workflow, or attaches to it if it is
// already running: the workflow id is deterministic, so an organization is
// never migrated by two workflows at once.
func Start(ctx context.Context, c client.Client, taskQueue string, in workflows.OrganizationInput) (client.WorkflowRun, error) {
	if err := workflows.ValidateOrganizationInput(in); err != nil {
		return nil, err
	}
	if taskQueue == "" {
		taskQueue = workflows.TaskQueue
	}
	total := in.MailboxCount()
	sa := []temporal.SearchAttributeUpdate{
		workflows.SAOrganizationCode.ValueSet(in.Code),
		workflows.SAMigrationPhase.ValueSet("Scheduled"),
		workflows.SAMailboxesTotal.ValueSet(int64(total)),
	}
	if in.Wave != "" {
		sa = append(sa, workflows.SAWave.ValueSet(in.Wave))
	}
	name := in.Name
	if name == "" {
		name = in.Code
	}
	return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.OrganizationWorkflowID(in.Code),
		TaskQueue:                taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(sa...),
		StaticSummary:            fmt.Sprintf("Migrate %s (%d mailboxes)", name, total),
		StaticDetails:            fmt.Sprintf("Organization **%s** %s, wave %q: %s -> %s, %d mailboxes, approval %s.", in.Code, in.Name, in.Wave, in.SourceEndpoint, in.TargetEndpoint, total, approvalOr(in.Approval)),
	}, workflows.OrganizationWorkflowName, in)
}

func approvalOr(a string) string {
	if a == "" {
		return workflows.ApprovalAuto
	}
	return a
}

// Progress queries an organization's progress.
func Progress(ctx context.Context, c client.Client, org string) (workflows.Progress, error) {
	return query[workflows.Progress](ctx, c, workflows.OrganizationWorkflowID(org))
}

// Result waits for (or reads) an organization's final progress. An
// organization that rolled back or failed ends its workflow as failed
// with the Progress in the error (from versionLiveProgress on; older runs
// completed with it as their result): both give the Progress and no
// error. The error is for a workflow that failed on its own account (a
// refused input, a termination, a timeout).
func Result(ctx context.Context, c client.Client, org string) (workflows.Progress, error) {
	return organizationResult(ctx, c, workflows.OrganizationWorkflowID(org), "")
}

// organizationResult is Result of one run of an organization's workflow.
func organizationResult(ctx context.Context, c client.Client, id, run string) (workflows.Progress, error) {
	var p workflows.Progress
	err := c.GetWorkflow(ctx, id, run).Get(ctx, &p)
	if ended, ok := workflows.OrganizationEnded(err); ok {
		return ended, nil
	}
	return p, err
}

// query asks a workflow (organization or campaign) for its progress.
func query[T any](ctx context.Context, c client.Client, id string) (T, error) {
	var p T
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
	if err != nil {
		return p, fmt.Errorf("%s: %w", id, err)
	}
	return p, v.Get(&p)
}

// result waits for (or reads) a workflow's final result.
func result[T any](ctx context.Context, c client.Client, id string) (T, error) {
	var p T
	err := c.GetWorkflow(ctx, id, "").Get(ctx, &p)
	return p, err
}

// Pause stops new mailboxes from starting and running transfers at their
// next checkpoint.
func Pause(ctx context.Context, c client.Client, org string) error {
	return signal(ctx, c, workflows.OrganizationWorkflowID(org), workflows.SignalPause)
}

// Resume lifts a pause.
func Resume(ctx context.Context, c client.Client, org string) error {
	return signal(ctx, c, workflows.OrganizationWorkflowID(org), workflows.SignalResume)
}

// SetConcurrency changes how many mailboxes run at once and returns the
// previous value. The validator refuses values outside 1..MaxConcurrency.
func SetConcurrency(ctx context.Context, c client.Client, org string, n int, operator string) (int, error) {
	return setConcurrency(ctx, c, workflows.OrganizationWorkflowID(org), n, operator)
}

// setConcurrency is set-concurrency on an organization or a campaign.
func setConcurrency(ctx context.Context, c client.Client, id string, n int, operator string) (int, error) {
	var was int
	err := update(ctx, c, id, workflows.UpdateSetConcurrency, workflows.ConcurrencyRequest{Concurrency: n, Operator: operator}, &was)
	return was, err
}

// signal sends a signal without an argument (pause, resume).
func signal(ctx context.Context, c client.Client, id, name string) error {
	if err := c.SignalWorkflow(ctx, id, "", name, nil); err != nil {
		return fmt.Errorf("%s %s: %w", name, id, err)
	}
	return nil
}

// ApproveCutover approves an organization waiting in AwaitingCutover. The
// workflow's validator rejects approval in any other phase.
func ApproveCutover(ctx context.Context, c client.Client, org, approver, reason string) (workflows.Approval, error) {
	return approval(ctx, c, org, workflows.UpdateApproveCutover, approver, reason)
}

// ApproveSkippedItems accepts the skipped items of an organization whose
// validation scored Investigate, which then completes.
func ApproveSkippedItems(ctx context.Context, c client.Client, org, approver, reason string) (workflows.Approval, error) {
	return approval(ctx, c, org, workflows.UpdateApproveSkippedItems, approver, reason)
}

// OverrideReadiness lets an organization below its readiness threshold go
// on with its ready mailboxes; the reason is required.
func OverrideReadiness(ctx context.Context, c client.Client, org, approver, reason string) (workflows.Approval, error) {
	return approval(ctx, c, org, workflows.UpdateOverrideReadiness, approver, reason)
}

// Rollback stops the organization, reverts its routing switch if it
// happened and ends it as RolledBack; every message stays on the source.
func Rollback(ctx context.Context, c client.Client, org, operator, reason string) (workflows.Approval, error) {
	return approval(ctx, c, org, workflows.UpdateRollback, operator, reason)
}

// SkipMailbox takes a mailbox out of the organization's migration (it is
// stopped if running); RetryMailbox puts a failed or skipped one back.
func SkipMailbox(ctx context.Context, c client.Client, org, address, operator, reason string) (workflows.MailboxControlResult, error) {
	var r workflows.MailboxControlResult
	err := update(ctx, c, workflows.OrganizationWorkflowID(org), workflows.UpdateSkipMailbox, workflows.MailboxControl{Address: address, Operator: operator, Reason: reason}, &r)
	return r, err
}

// RetryMailbox puts a failed or skipped mailbox back into the migration.
func RetryMailbox(ctx context.Context, c client.Client, org, address, operator, reason string) (workflows.MailboxControlResult, error) {
	var r workflows.MailboxControlResult
	err := update(ctx, c, workflows.OrganizationWorkflowID(org), workflows.UpdateRetryMailbox, workflows.MailboxControl{Address: address, Operator: operator, Reason: reason}, &r)
	return r, err
}

func approval(ctx context.Context, c client.Client, org, name, who, reason string) (workflows.Approval, error) {
	var a workflows.Approval
	err := update(ctx, c, workflows.OrganizationWorkflowID(org), name, workflows.Approval{Approver: who, Reason: reason}, &a)
	return a, err
}

// update runs an update to completion on a workflow (organization or
// campaign); a validator's refusal comes back as the error, naming the
// workflow and the control.
func update(ctx context.Context, c client.Client, id, name string, arg, result any) error {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   name,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, id, err)
	}
	if err := h.Get(ctx, result); err != nil {
		return fmt.Errorf("%s %s: %w", name, id, err)
	}
	return nil
}

// Running lists organizations whose workflows are running, by code.
func Running(ctx context.Context, c client.Client) ([]string, error) {
	var out []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.OrganizationWorkflowName),
			NextPageToken: token,
		})
		if err != nil {
			var inv *serviceerror.InvalidArgument
			if errors.As(err, &inv) {
				return nil, fmt.Errorf("list organizations: %w (are mailshift's search attributes registered?)", err)
			}
			return nil, err
		}
		for _, e := range resp.Executions {
			id := e.GetExecution().GetWorkflowId()
			if len(id) > 4 && id[:4] == "org/" {
				out = append(out, id[4:])
			}
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			return out, nil
		}
	}
}

// Watch polls the organizations until every one is in a terminal phase (or
// its workflow closed), calling draw after each poll. It returns the final
// progress of each, in the given order.
func Watch(ctx context.Context, c client.Client, orgs []string, every time.Duration, draw func([]workflows.Progress)) ([]workflows.Progress, error) {
	ps := make([]workflows.Progress, len(orgs))
	done := make([]bool, len(orgs))
	for i, o := range orgs {
		ps[i] = workflows.Progress{Organization: o, Phase: "Scheduled"}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	// Each organization's close wakes the loop at once, rather than at the
	// next tick: a run of a few seconds must not wait most of one more.
	wake := make(chan struct{}, 1)
	if len(orgs) <= maxCloseWaits {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for _, o := range orgs {
			go func() {
				// Get long-polls the close (following continue-as-new);
				// nil decodes nothing.
				_ = c.GetWorkflow(wctx, workflows.OrganizationWorkflowID(o), "").Get(wctx, nil)
				select {
				case wake <- struct{}{}:
				default:
				}
			}()
		}
	}
	for {
		all := true
		for i, o := range orgs {
			if done[i] {
				continue
			}
			p, err := Progress(ctx, c, o)
			if err == nil {
				ps[i] = p
			}
			if err != nil || p.Phase.Terminal() {
				// A closed workflow still answers queries; its result is final.
				desc, derr := c.DescribeWorkflowExecution(ctx, workflows.OrganizationWorkflowID(o), "")
				if derr == nil && desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
					if r, rerr := Result(ctx, c, o); rerr == nil {
						ps[i] = r
					} else {
						ps[i].Phase = workflows.PhaseFailed
						ps[i].Reason = rerr.Error()
					}
					done[i] = true
					continue
				}
			}
			all = false
		}
		if draw != nil {
			draw(ps)
		}
		if all {
			return ps, nil
		}
		select {
		case <-ctx.Done():
			return ps, ctx.Err()
		case <-t.C:
		case <-wake:
		}
	}
}

// maxCloseWaits bounds the long polls Watch keeps open; watching more
// organizations than this, it notices closes at its ticks alone.
const maxCloseWaits = 64
