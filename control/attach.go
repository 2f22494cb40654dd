package control

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/mailshift/mailshift/workflows"
)

// RunningOrganization is an organization's workflow that is running: what
// `starter migrate` attaches to instead of starting a second copy.
type RunningOrganization struct {
	WorkflowID string
	RunID      string
	// StartedAt is when the current run started (a long organization
	// continues as new, so its first run may be older).
	StartedAt time.Time
	Progress  workflows.Progress
	// Input is the current run's input: the settings it runs with and
	// its mailboxes (inline, or the staged inventory's reference), plus
	// in Input.State what earlier runs carried (added mailboxes).
	Input workflows.OrganizationInput
	// Added are the mailboxes add-mailboxes appended, all runs.
	Added []workflows.AddedMailboxes
}

// RunningOrg returns the organization's running workflow, or nil if none runs.
func RunningOrg(ctx context.Context, c client.Client, org string, dc converter.DataConverter) (*RunningOrganization, error) {
	id := workflows.OrganizationWorkflowID(org)
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	info := d.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return nil, nil
	}
	r := &RunningOrganization{WorkflowID: id, RunID: info.GetExecution().GetRunId(), StartedAt: info.GetStartTime().AsTime()}
	if r.Progress, err = Progress(ctx, c, org); err != nil {
		return nil, err
	}
	if err := StartInput(ctx, c, id, r.RunID, dc, &r.Input); err != nil {
		return nil, err
	}
	// What was added since the run started is in the workflow, not its input.
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryAddedMailboxes)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", id, workflows.QueryAddedMailboxes, err)
	}
	if err := v.Get(&r.Added); err != nil {
		return nil, err
	}
	return r, nil
}

// AddMailboxes adds mailboxes to a running organization (add-mailboxes);
// the validator refuses them with the reason after the cutover's freeze,
// while rolling back, or on a run that predates the update.
func AddMailboxes(ctx context.Context, c client.Client, org string, req workflows.AddMailboxesRequest) (workflows.AddMailboxesResult, error) {
	var res workflows.AddMailboxesResult
	err := update(ctx, c, workflows.OrganizationWorkflowID(org), workflows.UpdateAddMailboxes, req, &res)
	return res, err
}

// Setting is one setting of an organization that a re-run of migrate
// asked for and the running organization has otherwise.
type Setting struct {
	Name, Running, Wanted string
	// Control is what changes it on a running organization, if anything.
	Control string
}

// ChangedSettings lists the settings of want (those in given, by flag
// name) that differ from the running input, sorted by name. Concurrency is
// compared with the running progress (set-concurrency changes it there).
func ChangedSettings(running *RunningOrganization, want workflows.OrganizationInput, given map[string]bool) []Setting {
	have := running.Input
	var out []Setting
	cmp := func(flag string, r, w any, control string) {
		if given[flag] && fmt.Sprint(r) != fmt.Sprint(w) {
			out = append(out, Setting{Name: flag, Running: fmt.Sprint(r), Wanted: fmt.Sprint(w), Control: control})
		}
	}
	conc := running.Progress.Concurrency
	if conc == 0 {
		conc = have.Concurrency
	}
	cmp("concurrency", conc, want.Concurrency, workflows.UpdateSetConcurrency)
	cmp("approval", or(have.Approval, workflows.ApprovalAuto), or(want.Approval, workflows.ApprovalAuto), workflows.UpdateApproveCutover+" (a manual organization waits for it; an auto one needs none)")
	cmp("readiness-threshold", orF(have.ReadinessThreshold), orF(want.ReadinessThreshold), workflows.UpdateOverrideReadiness)
	cmp("source", have.SourceEndpoint, want.SourceEndpoint, "")
	cmp("target", have.TargetEndpoint, want.TargetEndpoint, "")
	cmp("max-message-size", have.Policy.MaxMessageSize, want.Policy.MaxMessageSize, "")
	cmp("archive", have.Archive, want.Archive, "")
	cmp("archive-retain-days", have.ArchiveRetainDays, want.ArchiveRetainDays, "")
	cmp("import-staged", have.ImportStaged, want.ImportStaged, "")
	cmp("delta-interval", have.DeltaInterval, want.DeltaInterval, "")
	cmp("cutover-window", have.CutoverWindow, want.CutoverWindow, "")
	cmp("direct-max-bytes", have.DirectMaxBytes, want.DirectMaxBytes, "")
	cmp("validation", have.Policy.Validation, want.Policy.Validation, "")
	cmp("validation-sample", have.Policy.ValidationSample, want.Policy.ValidationSample, "")
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orF(f float64) float64 {
	if f == 0 {
		return 1
	}
	return f
}

// MailboxDiff compares the running organization's mailboxes with an
// inventory's: those to add, and those the inventory no longer lists (a
// running organization never drops one: they stay, and are reported).
func MailboxDiff(running, wanted []workflows.MailboxSpec) (added []workflows.MailboxSpec, removed []string) {
	have := map[string]bool{}
	for _, m := range running {
		have[strings.ToLower(m.Address)] = true
	}
	want := map[string]bool{}
	for _, m := range wanted {
		want[strings.ToLower(m.Address)] = true
		if !have[strings.ToLower(m.Address)] {
			added = append(added, m)
		}
	}
	for _, m := range running {
		if !want[strings.ToLower(m.Address)] {
			removed = append(removed, m.Address)
		}
	}
	return added, removed
}

// StartInput decodes into v the input a workflow run (runID "": the
// latest) was started with, read from its first history event with dc
// (nil: the default converter; give the codec's when payloads may be
// encrypted, as history events come undecoded).
func StartInput(ctx context.Context, c client.Client, id, runID string, dc converter.DataConverter, v any) error {
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return fmt.Errorf("workflow %s: no history", id)
	}
	ev, err := it.Next()
	if err != nil {
		return fmt.Errorf("workflow %s: history: %w", id, err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return fmt.Errorf("workflow %s: the first event is %s, not the start", id, ev.GetEventType())
	}
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	if err := dc.FromPayloads(attrs.GetInput(), v); err != nil {
		return fmt.Errorf("workflow %s: reading its input: %w", id, err)
	}
	return nil
}
