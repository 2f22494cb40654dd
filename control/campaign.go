package control

import (
	"context"
	"encoding/json"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/workflows"
)

// MaxCampaignInput bounds the encoded size of a campaign's input: Temporal
// refuses payloads over 2 MiB by default, and continue-as-new carries the
// input again with the campaign's state (a few tens of KB).
const MaxCampaignInput = 1536 << 10

// StartCampaign starts a Campaign workflow, or attaches to it if it is
// already running (its id is campaign/<name>). The input is validated and
// planned first, so a bad calendar or organization fails here, not in the
// worker. The calendar needs a start date.
func StartCampaign(ctx context.Context, c client.Client, taskQueue string, in workflows.CampaignInput) (client.WorkflowRun, error) {
	if err := workflows.ValidateCampaignInput(in); err != nil {
		return nil, err
	}
	plan, err := in.Plan()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxCampaignInput {
		return nil, fmt.Errorf("campaign %s: input is %.1f MiB, over the %.1f MiB a workflow input may take: stage more organizations' mailbox lists (InventoryRef) or split the campaign (by wave, say)",
			in.Name, float64(len(b))/(1<<20), float64(MaxCampaignInput)/(1<<20))
	}
	if taskQueue == "" {
		taskQueue = workflows.TaskQueue
	}
	return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.CampaignWorkflowID(in.Name),
		TaskQueue:                taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SAMigrationPhase.ValueSet(workflows.CampaignPhaseRunning),
			workflows.SAMailboxesTotal.ValueSet(int64(plan.Mailboxes())),
		),
		StaticSummary: fmt.Sprintf("Campaign %s: %d organizations, %d mailboxes, %s to %s",
			in.Name, len(plan.Orgs), plan.Mailboxes(), in.Calendar.Start, plan.LastDay()),
		StaticDetails: fmt.Sprintf("Campaign **%s**: %d organizations in %d waves, %d mailboxes over %d days from %s (%s); capacity %d per weekday, %d per weekend day; %s -> %s.",
			in.Name, len(plan.Orgs), len(plan.Waves), plan.Mailboxes(), plan.Days(), in.Calendar.Start, zoneName(in.Calendar.TimeZone),
			in.Calendar.WeekdayCapacity, in.Calendar.WeekendCapacity, in.Template.SourceEndpoint, in.Template.TargetEndpoint),
	}, workflows.CampaignWorkflowName, in)
}

func zoneName(tz string) string {
	if tz == "" {
		return "UTC"
	}
	return tz
}

// CampaignProgress queries a campaign's progress.
func CampaignProgress(ctx context.Context, c client.Client, name string) (workflows.CampaignProgress, error) {
	return query[workflows.CampaignProgress](ctx, c, workflows.CampaignWorkflowID(name))
}

// CampaignResult waits for (or reads) a campaign's final progress.
func CampaignResult(ctx context.Context, c client.Client, name string) (workflows.CampaignProgress, error) {
	return result[workflows.CampaignProgress](ctx, c, workflows.CampaignWorkflowID(name))
}

// PauseCampaign stops the campaign from starting organizations and pauses
// the ones it runs.
func PauseCampaign(ctx context.Context, c client.Client, name string) error {
	return signal(ctx, c, workflows.CampaignWorkflowID(name), workflows.SignalPause)
}

// ResumeCampaign lifts a pause, on the campaign and its running
// organizations.
func ResumeCampaign(ctx context.Context, c client.Client, name string) error {
	return signal(ctx, c, workflows.CampaignWorkflowID(name), workflows.SignalResume)
}

// SetCampaignConcurrency changes how many organizations the campaign runs
// at once and returns the previous value.
func SetCampaignConcurrency(ctx context.Context, c client.Client, name string, n int, operator string) (int, error) {
	return setConcurrency(ctx, c, workflows.CampaignWorkflowID(name), n, operator)
}
