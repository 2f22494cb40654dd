package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/inventory"
	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/workerapp"
	"github.com/mailshift/mailshift/workflows"
)

// runReport prints (or writes) an organization's per-mailbox report, read
// straight from the staging store of the worker's configuration; it needs
// no Temporal connection.
//
//	starter report ORG --config worker.yaml [--format csv|json] [--skipped] [--out FILE] [--inventory FILE]
func runReport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	cfgPath := fs.String("config", os.Getenv("MAILSHIFT_CONFIG"), "worker configuration whose staging store is read (default: $MAILSHIFT_CONFIG)")
	format := fs.String("format", "csv", "csv or json")
	skipped := fs.Bool("skipped", false, "one record per skipped item instead of one per mailbox")
	out := fs.String("out", "", "write to FILE instead of standard output")
	invPath := fs.String("inventory", "", "inventory CSV whose mailboxes of ORG are reported (default: every mailbox the store has for ORG)")
	conc := fs.Int("concurrency", report.DefaultConcurrency, "mailboxes read from the store at once")
	// The organization may come before the flags (report ORG --config ...).
	var org string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		org, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if org == "" && fs.NArg() > 0 {
		org = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil { // flags after ORG
			return err
		}
	}
	if org == "" || fs.NArg() > 0 {
		return errors.New("report ORG --config FILE [--format csv|json] [--skipped] [--out FILE] [--inventory FILE]")
	}
	if *cfgPath == "" {
		return errors.New("report: --config (or MAILSHIFT_CONFIG) is required: the report is read from the worker's staging store")
	}
	newWriter, err := reportWriter(*format, *skipped)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	store, err := workerapp.NewStaging(ctx, cfg.Staging)
	if err != nil {
		return err
	}
	var mailboxes []string
	if *invPath != "" {
		if mailboxes, err = inventoryMailboxes(*invPath, org); err != nil {
			return err
		}
	} else if mailboxes, err = report.Discover(ctx, store, org); err != nil {
		return err
	} else if len(mailboxes) == 0 {
		// An organization never started (or a mistyped code) has no
		// ledger and no report: say so rather than print an empty report.
		return fmt.Errorf("report %s: no organization %q in %s: no mailbox of it has a ledger or a report (check the code; an organization that has not started yet has none)", org, org, store.Describe())
	}

	var w io.Writer = os.Stdout
	var file *os.File
	if *out != "" {
		if file, err = os.Create(*out); err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	bw := bufio.NewWriter(w)
	rw := newWriter(bw)
	states := map[report.State]int{}
	o := report.Options{Concurrency: *conc, Score: scoreReport}
	err = o.Each(ctx, store, org, mailboxes, func(r *report.MailboxReport) error {
		states[r.State]++
		return rw.Write(r)
	})
	if err == nil {
		err = rw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if file != nil {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(*out)
		}
	}
	if err != nil {
		return fmt.Errorf("report %s: %w", org, err)
	}
	fmt.Fprintf(os.Stderr, "%s: %d mailboxes from %s%s%s\n", org, len(mailboxes), store.Describe(), stateCounts(states), written(*out))
	return nil
}

func reportWriter(format string, skipped bool) (func(io.Writer) report.Writer, error) {
	switch {
	case format == "csv" && skipped:
		return report.NewSkippedCSVWriter, nil
	case format == "csv":
		return report.NewCSVWriter, nil
	case format == "json" && skipped:
		return report.NewSkippedJSONWriter, nil
	case format == "json":
		return report.NewJSONWriter, nil
	}
	return nil, fmt.Errorf("report: --format %q: want csv or json", format)
}

func inventoryMailboxes(path, org string) ([]string, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		return nil, err
	}
	for _, o := range inv.Orgs {
		if o.Code == org {
			out := make([]string, len(o.Rows))
			for i, r := range o.Rows {
				out[i] = r.Mailbox
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("report: no organization %q in %s", org, path)
}

// scoreReport grades a validated mailbox with the workflows' own rules.
func scoreReport(r *report.MailboxReport) (string, []string) {
	v := r.Validation
	c, rules := workflows.Score(activities.ValidateResult{
		OK: v.OK, Folders: v.Folders, Messages: v.Messages, Bytes: v.Bytes, Skipped: v.Skipped,
		Missing: v.Missing, Duplicates: v.Duplicates, FlagMismatch: v.FlagMismatch, DateMismatch: v.DateMismatch,
		Extra: v.Extra, SkippedByReason: r.SkippedByReason, Staged: r.Staged, Problems: v.Problems,
	})
	ids := make([]string, len(rules))
	for i, rule := range rules {
		ids[i] = rule.ID
	}
	return string(c), ids
}

func stateCounts(m map[report.State]int) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for s, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", s, n))
	}
	sort.Strings(parts)
	return ": " + strings.Join(parts, ", ")
}

func written(out string) string {
	if out == "" {
		return ""
	}
	return " -> " + out
}
