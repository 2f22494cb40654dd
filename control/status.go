package control

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/mailshift/mailshift/workflows"
)

// StatusFilter narrows ListStatus; empty fields match everything.
type StatusFilter struct {
	Phase string   // MigrationPhase, e.g. Completed
	Wave  string   // Wave
	Codes []string // OrganizationCode in these (organizations only)
}

// QueryTimeout bounds each progress query of ListStatus, so a workflow
// whose worker is down does not hold up the listing: it shows what its
// search attributes say.
var QueryTimeout = 5 * time.Second

// StatusQuery is the visibility query listing the workflows of type
// workflowType that match f. Every value is a quoted string literal.
func StatusQuery(workflowType string, f StatusFilter) string {
	q := "WorkflowType = " + QuoteQueryValue(workflowType)
	if f.Phase != "" {
		q += " AND " + workflows.SAMigrationPhase.GetName() + " = " + QuoteQueryValue(f.Phase)
	}
	if f.Wave != "" {
		q += " AND " + workflows.SAWave.GetName() + " = " + QuoteQueryValue(f.Wave)
	}
	if len(f.Codes) > 0 {
		vs := make([]string, len(f.Codes))
		for i, c := range f.Codes {
			vs[i] = QuoteQueryValue(c)
		}
		q += " AND " + workflows.SAOrganizationCode.GetName() + " IN (" + strings.Join(vs, ", ") + ")"
	}
	return q
}

// QuoteQueryValue makes s a string literal of a visibility query: in single
// quotes, with backslashes and single quotes escaped by a backslash, so no
// value can end the literal and add conditions of its own.
func QuoteQueryValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// ListStatus lists every organization matching f, running and finished,
// sorted by code; with campaigns also every matching campaign (Codes does
// not apply to them). A running workflow answers its progress query; a
// closed one gives its result. Where neither answers (no worker, or the
// workflow failed or was terminated) the row comes from the workflow's
// last search attributes, and Reason says why.
func ListStatus(ctx context.Context, c client.Client, f StatusFilter, campaigns bool) ([]workflows.Progress, []workflows.CampaignProgress, error) {
	es, err := listLatest(ctx, c, StatusQuery(workflows.OrganizationWorkflowName, f))
	if err != nil {
		return nil, nil, err
	}
	orgs := make([]workflows.Progress, 0, len(es))
	for _, e := range es {
		orgs = append(orgs, orgStatus(ctx, c, e))
	}
	sort.Slice(orgs, func(i, j int) bool { return orgs[i].Organization < orgs[j].Organization })
	if !campaigns || len(f.Codes) > 0 {
		return orgs, nil, nil
	}
	f.Codes = nil
	es, err = listLatest(ctx, c, StatusQuery(workflows.CampaignWorkflowName, f))
	if err != nil {
		return nil, nil, err
	}
	camps := make([]workflows.CampaignProgress, 0, len(es))
	for _, e := range es {
		camps = append(camps, campaignStatus(ctx, c, e))
	}
	sort.Slice(camps, func(i, j int) bool { return camps[i].Name < camps[j].Name })
	return orgs, camps, nil
}

