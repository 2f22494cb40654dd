package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/internal/metrics"
)

// Outcomes of a mailbox pass, as metrics.MailboxPasses counts them.
const (
	outcomeOK       = metrics.OutcomeOK
	outcomeFailed   = metrics.OutcomeFailed
	outcomeCanceled = metrics.OutcomeCanceled
)

// allPhases are the phases the mailboxes gauge has a series for.
var allPhases = []Phase{PhaseReadiness, PhaseReadinessBlocked, PhasePreStage, PhaseAwaitingCutover, PhaseCutover,
	PhaseValidation, PhaseAwaitingSkippedApproval, PhaseRolledBack, PhaseCompleted, PhaseCompletedWithFailures, PhaseFailed}

// countPass counts a booked mailbox pass. The SDK's workflow metrics
// handler records nothing during replay: no command, no double count.
func (o *organization) countPass(ctx workflow.Context, pass Pass, outcome string) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{
		metrics.LabelOrg: o.in.Code, metrics.LabelPass: string(pass), metrics.LabelOutcome: outcome,
	}).Counter(metrics.MailboxPasses).Inc(1)
}

// gaugePhase puts the organization's mailboxes in its current phase and
// takes them out of every other, so sum by (phase) counts each once.
func (o *organization) gaugePhase(ctx workflow.Context) {
	h := workflow.GetMetricsHandler(ctx)
	for _, ph := range allPhases {
		n := 0.0
		if ph == o.p.Phase {
			n = float64(o.p.MailboxesTotal)
		}
		h.WithTags(map[string]string{metrics.LabelOrg: o.in.Code, metrics.LabelPhase: string(ph)}).Gauge(metrics.OrganizationMailboxes).Update(n)
	}
}
