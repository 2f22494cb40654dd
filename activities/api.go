package activities

import (
	"time"

	"github.com/mailshift/mailshift/internal/transfer"
)

// MailboxRef names a mailbox on both sides by endpoint name and user name;
// credentials are resolved inside the activity.
type MailboxRef struct {
	Org            string `json:"org"`
	Address        string `json:"address"`
	SourceEndpoint string `json:"source_endpoint"`
	SourceUser     string `json:"source_user"`
	TargetEndpoint string `json:"target_endpoint"`
	TargetUser     string `json:"target_user"`
}

// Policy is the per-organization transfer policy. Zero values and nil
// pointers mean "the worker's configured default".
type Policy struct {
	MaxMessageSize int64             `json:"max_message_size,omitempty"`
	MaxLargeItems  *int              `json:"max_large_items,omitempty"` // -1 = no limit
	MaxBadItems    *int              `json:"max_bad_items,omitempty"`   // -1 = no limit
	FolderMap      map[string]string `json:"folder_map,omitempty"`
	Exclude        []string          `json:"exclude,omitempty"`
	// Target folder rules checked by readiness (0: Exchange Online's limits).
	TargetMaxFolders    int `json:"target_max_folders,omitempty"`
	TargetMaxDepth      int `json:"target_max_depth,omitempty"`
	TargetMaxNameLength int `json:"target_max_name_length,omitempty"`
	// TargetQuotaBytes is the target mailboxes' storage quota, checked by
	// readiness when the target does not tell it over IMAP (Exchange
	// Online does not offer QUOTA); 0: unknown, not checked.
	TargetQuotaBytes int64 `json:"target_quota_bytes,omitempty"`
	// TargetLanguage is the language of the organization's target
	// mailboxes (en, de, fr, es, nl), which names the well-known folders of
	// a target that has no SPECIAL-USE (Exchange Online); TargetFolders
	// names them by role (sent, trash, drafts, junk, archive) instead.
	TargetLanguage string            `json:"target_language,omitempty"`
	TargetFolders  map[string]string `json:"target_folders,omitempty"`
	// Validation is the organization's validation level (metadata, sample
	// or full; "" = the worker's) and ValidationSample the messages per
	// folder the sample level reads (0 = the worker's).
	Validation       string `json:"validation,omitempty"`
	ValidationSample int    `json:"validation_sample,omitempty"`
}

// ReadinessResult is what a read-only look at both sides found.
type ReadinessResult struct {
	Ready      bool     `json:"ready"`
	Problems   []string `json:"problems,omitempty"`
	Folders    int      `json:"folders"`
	Messages   int64    `json:"messages"`
	Bytes      int64    `json:"bytes"`
	LargeItems int      `json:"large_items"`
	// QuotaUsed/QuotaLimit are the target's storage quota when it offers
	// QUOTA (RFC 9208); zero when unknown.
	QuotaUsed  int64 `json:"quota_used,omitempty"`
	QuotaLimit int64 `json:"quota_limit,omitempty"`
	// Unchanged: the mailbox's seal holds (see Seal); Folders, Messages,
	// Bytes and LargeItems are then the sealed validation's.
	Unchanged bool `json:"unchanged,omitempty"`
}

// TransferInput asks for one pass over a mailbox.
type TransferInput struct {
	Mailbox MailboxRef `json:"mailbox"`
	Pass    string     `json:"pass"`
	Policy  Policy     `json:"policy"`
	// Budget, when set, bounds the attempt: the transfer stops at a
	// checkpoint when it is spent, and any error ends the attempt too; both
	// come back as an Incomplete result, for a regular activity to finish
	// from the ledger.
	Budget time.Duration `json:"budget,omitempty"`
	// PassID names the pass in the ledger's tallies (the Mailbox
	// workflow's run): Copied and Bytes then count every attempt of the
	// pass, also one whose result was lost.
	PassID string `json:"pass_id,omitempty"`
}

