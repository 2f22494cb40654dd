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
	"time"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/htmlreport"
	"github.com/mailshift/mailshift/internal/inventory"
	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/workerapp"
	"github.com/mailshift/mailshift/workflows"
)

// runReport prints (or writes) an organization's per-mailbox report, read
// straight from the staging store of the worker's configuration, or a
// campaign's HTML report from Temporal.
//
//	starter report ORG [--config worker.yaml] [--format csv|json|html] [--skipped|--keywords] [--out FILE] [--inventory FILE]
//	starter report --campaign NAME --format html --out FILE
//
// Without --config or $MAILSHIFT_CONFIG it uses the configuration of a
// `starter demo` or `starter serve` recorded for the Temporal address it
// would dial (internal/embedded). CSV and JSON need no Temporal; HTML asks
// the organization's workflow for its outcome and score (best effort, a few
// seconds) and says so when it cannot.
func runReport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	cfgPath := fs.String("config", os.Getenv("MAILSHIFT_CONFIG"), "worker configuration whose staging store is read (default: $MAILSHIFT_CONFIG, else the starter demo or serve running on --address)")
	format := fs.String("format", "csv", "csv, json or html")
	skipped := fs.Bool("skipped", false, "one record per skipped item instead of one per mailbox (csv, json)")
	keywords := fs.Bool("keywords", false, "one csv row per message copied without its keywords to a target that keeps none (Exchange Online)")
	out := fs.String("out", "", "write to FILE instead of standard output")
	invPath := fs.String("inventory", "", "inventory CSV whose mailboxes of ORG are reported (default: every mailbox the store has for ORG)")
	conc := fs.Int("concurrency", report.DefaultConcurrency, "mailboxes read from the store at once")
	address := fs.String("address", "", "Temporal address (default: TEMPORAL_ADDRESS or the client profile); also finds a demo's or serve's configuration")
	campaign := fs.String("campaign", "", "report on this campaign's organizations (--format html; needs Temporal)")
	useTemporal := fs.Bool("temporal", true, "ask Temporal for the organization's outcome (best effort): html shows its score; every format marks the mailboxes it failed (readiness included), which the store alone cannot tell")
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
	if *campaign != "" {
		if org != "" || fs.NArg() > 0 {
			return errors.New("report --campaign NAME takes no organization: it reports on every organization of the campaign")
		}
		if *format != "html" {
			return fmt.Errorf("report --campaign: --format %q: a campaign's report is html (each organization's CSV: starter report ORG)", *format)
		}
		return runCampaignReport(ctx, *campaign, *address, *out)
	}
	if org == "" || fs.NArg() > 0 {
		return errors.New("report ORG [--config FILE] [--format csv|json|html] [--skipped|--keywords] [--out FILE] [--inventory FILE], or report --campaign NAME --format html")
	}
	html := *format == "html"
	var newWriter func(io.Writer) report.Writer
	if html {
		if *skipped || *keywords {
			return errors.New("report: --skipped and --keywords are for csv and json; the html report counts skipped items by reason")
		}
	} else {
		var err error
		if newWriter, err = reportWriter(*format, *skipped, *keywords); err != nil {
			return err
		}
	}
	src, err := reportSource(*cfgPath, *address)
	if err != nil {
		return err
	}
	cfg, err := config.Load(src.config)
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

	var opts htmlreport.Options
	if html {
		opts = htmlreport.Options{Concurrency: *conc, Score: scoreReport}
		if *useTemporal {
			opts.Progress, opts.TemporalNote = organizationProgress(ctx, src, org)
		} else {
			opts.TemporalNote = "not asked (--temporal=false)"
		}
	}
	return writeReport(*out, func(w io.Writer) (string, error) {
		if html {
			o, err := htmlreport.WriteOrganization(ctx, w, store, org, mailboxes, opts)
			if err != nil {
				return "", err
			}
			return stateCounts(o.States), nil
		}
		rw := newWriter(w)
		states := map[report.State]int{}
		// The workflow knows what failed for good (readiness refusals, a
		// last pass whose error the store did not get): its failures win.
		failed := map[string]workflows.MailboxFailure{}
		if *useTemporal {
			if p, _ := organizationProgress(ctx, src, org); p != nil {
				for _, f := range p.Failures {
					failed[strings.ToLower(f.Address)] = f
				}
			}
		}
		o := report.Options{Concurrency: *conc, Score: scoreReport}
		err := o.Each(ctx, store, org, mailboxes, func(r *report.MailboxReport) error {
			if f, ok := failed[strings.ToLower(r.Address)]; ok {
				r.Apply(report.Outcome{Status: "failed", Pass: string(f.Pass), Error: f.Error})
			}
			states[r.State]++
			return rw.Write(r)
		})
		if err == nil {
			err = rw.Close()
		}
		if err != nil {
			return "", fmt.Errorf("report %s: %w", org, err)
		}
		return stateCounts(states), nil
	}, func(summary string) string {
		return fmt.Sprintf("%s: %d mailboxes from %s%s", org, len(mailboxes), store.Describe(), summary)
	})
}

// writeReport writes through fill to --out (removed again on failure) or
// standard output, then prints what was written on stderr.
func writeReport(out string, fill func(io.Writer) (string, error), say func(summary string) string) error {
	var w io.Writer = os.Stdout
	var file *os.File
	var err error
	if out != "" {
		if file, err = os.Create(out); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		defer file.Close()
		w = file
	}
	start := time.Now()
	bw := bufio.NewWriter(w)
	summary, err := fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if file != nil {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
		}
	}
	if err != nil {
		return err
	}
	size := ""
	if file != nil {
		if st, serr := os.Stat(out); serr == nil {
			size = fmt.Sprintf(" (%d bytes in %s)", st.Size(), time.Since(start).Round(time.Millisecond))
		}
	}
	fmt.Fprintf(os.Stderr, "%s%s%s\n", say(summary), written(out), size)
	return nil
}

func reportWriter(format string, skipped, keywords bool) (func(io.Writer) report.Writer, error) {
	switch {
	case skipped && keywords:
		return nil, errors.New("report: --skipped or --keywords, not both")
	case format == "csv" && keywords:
		return report.NewKeywordsCSVWriter, nil
	case keywords:
		return nil, fmt.Errorf("report --keywords: --format %q: the keywords table is csv", format)
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
var scoreReport = htmlreport.ScoreMailbox

func stateCounts[S ~string](m map[S]int) string {
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
