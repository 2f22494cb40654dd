package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/staging"
)

// OrganizationReportInput asks for the per-mailbox report of an
// organization. The mailboxes are Mailboxes, else the staged Inventory's,
// else every mailbox with a ledger or pass report under <org>/ in the store.
type OrganizationReportInput struct {
	Org       string        `json:"org"`
	Mailboxes []string      `json:"mailboxes,omitempty"`
	Inventory *InventoryRef `json:"inventory,omitempty"`
	// Statuses is the organization's verdict on each mailbox, in the order
	// of Mailboxes (or of the Inventory): one byte per mailbox as the
	// workflow's mailbox table holds it ('a' active, 'f' failed, 's'
	// skipped by an operator, 'v' validated). Failures are the failures
	// the workflow still holds, with their pass and error. The store
	// records only what finished; these say what failed for good. Empty
	// (an input of a workflow that predates them): the store decides.
	Statuses string          `json:"statuses,omitempty"`
	Failures []ReportFailure `json:"failures,omitempty"`
	// Added are the mailboxes add-mailboxes appended, after the others.
	Added []ReportBatch `json:"added,omitempty"`
}

// ReportBatch is one add-mailboxes: addresses, or a staged inventory.
type ReportBatch struct {
	Mailboxes []string      `json:"mailboxes,omitempty"`
	Inventory *InventoryRef `json:"inventory,omitempty"`
}

// ReportFailure is a mailbox's failure as the organization recorded it.
type ReportFailure struct {
	Address string `json:"address"`
	Pass    string `json:"pass"`
	Error   string `json:"error"`
}

// OrganizationReportResult names the report objects and counts what they hold.
type OrganizationReportResult struct {
	CSV        string `json:"csv"`
	SkippedCSV string `json:"skipped_csv"`
	JSON       string `json:"json"`
	// KeywordsCSV lists the messages copied without their keywords (a
	// target that keeps none); "" when there are none.
	KeywordsCSV     string         `json:"keywords_csv,omitempty"`
	KeywordsDropped int64          `json:"keywords_dropped,omitempty"`
	Mailboxes       int            `json:"mailboxes"`
	Skipped         int            `json:"skipped"`
	States          map[string]int `json:"states"`
	// ReleasedClaims is how many target mailboxes the organization held
	// (see claims.go) and has let go.
	ReleasedClaims int `json:"released_claims,omitempty"`
	// Counted is set by the activities that count TargetMessages and
	// TargetBytes: the messages and bytes in the target over every
	// mailbox, from the ledgers (or the validation, for validated
	// mailboxes), so they are right however many attempts crashed.
	Counted        bool  `json:"counted,omitempty"`
	TargetMessages int64 `json:"target_messages,omitempty"`
	TargetBytes    int64 `json:"target_bytes,omitempty"`
}

// statusNames are the workflow's mailbox table states, as report.Outcome
// names them.
var statusNames = map[byte]string{'a': "active", 'f': "failed", 's': "skipped", 'v': "validated"}

// outcome is what the workflow decided of mailbox i.
func (in OrganizationReportInput) outcome(i int, address string, failures map[string]ReportFailure) (report.Outcome, bool) {
	if i >= len(in.Statuses) || len(in.Mailboxes) == 0 && in.Inventory == nil {
		return report.Outcome{}, false
	}
	o := report.Outcome{Status: statusNames[in.Statuses[i]]}
	if f, ok := failures[strings.ToLower(address)]; ok && o.Status == "failed" {
		o.Pass, o.Error = f.Pass, f.Error
	}
	return o, true
}

// ReportObjectNames are where WriteOrganizationReport puts an organization's
// reports: reports/<org>/mailboxes.csv, skipped-items.csv, mailboxes.json.
func ReportObjectNames(org string) (csv, skippedCSV, json string) {
	return staging.Name("reports", org, "mailboxes.csv"),
		staging.Name("reports", org, "skipped-items.csv"),
		staging.Name("reports", org, "mailboxes.json")
}

// KeywordsReportName is reports/<org>/keywords.csv: the messages copied
// without their keywords, written when there are any.
func KeywordsReportName(org string) string { return staging.Name("reports", org, "keywords.csv") }

// reportHeartbeatEvery is how many mailboxes are reported between heartbeats.
const reportHeartbeatEvery = 200

