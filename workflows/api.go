// Package workflows holds mailshift's Temporal workflows: an Organization
// runs its mailboxes through readiness, pre-stage, cutover and validation as
// Mailbox child workflows. Workflow code only decides; activities act.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/activities"
)

// Approval modes for the cutover.
const (
	ApprovalAuto   = "auto"
	ApprovalManual = "manual"
)

// MailboxSpec is one inventory row of an organization.
type MailboxSpec = activities.MailboxSpec

// OrganizationInput starts an Organization workflow. It carries names only:
// endpoints by their configured name, users by login; never a secret.
type OrganizationInput struct {
	Code           string `json:"code"`
	Name           string `json:"name,omitempty"`
	Wave           string `json:"wave,omitempty"`
	SourceEndpoint string `json:"source_endpoint"`
	TargetEndpoint string `json:"target_endpoint"`
	// Mailboxes lists a small organization's mailboxes; a large one names
	// its list in the staging store instead (Inventory), because a workflow
	// input is limited to a few MB and the workflow needs one page at a time.
	Mailboxes []MailboxSpec            `json:"mailboxes,omitempty"`
	Inventory *activities.InventoryRef `json:"inventory,omitempty"`
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
	// DeltaInterval repeats delta passes while the organization waits for
	// its cutover (approval and window); 0 runs none between pre-stage and
	// the final pass.
	DeltaInterval time.Duration `json:"delta_interval,omitempty"`
	// CutoverWindow restricts the cutover to a window such as
	// "Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London"; empty: any time.
	CutoverWindow string `json:"cutover_window,omitempty"`
	// MailboxesPerRun bounds the mailbox workflows one run of the
	// organization starts before it continues as new, which keeps every
	// run's history far below Temporal's limits (default 500).
	MailboxesPerRun int `json:"mailboxes_per_run,omitempty"`
	// HeartbeatTimeout is how soon a transfer on a dead worker is retried
	// elsewhere (default 20 s).
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
	// LocalPassBudget is how long each pass of a mailbox first runs as a
	// local activity (see Mailbox); default DefaultLocalPassBudget, negative
	// runs every pass as a regular activity.
	LocalPassBudget time.Duration `json:"local_pass_budget,omitempty"`
	// LocalPassMaxBytes is the largest mailbox, as readiness measured it,
	// whose every transfer and validation pass tries locally first
	// (default DefaultLocalPassMaxBytes); readiness always does, and so do
	// the delta, final and post-switch passes of larger mailboxes.
	LocalPassMaxBytes int64 `json:"local_pass_max_bytes,omitempty"`
	// DirectMaxBytes moves mailboxes that readiness measured at or below
	// it (and with no large items) in one pass after the routing switch:
	// no pre-stage, delta or final pass. A mailbox of a few MB is copied in
	// seconds, so pre-staging it only costs the server two more workflows;
	// its user sees new mail at once and the older mail seconds later.
	// 0 (default) pre-stages every mailbox.
	DirectMaxBytes int64 `json:"direct_max_bytes,omitempty"`
	// State is set only by the workflow itself when it continues as new.
	State *OrganizationState `json:"state,omitempty"`
}

// Pass is one kind of work a Mailbox child does.
type Pass string

const (
	PassReadiness Pass = "readiness"
	PassPreStage  Pass = "prestage"
	PassDelta     Pass = "delta"
	PassFinal     Pass = "final"
	// PassPostSwitch copies what reached the source between the final pass
	// and the routing switch taking effect.
	PassPostSwitch Pass = "post-switch"
	PassValidate   Pass = "validate"
	PassArchive    Pass = "archive"
	PassImport     Pass = "import"
)

