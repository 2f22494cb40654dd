package workflows

import (
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/activities"
)

// TaskQueue is where the worker polls and the starter starts workflows.
const TaskQueue = "mailshift"

// Workflow type names, as registered by the worker and shown in the Web UI.
const (
	OrganizationWorkflowName = "Organization"
	MailboxWorkflowName      = "Mailbox"
)

// The Campaign workflow (see Campaign): its type name, and the signal an
// Organization it started sends it when it ends (see notifyCampaign).
const (
	CampaignWorkflowName   = "Campaign"
	signalOrganizationDone = "organization-done"
)

// Operator controls on an Organization workflow. The same names work from
// the starter CLI, the temporal CLI and user programs. Updates answer (and
// their validators refuse a control that makes no sense in the current
// phase, without touching history); signals are for fire-and-forget.
const (
	// SignalPause stops new mailboxes from starting and stops running
	// transfers at their next checkpoint; they start again on resume.
	SignalPause = "pause"
	// SignalResume lifts a pause.
	SignalResume = "resume"
	// UpdateSetConcurrency changes how many mailboxes run at once
	// (ConcurrencyRequest); answers the previous value.
	UpdateSetConcurrency = "set-concurrency"
	// UpdateSkipMailbox takes a mailbox out of the migration (MailboxControl).
	UpdateSkipMailbox = "skip-mailbox"
	// UpdateRetryMailbox puts a failed or skipped mailbox back (MailboxControl).
	UpdateRetryMailbox = "retry-mailbox"
	// UpdateAddMailboxes adds mailboxes to a running organization before
	// its cutover (AddMailboxesRequest); starter migrate sends it when the
	// inventory grew.
	UpdateAddMailboxes = "add-mailboxes"
	// UpdateOverrideReadiness lets an organization below its readiness
	// threshold go on with its ready mailboxes (Approval).
	UpdateOverrideReadiness = "override-readiness"
	// UpdateApproveCutover approves the cutover (Approval); rejected outside AwaitingCutover.
	UpdateApproveCutover = "approve-cutover"
	// UpdateApproveSkippedItems accepts the skipped items of an organization
	// whose validation scored Investigate (Approval).
	UpdateApproveSkippedItems = "approve-skipped-items"
	// UpdateRollback reverts the routing switch and ends the organization as
	// RolledBack, leaving every message on the source (Approval).
	UpdateRollback = "rollback"
	// QueryProgress returns Progress.
	QueryProgress = "progress"
	// QueryAddedMailboxes answers the batches add-mailboxes appended
	// ([]AddedMailboxes), so a re-run of migrate compares the inventory
	// with every mailbox the organization has.
	QueryAddedMailboxes = "added-mailboxes"

	// signalMailboxDone is how a Mailbox workflow reports its pass to the
	// organization's current run when the run that started it is gone (see
	// Mailbox).
	signalMailboxDone = "mailbox-done"
	// signalReportToCurrentRun tells a Mailbox workflow that the run that
	// started it has continued as new, so it reports by signal.
	signalReportToCurrentRun = "report-to-current-run"
)

// Phases of an organization, as stored in the MigrationPhase search attribute.
type Phase string

const (
	PhaseReadiness               Phase = "Readiness"
	PhaseReadinessBlocked        Phase = "ReadinessBlocked"
	PhasePreStage                Phase = "PreStage"
	PhaseAwaitingCutover         Phase = "AwaitingCutover"
	PhaseCutover                 Phase = "Cutover"
	PhaseValidation              Phase = "Validation"
	PhaseAwaitingSkippedApproval Phase = "AwaitingSkippedApproval"
	PhaseRolledBack              Phase = "RolledBack"
	PhaseCompleted               Phase = "Completed"
	PhaseCompletedWithFailures   Phase = "CompletedWithFailures"
	PhaseFailed                  Phase = "Failed"
)

// Terminal reports whether no further phase follows.
func (p Phase) Terminal() bool {
	return p == PhaseCompleted || p == PhaseCompletedWithFailures || p == PhaseFailed || p == PhaseRolledBack
}

// Typed search attributes upserted by the Organization workflow. A real
// cluster needs them created once (see README); the embedded server
// registers them at start.
var (
	SAOrganizationCode = temporal.NewSearchAttributeKeyKeyword("OrganizationCode")
	SAMigrationPhase   = temporal.NewSearchAttributeKeyKeyword("MigrationPhase")
	SAWave             = temporal.NewSearchAttributeKeyKeyword("Wave")
	SAMailboxesTotal   = temporal.NewSearchAttributeKeyInt64("MailboxesTotal")
	SAMailboxesDone    = temporal.NewSearchAttributeKeyInt64("MailboxesDone")
	SAMailboxesFailed  = temporal.NewSearchAttributeKeyInt64("MailboxesFailed")
	// CutoverApprovedBy is who approved the cutover ("auto" when the
	// organization approves itself); Consistency is the validation score.
	SACutoverApprovedBy = temporal.NewSearchAttributeKeyKeyword("CutoverApprovedBy")
	SAConsistency       = temporal.NewSearchAttributeKeyKeyword("Consistency")
	// BytesCopied is a Double because SQL visibility stores (PostgreSQL,
	// MySQL, SQLite) offer only three custom Int columns per namespace, and
	// the three mailbox counters take them. A float64 is exact to 9 PB.
	SABytesCopied = temporal.NewSearchAttributeKeyFloat64("BytesCopied")
	// MigrationPaused is true while an operator's pause holds the
	// organization (runs from versionLiveProgress on), so the list can show
	// the paused ones: MigrationPaused = true.
	SAMigrationPaused = temporal.NewSearchAttributeKeyBool("MigrationPaused")
)

// SearchAttributeTypes lists every search attribute with its type, for
// servers that need them registered.
func SearchAttributeTypes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		SAOrganizationCode.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SAMigrationPhase.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SAWave.GetName():              enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SAMailboxesTotal.GetName():    enumspb.INDEXED_VALUE_TYPE_INT,
		SAMailboxesDone.GetName():     enumspb.INDEXED_VALUE_TYPE_INT,
		SAMailboxesFailed.GetName():   enumspb.INDEXED_VALUE_TYPE_INT,
		SACutoverApprovedBy.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SAConsistency.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SABytesCopied.GetName():       enumspb.INDEXED_VALUE_TYPE_DOUBLE,
		SAMigrationPaused.GetName():   enumspb.INDEXED_VALUE_TYPE_BOOL,
	}
}

// OrganizationWorkflowID is the deterministic id of an organization's
// workflow, so starting the same organization twice never runs two copies.
func OrganizationWorkflowID(code string) string { return "org/" + code }

// MailboxWorkflowID is the id of the Mailbox workflows of one target
// mailbox: its opaque key, the same in every organization and campaign, so
// the id names no one and Temporal runs at most one pass over the mailbox
// at a time across the namespace. List an organization's mailbox workflows
// by their OrganizationCode search attribute.
func MailboxWorkflowID(targetEndpoint, targetUser string) string {
	return "mailbox/" + activities.MailboxKey(targetEndpoint, targetUser)
}

// legacyMailboxWorkflowID is the id Mailbox workflows had before
// versionOpaqueIDs; runs that started children under it still reach them
// by it.
func legacyMailboxWorkflowID(org, address string) string {
	return "mailbox/" + org + "/" + strings.ToLower(address)
}
