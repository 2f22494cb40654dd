// Package activities holds the retryable work of a migration: readiness
// checks, mailbox transfer, validation and routing. Activities receive and
// return only small summaries; message bytes flow between the IMAP servers
// and the staging store, never through Temporal.
//
// What lives where:
//   - activities.go: Activities (what the worker registers), Limits, and
//     the policy defaults;
//   - api.go: the activities' inputs and results;
//   - errors.go: the error types (ErrType*, NonRetryable) and how a fault
//     becomes a Temporal error;
//   - endpoints.go: IMAP endpoints, their connection slots, credentials
//     and dialing;
//   - ledger.go: a mailbox's ledger and the JSON objects in the staging
//     store;
//   - heartbeat.go: heartbeats for work without natural progress points;
//   - locks.go: one transfer of a mailbox at a time in a worker;
//   - readiness.go, readiness_batch.go: CheckReadiness and
//     CheckReadinessBatch;
//   - transfer.go: TransferMailbox;
//   - validate.go: ValidateMailbox;
//   - routing.go: SwitchRouting;
//   - import.go: ImportStagedItems;
//   - archive.go: ArchiveMailbox;
//   - inventory.go: staged mailbox inventories: ListMailboxes, FindMailbox;
//   - report.go: WriteOrganizationReport.
package activities

import (
	"log/slog"

	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/profile"
	"github.com/mailshift/mailshift/internal/routing"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// Limits are the worker's defaults for Policy fields left empty.
type Limits struct {
	MaxMessageSize int64
	MaxLargeItems  int
	MaxBadItems    int
	// LanesPerMailbox: folders of one mailbox copied at once (default 1).
	LanesPerMailbox int
	// AppendWindow: APPENDs in flight per lane over LITERAL+ (<= 0: none).
	AppendWindow int
}

// Activities holds the dependencies of every activity; the worker registers
// one value of it.
type Activities struct {
	Endpoints map[string]*Endpoint
	Staging   staging.Store
	Router    routing.Router
	Limits    Limits
	Logger    *slog.Logger
	// SpoolDir holds rare out-of-order FETCH bodies; "" = os.TempDir().
	SpoolDir string
	// Metrics receives mailshift's own metrics; nil records nothing.
	Metrics *metrics.Metrics
	// Validation is the level a policy that names none validates at.
	Validation ValidationDefaults

	locks mailboxLocks
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// ValidationDefaults are the worker's validation level and sample size
// ("" and 0: transfer.DefaultLevel and transfer.DefaultSample).
type ValidationDefaults struct {
	Level  string
	Sample int
}

// validation resolves p's validation options against the worker's.
func (a *Activities) validation(p Policy) (transfer.ValidateOptions, error) {
	name := a.Validation.Level
	if p.Validation != "" {
		name = p.Validation
	}
	level, err := transfer.ParseLevel(name)
	if err != nil {
		return transfer.ValidateOptions{}, err
	}
	o := transfer.ValidateOptions{Level: level, Sample: a.Validation.Sample}
	if p.ValidationSample > 0 {
		o.Sample = p.ValidationSample
	}
	return o, nil
}

// policy resolves p for mailbox m: the worker's limits where p sets none,
// and what m's target endpoint keeps, takes and calls its folders.
func (a *Activities) policy(m MailboxRef, p Policy) transfer.Options {
	o := transfer.Options{
		MaxMessageSize: a.Limits.MaxMessageSize,
		MaxLargeItems:  a.Limits.MaxLargeItems,
		MaxBadItems:    a.Limits.MaxBadItems,
		Rules:          transfer.FolderRules{Map: p.FolderMap, Exclude: p.Exclude},
		SpoolDir:       a.SpoolDir,
	}
	if p.MaxMessageSize > 0 {
		o.MaxMessageSize = p.MaxMessageSize
	}
	if p.MaxLargeItems != nil {
		o.MaxLargeItems = *p.MaxLargeItems
	}
	if p.MaxBadItems != nil {
		o.MaxBadItems = *p.MaxBadItems
	}
	if ep := a.Endpoints[m.TargetEndpoint]; ep != nil {
		o.Target = ep.Target
		if ep.SizeCeiling > 0 && (o.MaxMessageSize <= 0 || o.MaxMessageSize > ep.SizeCeiling) {
			o.MaxMessageSize = ep.SizeCeiling
		}
		if ep.WellKnown {
			// A bad language is a readiness problem (wellKnownProblem); until
			// it is fixed, folders keep their names.
			if wk, err := profile.Folders(p.TargetLanguage, p.TargetFolders); err == nil {
				o.Rules.WellKnown = wk
			}
		}
	}
	return o
}

// wellKnownProblem says why m's well-known target folders cannot be named
// under p, or "".
func (a *Activities) wellKnownProblem(m MailboxRef, p Policy) string {
	if ep := a.Endpoints[m.TargetEndpoint]; ep != nil && ep.WellKnown {
		if _, err := profile.Folders(p.TargetLanguage, p.TargetFolders); err != nil {
			return err.Error()
		}
	}
	return ""
}