// MailboxInput starts a Mailbox child workflow for one pass.
type MailboxInput struct {
	Mailbox          activities.MailboxRef `json:"mailbox"`
	Pass             Pass                  `json:"pass"`
	Policy           activities.Policy     `json:"policy"`
	HeartbeatTimeout time.Duration         `json:"heartbeat_timeout,omitempty"`
	RetainDays       int                   `json:"retain_days,omitempty"`
	// LocalBudget is how long a pass may run as a local activity before
	// it goes on as a regular one; 0 runs regular activities only.
	LocalBudget time.Duration `json:"local_budget,omitempty"`
	// Index and Seq identify the mailbox and pass in the organization's
	// outcome signal.
	Index int    `json:"index"`
	Seq   int    `json:"seq"`
	Chain string `json:"chain,omitempty"`
	// ReportByResult: the organization reads this pass from the result and
	// asks for a signal only when it hands the mailbox over to its next
	// run. Inputs without it (organizations started before) get a signal.
	ReportByResult bool `json:"report_by_result,omitempty"`
	// Validate: a post-switch pass validates the mailbox too, which saves
	// the validation pass its own workflow. If that check fails the
	// mailbox is validated again in the validation phase.
	Validate bool `json:"validate,omitempty"`
}

// MailboxCount is the organization's number of mailboxes, listed inline or
// staged as an inventory.
func (in OrganizationInput) MailboxCount() int {
	if in.Inventory != nil {
		return in.Inventory.Count
	}
	return len(in.Mailboxes)
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

// MailboxOutcome is what a Mailbox workflow signals to its organization: a
// summary only (counts, never item lists), so 50,000 of them stay small.
type MailboxOutcome struct {
	Index    int    `json:"index"`
	Seq      int    `json:"seq"`
	Pass     Pass   `json:"pass"`
	Address  string `json:"address"`
	Chain    string `json:"chain,omitempty"`
	Canceled bool   `json:"canceled,omitempty"`
	Error    string `json:"error,omitempty"`

	Ready          bool     `json:"ready,omitempty"`
	Problems       []string `json:"problems,omitempty"`
	SourceMessages int64    `json:"source_messages,omitempty"`
	SourceBytes    int64    `json:"source_bytes,omitempty"`
	LargeItems     int      `json:"large_items,omitempty"`

	Copied          int64          `json:"copied,omitempty"`
	Bytes           int64          `json:"bytes,omitempty"`
	Skipped         int            `json:"skipped,omitempty"`
	SkippedByReason map[string]int `json:"skipped_by_reason,omitempty"`
	Staged          int            `json:"staged,omitempty"`
	Imported        int            `json:"imported,omitempty"`

	ArchivedMessages int64 `json:"archived_messages,omitempty"`
	ArchivedBytes    int64 `json:"archived_bytes,omitempty"`

	Consistency Consistency `json:"consistency,omitempty"`
	Rules       []Rule      `json:"rules,omitempty"`
	// ValidationLevel is the level Consistency was computed at.
	ValidationLevel string `json:"validation_level,omitempty"`

	// Throttled and ThrottledFor: how often the target asked the pass to
	// slow down, and how long it waited as asked.
	Throttled    int           `json:"throttled,omitempty"`
	ThrottledFor time.Duration `json:"throttled_for,omitempty"`
	// KeywordsDropped counts messages the pass copied without their
	// keywords (a target that keeps none).
	KeywordsDropped int64 `json:"keywords_dropped,omitempty"`
}

// MailboxFinding is a validated mailbox whose score is not Perfect.
type MailboxFinding struct {
	Address     string      `json:"address"`
	Consistency Consistency `json:"consistency"`
	Rules       []string    `json:"rules"`
}

// MailboxControl is the argument of skip-mailbox and retry-mailbox.
type MailboxControl struct {
	Address  string `json:"address"`
	Operator string `json:"operator"`
	Reason   string `json:"reason,omitempty"`
	unknown  []string
}

// MailboxControlResult says what the control did.
type MailboxControlResult struct {
	Address string `json:"address"`
	Index   int    `json:"index"`
	Was     string `json:"was"`
	Now     string `json:"now"`
}

// AddMailboxesRequest is add-mailboxes' argument: new mailboxes inline,
// or staged in the store (Inventory), so only a reference travels through
// Temporal when the starter knows a store.
type AddMailboxesRequest struct {
	Mailboxes []MailboxSpec            `json:"mailboxes,omitempty"`
	Inventory *activities.InventoryRef `json:"inventory,omitempty"`
	Operator  string                   `json:"operator"`
	Reason    string                   `json:"reason,omitempty"`
	unknown   []string
}

// AddMailboxesResult says where the added mailboxes went: indexes
// First..Total-1 of the organization's mailbox table.
type AddMailboxesResult struct {
	Added int   `json:"added"`
	First int   `json:"first"`
	Total int   `json:"total"`
	Phase Phase `json:"phase"`
}

// ConcurrencyRequest is set-concurrency's argument.
type ConcurrencyRequest struct {
	Concurrency int    `json:"concurrency"`
	Operator    string `json:"operator,omitempty"`
	unknown     []string
}

// Approval is the argument of approve-cutover, approve-skipped-items,
// override-readiness and rollback: who and why. At is set by the workflow.
type Approval struct {
	Approver string    `json:"approver"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
	// unknown are the fields a caller sent that Approval does not have;
	// the validator refuses them (see strictArgs).
	unknown []string
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

	MailboxesTotal   int `json:"mailboxes_total"`
	MailboxesDone    int `json:"mailboxes_done"` // validated
	MailboxesFailed  int `json:"mailboxes_failed"`
	MailboxesSkipped int `json:"mailboxes_skipped"` // taken out by an operator
	MailboxesRunning int `json:"mailboxes_running"`
	// MailboxesCopied counts mailboxes copied to the target by at least
	// one pass and not failed or skipped since (validated ones included);
	// counted from versionLiveProgress on, so 0 in older runs.
	MailboxesCopied int `json:"mailboxes_copied,omitempty"`
	// MailboxesUnchanged counts mailboxes found unchanged since their last
	// validation (see activities.Seal): they took no copy pass and kept
	// their sealed score. Found at readiness; one that changed before the
	// routing switch is taken out again.
	MailboxesUnchanged int `json:"mailboxes_unchanged,omitempty"`
	// FinalPassSkipped: the cutover began within minutes of the start of
	// the last copy pass, so it went straight to the routing switch; the
	// post-switch pass copied what came since (versionSealed).
	FinalPassSkipped bool `json:"final_pass_skipped,omitempty"`
	// Throttled counts the times a target asked this run's passes to slow
	// down (Exchange Online's "Request is throttled"), and ThrottledFor
	// the time they spent waiting as asked: not failures, but the pace the
	// target allows.
	Throttled    int           `json:"throttled,omitempty"`
	ThrottledFor time.Duration `json:"throttled_for,omitempty"`
	// KeywordsDropped counts messages copied without their keywords to a
	// target that keeps none (Exchange Online); each is listed in the
	// organization's keywords.csv.
	KeywordsDropped int64 `json:"keywords_dropped,omitempty"`
	// Pass is the pass under way; PassDone/PassTotal count its mailboxes.
	Pass        Pass `json:"pass,omitempty"`
	PassDone    int  `json:"pass_done"`
	PassTotal   int  `json:"pass_total"`
	DeltaPasses int  `json:"delta_passes,omitempty"`
	Runs        int  `json:"runs"`
	// MailboxRuns counts the Mailbox workflows started, all passes.
	MailboxRuns int `json:"mailbox_runs"`

	ReadinessScore    float64   `json:"readiness_score"`
	ReadinessOverride *Approval `json:"readiness_override,omitempty"`
	// ReadinessProblems counts not-ready mailboxes by problem kind (login,
	// folders, large-items, quota, other).
	ReadinessProblems map[string]int `json:"readiness_problems,omitempty"`
	LargeItems        int            `json:"large_items,omitempty"`
	SourceMessages    int64          `json:"source_messages"`
	SourceBytes       int64          `json:"source_bytes"`
	// Messages and Bytes are what was appended to the target, all passes,
	// as the passes' results say (a pass killed mid-way and run again may
	// count some twice, or not at all).
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
	// TargetMessages and TargetBytes are what is in the target when the
	// organization ends, counted by its report from the ledgers (what is
	// settled there) and the validations: right after any crash. Set from
	// versionTruth on; 0 before and while it runs.
	TargetMessages  int64          `json:"target_messages,omitempty"`
	TargetBytes     int64          `json:"target_bytes,omitempty"`
	Skipped         int            `json:"skipped"`
	SkippedByReason map[string]int `json:"skipped_by_reason,omitempty"`
	StagedCount     int            `json:"staged"`
	// ImportedItems were staged and later appended to the target.
	ImportedItems    int   `json:"imported_items,omitempty"`
	ArchivedMessages int64 `json:"archived_messages,omitempty"`
	ArchivedBytes    int64 `json:"archived_bytes,omitempty"`

	Approval             *Approval `json:"approval,omitempty"`
	CutoverWindowOpensAt time.Time `json:"cutover_window_opens_at,omitzero"`
	FrozenAt             time.Time `json:"frozen_at,omitzero"`
	Routing              string    `json:"routing,omitempty"`
	RoutingChanged       int       `json:"routing_changed,omitempty"`
	RoutingReverted      bool      `json:"routing_reverted,omitempty"`
	// RoutingRestored counts mailboxes moved without pre-stage (direct)
	// whose post-switch copy failed: their mail goes to the source again.
	RoutingRestored int `json:"routing_restored,omitempty"`

	// Consistency is the worst mailbox score; ConsistencyCounts counts
	// mailboxes per score and RulesFired mailboxes per rule.
	Consistency       Consistency         `json:"consistency,omitempty"`
	ConsistencyCounts map[Consistency]int `json:"consistency_counts,omitempty"`
	// ValidationLevels counts validated mailboxes by the level their score
	// was computed at (metadata, sample, full).
	ValidationLevels     map[string]int   `json:"validation_levels,omitempty"`
	RulesFired           map[string]int   `json:"rules_fired,omitempty"`
	Findings             []MailboxFinding `json:"findings,omitempty"`
	SkippedItemsApproval *Approval        `json:"skipped_items_approval,omitempty"`
	RollbackRequested    *Approval        `json:"rollback_requested,omitempty"`

	Failures []MailboxFailure `json:"failures,omitempty"`
	Reason   string           `json:"reason,omitempty"`
	// Reports names the per-mailbox reports in the staging store (CSV,
	// skipped items CSV, JSON), written when the organization ends.
	Reports     []string `json:"reports,omitempty"`
	ReportError string   `json:"report_error,omitempty"`

	StartedAt      time.Time `json:"started_at"`
	PhaseStartedAt time.Time `json:"phase_started_at"`
	FinishedAt     time.Time `json:"finished_at,omitzero"`
}

// Validated reports whether the organization finished with every mailbox
// migrated and verified.
func (p Progress) Validated() bool {
	return p.Phase == PhaseCompleted && p.MailboxesFailed == 0 && p.MailboxesDone == p.MailboxesTotal-p.MailboxesSkipped
}

// OrganizationEnded reads the final Progress out of the error an
// Organization workflow ends with when it rolled back or failed (from
// versionLiveProgress on; runs before completed with the Progress as their
// result). err is what a client's or a parent's Get returned: a
// WorkflowExecutionError or ChildWorkflowExecutionError wrapping the
// ApplicationError of type ErrTypeOrganizationRolledBack or
// ErrTypeOrganizationFailed. ok is false for any other error, which is a
// failure of the workflow itself (a bad input, a termination).
func OrganizationEnded(err error) (p Progress, ok bool) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || (app.Type() != activities.ErrTypeOrganizationRolledBack && app.Type() != activities.ErrTypeOrganizationFailed) {
		return p, false
	}
	if !app.HasDetails() || app.Details(&p) != nil {
		return Progress{}, false
	}
	return p, true
}

// endedError is how a live-progress organization that rolled back or
// failed ends its workflow: a non-retryable application error carrying
// its Progress, so the Web UI's list shows it Failed, in red, and not as
// a green Completed. nil for the phases that completed (with failures or
// not).
func endedError(p Progress) error {
	var typ string
	switch p.Phase {
	case PhaseRolledBack:
		typ = activities.ErrTypeOrganizationRolledBack
	case PhaseFailed:
		typ = activities.ErrTypeOrganizationFailed
	default:
		return nil
	}
	msg := fmt.Sprintf("organization %s %s: %d of %d mailboxes validated, %d failed", p.Organization, p.Phase, p.MailboxesDone, p.MailboxesTotal, p.MailboxesFailed)
	if p.Reason != "" {
		msg += "; " + p.Reason
	}
	return temporal.NewNonRetryableApplicationError(msg, typ, nil, p)
}

// MaxReportedFailures bounds the failures carried in Progress; every failure
// is also in the workflow history and the per-mailbox reports.
const MaxReportedFailures = 100