// TransferResult summarises a pass. Skipped lists every item not copied so
// far (all passes), capped at MaxReportedItems; SkippedTotal is exact.
type TransferResult struct {
	Folders         int                    `json:"folders"`
	Copied          int64                  `json:"copied"`
	Bytes           int64                  `json:"bytes"`
	Matched         int64                  `json:"matched"`
	BodiesRead      int64                  `json:"bodies_read"`
	SourceMessages  int64                  `json:"source_messages"`
	Reconciled      int                    `json:"reconciled_folders"`
	Skipped         []transfer.SkippedItem `json:"skipped,omitempty"`
	SkippedTotal    int                    `json:"skipped_total"`
	SkippedByReason map[string]int         `json:"skipped_by_reason,omitempty"`
	// Staged counts the skipped items kept in the staging store (all of
	// them; Skipped lists only the first MaxReportedItems).
	Staged  int    `json:"staged,omitempty"`
	Resumed bool   `json:"resumed"`
	Ledger  string `json:"ledger"`
	// Incomplete: a budgeted attempt stopped before the pass was done
	// (StopReason says why); what it copied is settled in the ledger.
	Incomplete bool   `json:"incomplete,omitempty"`
	StopReason string `json:"stop_reason,omitempty"`
	// Started and Finished bound this pass's last attempt (UTC).
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Throttled counts the times the target asked this attempt to slow
	// down, and ThrottledFor is how long it waited as asked.
	Throttled    int           `json:"throttled,omitempty"`
	ThrottledFor time.Duration `json:"throttled_for,omitempty"`
	// KeywordsDropped counts the messages this pass copied without their
	// keywords, to a target that keeps none.
	KeywordsDropped int64 `json:"keywords_dropped,omitempty"`
}

// MaxReportedItems bounds the skipped items carried in a result; the full
// list is in the mailbox ledger in the staging store.
const MaxReportedItems = 50

// ValidateInput asks to compare a mailbox's source and target.
type ValidateInput struct {
	Mailbox MailboxRef `json:"mailbox"`
	Policy  Policy     `json:"policy"`
}

// ValidateResult is the comparison.
type ValidateResult struct {
	OK           bool  `json:"ok"`
	Folders      int   `json:"folders"`
	Messages     int   `json:"messages"`
	Bytes        int64 `json:"bytes"`
	Skipped      int   `json:"skipped"`
	Missing      int   `json:"missing"`
	Duplicates   int   `json:"duplicates"`
	FlagMismatch int   `json:"flag_mismatch"`
	DateMismatch int   `json:"date_mismatch"`
	Extra        int   `json:"extra"`
	// Level is how deep the validation looked; Altered counts target
	// messages that differ from the copy's digests and Sampled the target
	// bodies read to check them (sample level).
	Level   string `json:"level,omitempty"`
	Altered int    `json:"altered,omitempty"`
	Sampled int    `json:"sampled,omitempty"`
	// SkippedByReason counts the mailbox's skipped items by reason; Staged
	// of them are kept in the staging store (recoverable).
	SkippedByReason map[string]int `json:"skipped_by_reason,omitempty"`
	Staged          int            `json:"staged,omitempty"`
	// Rerendered: the target re-renders MIME and was compared by identity
	// and content, not bytes. KeywordsDropped counts messages copied
	// without the keywords the target does not keep.
	Rerendered      bool     `json:"rerendered,omitempty"`
	KeywordsDropped int      `json:"keywords_dropped,omitempty"`
	Problems        []string `json:"problems,omitempty"`
	Report          string   `json:"report"`
}

// RoutingInput switches (or reverts) mail delivery for an organization.
type RoutingInput struct {
	Org       string   `json:"org"`
	Addresses []string `json:"addresses"`
	Revert    bool     `json:"revert"`
}

// RoutingResult says what the router changed.
type RoutingResult struct {
	Router  string `json:"router"`
	Changed int    `json:"changed"`
}

// ImportInput pushes a mailbox's staged items that now fit the target's
// limit (Policy.MaxMessageSize) into the target.
type ImportInput struct {
	Mailbox MailboxRef `json:"mailbox"`
	Policy  Policy     `json:"policy"`
}

// ImportResult counts what was imported; Remaining are still over the limit.
type ImportResult struct {
	Imported  int   `json:"imported"`
	Bytes     int64 `json:"bytes"`
	Present   int   `json:"already_present"`
	Remaining int   `json:"remaining"`
}

// ArchiveInput exports a whole source mailbox to the staging store before
// cutover, as a safety net that outlives the source.
type ArchiveInput struct {
	Mailbox    MailboxRef `json:"mailbox"`
	RetainDays int        `json:"retain_days"`
}

// ArchiveResult names the archive's index and counts what it holds.
type ArchiveResult struct {
	Index       string    `json:"index"`
	Messages    int       `json:"messages"`
	Bytes       int64     `json:"bytes"`
	RetainUntil time.Time `json:"retain_until"`
}