// WriteOrganizationReport builds every mailbox's report from the staging
// store (pass reports, validation, ledger) and writes the organization's
// mailbox table, skipped-items table and JSON back to the store. Mailboxes
// are read a few at a time and written through spool files, so memory does
// not grow with the organization. A retry starts again from the beginning.
func (a *Activities) WriteOrganizationReport(ctx context.Context, in OrganizationReportInput) (OrganizationReportResult, error) {
	res := OrganizationReportResult{States: map[string]int{}}
	if a.Staging == nil {
		return res, temporal.NewNonRetryableApplicationError("no staging store configured: there is nothing to report from", ErrTypeConfig, nil)
	}
	if in.Org == "" {
		return res, temporal.NewNonRetryableApplicationError("organization report: no organization given", ErrTypeConfig, nil)
	}
	mailboxes, err := a.reportMailboxes(ctx, in)
	if err != nil {
		return res, err
	}
	res.CSV, res.SkippedCSV, res.JSON = ReportObjectNames(in.Org)
	outs := []struct {
		name string
		new  func(io.Writer) report.Writer
		file *os.File
		w    report.Writer
	}{
		{name: res.CSV, new: report.NewCSVWriter},
		{name: res.SkippedCSV, new: report.NewSkippedCSVWriter},
		{name: res.JSON, new: report.NewJSONWriter},
		{name: KeywordsReportName(in.Org), new: report.NewKeywordsCSVWriter},
	}
	for i := range outs {
		f, err := os.CreateTemp(a.SpoolDir, "mailshift-report-*")
		if err != nil {
			return res, fmt.Errorf("organization %s: report spool: %w", in.Org, err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		outs[i].file, outs[i].w = f, outs[i].new(f)
	}
	failures := map[string]ReportFailure{}
	for _, f := range in.Failures {
		failures[strings.ToLower(f.Address)] = f
	}
	i := 0
	err = report.Each(ctx, a.Staging, in.Org, mailboxes, func(r *report.MailboxReport) error {
		if o, ok := in.outcome(i, r.Address, failures); ok {
			r.Apply(o)
		}
		i++
		res.TargetMessages += r.TargetMessages
		res.TargetBytes += r.TargetBytes
		for _, o := range outs {
			if err := o.w.Write(r); err != nil {
				return err
			}
		}
		res.Mailboxes++
		res.Skipped += r.Skipped
		res.KeywordsDropped += r.KeywordsDropped
		res.States[string(r.State)]++
		if res.Mailboxes%reportHeartbeatEvery == 0 && activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, res.Mailboxes)
		}
		return nil
	})
	if err != nil {
		return res, temporalError("organization "+in.Org+" report", err)
	}
	if res.KeywordsDropped > 0 {
		res.KeywordsCSV = KeywordsReportName(in.Org)
	}
	for _, o := range outs {
		if o.name == KeywordsReportName(in.Org) && res.KeywordsCSV == "" {
			continue
		}
		if err := o.w.Close(); err != nil {
			return res, fmt.Errorf("organization %s: report spool: %w", in.Org, err)
		}
		if _, err := o.file.Seek(0, io.SeekStart); err != nil {
			return res, err
		}
		meta := map[string]string{"kind": "report", "organization": in.Org}
		if _, err := a.putStaging(ctx, o.name, heartbeatReader(ctx, o.file), meta); err != nil {
			return res, temporalError("staging "+o.name, err)
		}
	}
	res.Counted = true
	// The organization has ended (the final report is written only then):
	// its target mailboxes are free for another organization.
	if res.ReleasedClaims, err = ReleaseClaims(ctx, a.Staging, in.Org); err != nil {
		return res, temporalError("organization "+in.Org+" releasing its mailbox claims", err)
	}
	a.logger().Info("organization report written", "org", in.Org, "mailboxes", res.Mailboxes, "skipped", res.Skipped, "csv", res.CSV, "claims_released", res.ReleasedClaims)
	return res, nil
}

// reportMailboxes resolves the input's mailbox list.
func (a *Activities) reportMailboxes(ctx context.Context, in OrganizationReportInput) ([]string, error) {
	out, err := a.baseMailboxes(ctx, in)
	if err != nil || len(in.Mailboxes) == 0 && in.Inventory == nil {
		return out, err
	}
	for _, b := range in.Added {
		if b.Inventory == nil {
			out = append(out, b.Mailboxes...)
			continue
		}
		more, err := a.baseMailboxes(ctx, OrganizationReportInput{Org: in.Org, Inventory: b.Inventory})
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

func (a *Activities) baseMailboxes(ctx context.Context, in OrganizationReportInput) ([]string, error) {
	switch {
	case len(in.Mailboxes) > 0:
		return in.Mailboxes, nil
	case in.Inventory != nil:
		out := make([]string, 0, in.Inventory.Count)
		err := a.scanInventory(ctx, *in.Inventory, func(i int, line []byte) (bool, error) {
			var s MailboxSpec
			if err := json.Unmarshal(line, &s); err != nil {
				return false, temporal.NewNonRetryableApplicationError(fmt.Sprintf("inventory %s line %d: %v", in.Inventory.Object, i+1, err), ErrTypeConfig, nil)
			}
			out = append(out, s.Address)
			return true, nil
		})
		return out, err
	}
	out, err := report.Discover(ctx, a.Staging, in.Org)
	if err != nil {
		return nil, temporalError("organization "+in.Org+" report", err)
	}
	return out, nil
}