// listLatest runs a visibility query and keeps the latest run of each
// workflow id: a workflow that continued as new, or an organization started
// again, has earlier runs listed too.
func listLatest(ctx context.Context, c client.Client, query string) ([]*workflowpb.WorkflowExecutionInfo, error) {
	latest := map[string]*workflowpb.WorkflowExecutionInfo{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			var inv *serviceerror.InvalidArgument
			if errors.As(err, &inv) {
				return nil, fmt.Errorf("list workflows (%s): %w (are mailshift's search attributes registered?)", query, err)
			}
			return nil, err
		}
		for _, e := range resp.Executions {
			id := e.GetExecution().GetWorkflowId()
			if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
				continue // its successor is listed too
			}
			if was, ok := latest[id]; !ok || e.GetStartTime().AsTime().After(was.GetStartTime().AsTime()) {
				latest[id] = e
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	out := make([]*workflowpb.WorkflowExecutionInfo, 0, len(latest))
	for _, e := range latest {
		out = append(out, e)
	}
	return out, nil
}

func orgStatus(ctx context.Context, c client.Client, e *workflowpb.WorkflowExecutionInfo) workflows.Progress {
	id, run := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
	var p workflows.Progress
	var err error
	if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		qctx, cancel := context.WithTimeout(ctx, QueryTimeout)
		p, err = query[workflows.Progress](qctx, c, id)
		cancel()
	} else {
		p, err = organizationResult(ctx, c, id, run)
	}
	if err == nil && p.Organization != "" {
		fillTimes(&p.StartedAt, &p.FinishedAt, e)
		return p
	}
	// The search attributes are the workflow's last word.
	sa := e.GetSearchAttributes().GetIndexedFields()
	p = workflows.Progress{
		Organization:    saString(sa, workflows.SAOrganizationCode.GetName()),
		Wave:            saString(sa, workflows.SAWave.GetName()),
		Phase:           workflows.Phase(saString(sa, workflows.SAMigrationPhase.GetName())),
		MailboxesTotal:  int(saInt(sa, workflows.SAMailboxesTotal.GetName())),
		MailboxesDone:   int(saInt(sa, workflows.SAMailboxesDone.GetName())),
		MailboxesFailed: int(saInt(sa, workflows.SAMailboxesFailed.GetName())),
		Bytes:           int64(saFloat(sa, workflows.SABytesCopied.GetName())),
		Consistency:     workflows.Consistency(saString(sa, workflows.SAConsistency.GetName())),
	}
	if p.Organization == "" {
		p.Organization = strings.TrimPrefix(id, "org/")
	}
	if st := e.GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && !p.Phase.Terminal() {
		p.Phase = workflows.PhaseFailed // failed, terminated, canceled or timed out mid-phase
	}
	if err != nil {
		p.Reason = fmt.Sprintf("workflow %s (%s): %v", strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")), id, err)
	}
	fillTimes(&p.StartedAt, &p.FinishedAt, e)
	return p
}

func campaignStatus(ctx context.Context, c client.Client, e *workflowpb.WorkflowExecutionInfo) workflows.CampaignProgress {
	id, run := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
	var p workflows.CampaignProgress
	var err error
	if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		qctx, cancel := context.WithTimeout(ctx, QueryTimeout)
		p, err = query[workflows.CampaignProgress](qctx, c, id)
		cancel()
	} else {
		err = c.GetWorkflow(ctx, id, run).Get(ctx, &p)
	}
	if err != nil || p.Name == "" {
		sa := e.GetSearchAttributes().GetIndexedFields()
		p = workflows.CampaignProgress{
			Name:             strings.TrimPrefix(id, "campaign/"),
			Phase:            saString(sa, workflows.SAMigrationPhase.GetName()),
			MailboxesPlanned: int(saInt(sa, workflows.SAMailboxesTotal.GetName())),
		}
		if st := e.GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			p.Phase = workflows.CampaignOrgFailed
		}
	}
	fillTimes(&p.StartedAt, &p.FinishedAt, e)
	return p
}

// fillTimes takes the start and close times from visibility where the
// workflow did not say.
func fillTimes(started, finished *time.Time, e *workflowpb.WorkflowExecutionInfo) {
	if started.IsZero() && e.GetStartTime() != nil {
		*started = e.GetStartTime().AsTime()
	}
	if finished.IsZero() && e.GetCloseTime() != nil && e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		*finished = e.GetCloseTime().AsTime()
	}
}

func saDecode(sa map[string]*commonpb.Payload, name string, v any) bool {
	p, ok := sa[name]
	return ok && converter.GetDefaultDataConverter().FromPayload(p, v) == nil
}

func saString(sa map[string]*commonpb.Payload, name string) string {
	var s string
	saDecode(sa, name, &s)
	return s
}

func saInt(sa map[string]*commonpb.Payload, name string) int64 {
	var n int64
	saDecode(sa, name, &n)
	return n
}

func saFloat(sa map[string]*commonpb.Payload, name string) float64 {
	var f float64
	saDecode(sa, name, &f)
	return f
}
