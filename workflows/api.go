// Package workflows holds mailshift's Temporal workflows: an Organization
// runs its mailboxes through readiness, pre-stage, cutover and validation as
// Mailbox child workflows. Workflow code only decides; activities act.
package workflows

import (
	"time"

	"github.com/mailshift/mailshift/activities"
)

// Approval modes for the cutover.
const (
	ApprovalAuto   = "auto"
	ApprovalManual = "manual"
)

// MailboxSpec is one inventory row of an organization.
type MailboxSpec struct {
	Address    string `json:"address"`
	SourceUser string `json:"source_user"`
	TargetUser string `json:"target_user"`
}

// OrganizationInput starts an Organization workflow. It carries names only:
// endpoints by their configured name, users by login; never a secret.
type OrganizationInput struct {
	Code           string        `json:"code"`
	Name           string        `json:"name,omitempty"`
	Wave           string        `json:"wave,omitempty"`
	SourceEndpoint string        `json:"source_endpoint"`
	TargetEndpoint string        `json:"target_endpoint"`
	Mailboxes      []MailboxSpec `json:"mailboxes"`
	// Concurrency is how many mailboxes run at once (default 8).
	Concurrency int `json:"concurrency,omitempty"`
	// ReadinessThreshold is the share of ready mailboxes (0..1] needed to go
	// on; mailboxes that are not ready are reported as failed. Default 1.
	ReadinessThreshold float64 `json:"readiness_threshold,omitempty"`
	// Approval is "auto" (default) or "manual" (wait for approve-cutover).
	Approval string            `json:"approval,omitempty"`
	Policy   activities.Policy `json:"policy"`
	// Archive exports every mailbox to the staging store after pre-stage, a
	// safety net kept ArchiveRetainDays (default 90) after the source is gone.
	Archive           bool `json:"archive,omitempty"`
	ArchiveRetainDays int  `json:"archive_retain_days,omitempty"`
	// ImportStaged pushes staged large items that fit Policy.MaxMessageSize
	// into the target during cutover (e.g. after the target's limit was raised).
	ImportStaged bool `json:"import_staged,omitempty"`
	// HeartbeatTimeout is how soon a transfer on a dead worker is retried
	// elsewhere (default 2 minutes).
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
}

// Pass is one kind of work a Mailbox child does.
type Pass string

const (
	PassReadiness Pass = "readiness"
	PassPreStage  Pass = "prestage"
	PassFinal     Pass = "final"
	PassValidate  Pass = "validate"
	PassArchive   Pass = "archive"
	PassImport    Pass = "import"
)

// MailboxInput starts a Mailbox child workflow for one pass.
type MailboxInput struct {
	Mailbox          activities.MailboxRef `json:"mailbox"`
	Pass             Pass                  `json:"pass"`
	Policy           activities.Policy     `json:"policy"`
	HeartbeatTimeout time.Duration         `json:"heartbeat_timeout,omitempty"`
	RetainDays       int                   `json:"retain_days,omitempty"`
}

// MailboxResult is what one pass found or did.
type MailboxResult struct {
	Address    string                      `json:"address"`
	Pass       Pass                        `json:"pass"`
	Readiness  *activities.ReadinessResult `json:"readiness,omitempty"`
	Transfer   *activities.TransferResult  `json:"transfer,omitempty"`
	Validation *activities.ValidateResult  `json:"validation,omitempty"`
	Archive    *activities.ArchiveResult   `json:"archive,omitempty"`
	Import     *activities.ImportResult    `json:"import,omitempty"`
}

// Approval is the approve-cutover update's argument; At is set by the workflow.
type Approval struct {
	Approver string    `json:"approver"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// MailboxFailure says why a mailbox did not complete.
type MailboxFailure struct {
	Address string `json:"address"`
	Pass    Pass   `json:"pass"`
	Error   string `json:"error"`
}

// Progress is the progress query's answer and the workflow's result.
type Progress struct {
	Organization string `json:"organization"`
	Name         string `json:"name,omitempty"`
	Wave         string `json:"wave,omitempty"`
	Phase        Phase  `json:"phase"`
	Paused       bool   `json:"paused"`
	Concurrency  int    `json:"concurrency"`

	MailboxesTotal     int `json:"mailboxes_total"`
	MailboxesDone      int `json:"mailboxes_done"`
	MailboxesFailed    int `json:"mailboxes_failed"`
	MailboxesRunning   int `json:"mailboxes_running"`
	MailboxesValidated int `json:"mailboxes_validated"`
	// PassDone/PassTotal count mailboxes through the current pass.
	PassDone  int `json:"pass_done"`
	PassTotal int `json:"pass_total"`

	ReadinessScore float64 `json:"readiness_score"`
	SourceMessages int64   `json:"source_messages"`
	SourceBytes    int64   `json:"source_bytes"`
	// Messages and Bytes are what was appended to the target, all passes.
	Messages        int64          `json:"messages"`
	Bytes           int64          `json:"bytes"`
	Skipped         int            `json:"skipped"`
	SkippedByReason map[string]int `json:"skipped_by_reason,omitempty"`
	StagedItems     []string       `json:"staged_items,omitempty"`
	// ImportedItems were staged and later appended to the target.
	ImportedItems    int   `json:"imported_items,omitempty"`
	ArchivedMessages int64 `json:"archived_messages,omitempty"`
	ArchivedBytes    int64 `json:"archived_bytes,omitempty"`

	Approval *Approval        `json:"approval,omitempty"`
	Routing  string           `json:"routing,omitempty"`
	Failures []MailboxFailure `json:"failures,omitempty"`
	Reason   string           `json:"reason,omitempty"`

	StartedAt      time.Time `json:"started_at"`
	PhaseStartedAt time.Time `json:"phase_started_at"`
	FinishedAt     time.Time `json:"finished_at,omitzero"`
}

// Validated reports whether the organization finished with every mailbox
// migrated and verified.
func (p Progress) Validated() bool {
	return p.Phase == PhaseCompleted && p.MailboxesFailed == 0 && p.MailboxesValidated == p.MailboxesTotal
}

// MaxReportedFailures bounds the failures carried in Progress; every failure
// is also in the workflow history and the per-mailbox reports.
const MaxReportedFailures = 100
