package workflows

import (
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// TaskQueue is where the worker polls and the starter starts workflows.
const TaskQueue = "mailshift"

// Workflow type names, as registered by the worker and shown in the Web UI.
const (
	OrganizationWorkflowName = "Organization"
	MailboxWorkflowName      = "Mailbox"
)

// Operator controls on an Organization workflow. The same names work from
// the starter CLI, the temporal CLI and user programs.
const (
	// SignalPause stops new mailboxes from starting; running ones finish.
	SignalPause = "pause"
	// SignalResume lifts a pause.
	SignalResume = "resume"
	// SignalSetConcurrency changes how many mailboxes run at once (int).
	SignalSetConcurrency = "set-concurrency"
	// UpdateApproveCutover approves the cutover (Approval); rejected outside AwaitingCutover.
	UpdateApproveCutover = "approve-cutover"
	// QueryProgress returns Progress.
	QueryProgress = "progress"
)

// Phases of an organization, as stored in the MigrationPhase search attribute.
type Phase string

const (
	PhaseReadiness             Phase = "Readiness"
	PhasePreStage              Phase = "PreStage"
	PhaseAwaitingCutover       Phase = "AwaitingCutover"
	PhaseCutover               Phase = "Cutover"
	PhaseValidation            Phase = "Validation"
	PhaseCompleted             Phase = "Completed"
	PhaseCompletedWithFailures Phase = "CompletedWithFailures"
	PhaseFailed                Phase = "Failed"
)

// Terminal reports whether no further phase follows.
func (p Phase) Terminal() bool {
	return p == PhaseCompleted || p == PhaseCompletedWithFailures || p == PhaseFailed
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
	// BytesCopied is a Double because SQL visibility stores (PostgreSQL,
	// MySQL, SQLite) offer only three custom Int columns per namespace, and
	// the three mailbox counters take them. A float64 is exact to 9 PB.
	SABytesCopied = temporal.NewSearchAttributeKeyFloat64("BytesCopied")
)

// SearchAttributeTypes lists every search attribute with its type, for
// servers that need them registered.
func SearchAttributeTypes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		SAOrganizationCode.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SAMigrationPhase.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SAWave.GetName():             enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SAMailboxesTotal.GetName():   enumspb.INDEXED_VALUE_TYPE_INT,
		SAMailboxesDone.GetName():    enumspb.INDEXED_VALUE_TYPE_INT,
		SAMailboxesFailed.GetName():  enumspb.INDEXED_VALUE_TYPE_INT,
		SABytesCopied.GetName():      enumspb.INDEXED_VALUE_TYPE_DOUBLE,
	}
}

// OrganizationWorkflowID is the deterministic id of an organization's
// workflow, so starting the same organization twice never runs two copies.
func OrganizationWorkflowID(code string) string { return "org/" + code }

// MailboxWorkflowID is the id of a mailbox's child workflow.
func MailboxWorkflowID(org, address string) string {
	return "mailbox/" + org + "/" + strings.ToLower(address)
}
