package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/inventory"
	"github.com/mailshift/mailshift/internal/progress"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/workerapp"
	"github.com/mailshift/mailshift/workflows"
)

// defaultInlineMax is the largest organization whose mailbox list travels
// in the campaign's input; larger ones are staged.
const defaultInlineMax = 1000

func runCampaign(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("campaign", flag.ContinueOnError)
	invPath := fs.String("inventory", "", "inventory CSV (organization,mailbox,source_user,target_user[,wave,organization_name])")
	name := fs.String("name", "", "campaign name (workflow id campaign/NAME)")
	var pf planFlags
	pf.register(fs)
	wave := fs.String("wave", "", "only the organizations of this wave")
	src := fs.String("source", "source", "source endpoint name in the worker's config")
	tgt := fs.String("target", "target", "target endpoint name in the worker's config")
	address := fs.String("address", "", "Temporal address (default: TEMPORAL_ADDRESS or the client profile)")
	taskQueue := fs.String("task-queue", workflows.TaskQueue, "worker task queue")
	maxRunning := fs.Int("max-running", workflows.DefaultCampaignMaxRunning, "organizations at once")
	perRun := fs.Int("orgs-per-run", workflows.DefaultOrgsPerRun, "organizations started per run before the campaign continues as new")
	conc := fs.Int("concurrency", workflows.DefaultConcurrency, "mailboxes per organization at once")
	approval := fs.String("approval", workflows.ApprovalAuto, "cutover approval: auto or manual")
	threshold := fs.Float64("readiness-threshold", 1, "share of ready mailboxes needed to proceed (0..1]")
	size := fs.String("max-message-size", "", "target's maximum message size (default: the worker's)")
	cutover := fs.String("cutover-window", "", "organizations cut over only in this window (default: --window)")
	delta := fs.Duration("delta-interval", 0, "delta passes this often while an organization waits for its cutover (0: none)")
	archive := fs.Bool("archive", false, "export every mailbox to the staging store before cutover")
	retain := fs.Int("archive-retain-days", 90, "how long archives are kept (recorded on each object)")
	direct := fs.String("direct-max-bytes", "", "mailboxes readiness measures at or below this size (e.g. 5MB) skip pre-stage: one pass after the routing switch moves them (default: pre-stage all)")
	importStaged := fs.Bool("import-staged", false, "append staged large items that fit --max-message-size to the target during cutover")
	inlineMax := fs.Int("inline-max", defaultInlineMax, "organizations with more mailboxes have their list staged (needs --config)")
	cfgPath := fs.String("config", os.Getenv("MAILSHIFT_CONFIG"), "the worker's configuration, for its staging store (default: MAILSHIFT_CONFIG)")
	dryRun := fs.Bool("dry-run", false, "check and plan, start nothing")
	workerWait := fs.Duration("worker-wait", control.WorkerWait, "after the start, wait this long for a worker to poll the task queue and warn if none does (0: don't check)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *invPath == "":
		return errors.New("campaign: --inventory is required")
	case *name == "":
		return errors.New("campaign: --name is required")
	case fs.NArg() > 0:
		return fmt.Errorf("campaign: unexpected argument %q", fs.Arg(0))
	case *inlineMax < 0:
		return fmt.Errorf("campaign: --inline-max %d is negative", *inlineMax)
	}
	if err := workflows.ValidateCampaignName(*name); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	cal, err := pf.calendar(time.Now())
	if err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	var directMax int64
	if *direct != "" {
		if directMax, err = config.ParseByteSize(*direct); err != nil {
			return fmt.Errorf("campaign: --direct-max-bytes: %w", err)
		}
	}
	var maxSize int64
	if *size != "" {
		if maxSize, err = config.ParseByteSize(*size); err != nil {
			return fmt.Errorf("campaign: --max-message-size: %w", err)
		}
	}
	inv, err := inventory.Load(*invPath)
	if err != nil {
		return fmt.Errorf("campaign: inventory %w", err)
	}
	in := workflows.CampaignInput{
		Name:     *name,
		Calendar: cal,
		Template: workflows.OrganizationInput{
			SourceEndpoint: *src, TargetEndpoint: *tgt,
			Concurrency: *conc, Approval: *approval, ReadinessThreshold: *threshold,
			Archive: *archive, ArchiveRetainDays: *retain, ImportStaged: *importStaged,
			DeltaInterval: *delta, CutoverWindow: *cutover, DirectMaxBytes: directMax,
		},
		MaxRunning: *maxRunning,
		OrgsPerRun: *perRun,
	}
	if in.Template.CutoverWindow == "" {
		in.Template.CutoverWindow = cal.Window
	}
	in.Template.Policy.MaxMessageSize = maxSize
	var large []int // organizations whose list is staged
	for _, o := range inv.Orgs {
		if *wave != "" && o.Wave != *wave {
			continue
		}
		co := workflows.CampaignOrg{Code: o.Code, Name: o.Name, Wave: o.Wave, Mailboxes: len(o.Rows)}
		if len(o.Rows) > *inlineMax {
			large = append(large, len(in.Organizations))
		} else {
			co.MailboxList = specsOf(o)
		}
		in.Organizations = append(in.Organizations, co)
	}
	if len(in.Organizations) == 0 {
		return fmt.Errorf("campaign: no organization of wave %q in %s", *wave, *invPath)
	}
	plan, err := in.Plan()
	if err != nil {
		return err
	}
	fmt.Printf("campaign %s: %d organizations, %d mailboxes from %s\n", *name, len(in.Organizations), plan.Mailboxes(), *invPath)
	describeCalendar(os.Stdout, cal)
	if err := writeWaves(os.Stdout, plan); err != nil {
		return err
	}
	fmt.Printf("%d days, last day %s %.3s; %d organizations of over %d mailboxes get their list staged\n",
		plan.Days(), plan.LastDay(), plan.LastDay().Weekday(), len(large), *inlineMax)
	if *dryRun {
		return nil
	}

	if len(large) > 0 {
		store, err := openStaging(ctx, *cfgPath)
		if err != nil {
			o := in.Organizations[large[0]]
			return fmt.Errorf("campaign: organization %s has %d mailboxes, over --inline-max %d, so its list must be staged where the worker reads it: %w", o.Code, o.Mailboxes, *inlineMax, err)
		}
		rows := map[string]*inventory.Organization{}
		for _, o := range inv.Orgs {
			rows[o.Code] = o
		}
		for _, i := range large {
			o := &in.Organizations[i]
			ref, err := activities.StageInventory(ctx, store, o.Code, specsOf(rows[o.Code]))
			if err != nil {
				return fmt.Errorf("campaign: %w", err)
			}
			o.Inventory = &ref
		}
		fmt.Printf("staged %d mailbox lists\n", len(large))
	}
	if err := workflows.ValidateCampaignInput(in); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	c, target, err := dialTargetWith(*address, *cfgPath)
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := control.StartCampaign(ctx, c, *taskQueue, in)
	if err != nil {
		return fmt.Errorf("start campaign %s: %w", *name, err)
	}
	fmt.Printf("started campaign %s: workflow %s run %s\nfollow it with: starter campaign-status %s\n", *name, run.GetID(), run.GetRunID(), *name)
	target.TaskQueue, target.Config = *taskQueue, *cfgPath
	checkWorker(ctx, c, target, *workerWait, "the campaign is started and runs once one polls")
	return nil
}

func specsOf(o *inventory.Organization) []workflows.MailboxSpec {
	specs := make([]workflows.MailboxSpec, len(o.Rows))
	for i, r := range o.Rows {
		specs[i] = workflows.MailboxSpec{Address: r.Mailbox, SourceUser: r.SourceUser, TargetUser: r.TargetUser}
	}
	return specs
}

// openStaging opens the staging store of the worker's configuration: the
// worker reads staged mailbox lists from there.
func openStaging(ctx context.Context, path string) (staging.Store, error) {
	if path == "" {
		return nil, errors.New("give --config (the worker's configuration) or set MAILSHIFT_CONFIG")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return workerapp.NewStaging(ctx, cfg.Staging)
}

func runCampaignControl(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	address := fs.String("address", "", "Temporal address")
	operator := fs.String("operator", progress.Operator(), "who does it (recorded in history)")
	pos, err := parseAnyOrder(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return fmt.Errorf("%s: campaign name required", cmd)
	}
	name := pos[0]
	if cmd == "campaign-set-concurrency" && len(pos) != 2 {
		return errors.New("campaign-set-concurrency NAME N")
	}
	c, err := dial(*address)
	if err != nil {
		return err
	}
	defer c.Close()
	switch cmd {
	case "campaign-status":
		p, err := control.CampaignProgress(ctx, c, name)
		if err != nil {
			return err
		}
		return writeCampaignProgress(p)
	case "campaign-pause":
		if err := control.PauseCampaign(ctx, c, name); err != nil {
			return err
		}
		fmt.Printf("campaign %s: paused (no organization starts; running ones are paused too)\n", name)
	case "campaign-resume":
		if err := control.ResumeCampaign(ctx, c, name); err != nil {
			return err
		}
		fmt.Printf("campaign %s: resumed\n", name)
	case "campaign-set-concurrency":
		n, err := strconv.Atoi(pos[1])
		if err != nil {
			return fmt.Errorf("campaign-set-concurrency: %q is not a number", pos[1])
		}
		was, err := control.SetCampaignConcurrency(ctx, c, name, n, *operator)
		if err != nil {
			return err
		}
		fmt.Printf("campaign %s: organizations at once %d -> %d\n", name, was, n)
	}
	return nil
}

func writeCampaignProgress(p workflows.CampaignProgress) error {
	paused := ""
	if p.Paused {
		paused = " (paused)"
	}
	fmt.Printf("campaign %s: %s%s, run %d, %d days %s .. %s, at most %d organizations at once\n",
		p.Name, p.Phase, paused, p.Runs, p.Days, p.FirstDay, p.LastDay, p.MaxRunning)
	fmt.Printf("organizations: %d planned, %d started, %d running, %d completed (%d with failures), %d failed, %d rolled back, %d already started\n",
		p.Planned, p.Started, p.Running, p.Completed, p.CompletedWithFailures, p.Failed, p.RolledBack, p.AlreadyStarted)
	fmt.Printf("mailboxes: %d of %d started\n", p.MailboxesStarted, p.MailboxesPlanned)
	if !p.NextStartAt.IsZero() {
		fmt.Printf("next: %s, due %s\n", p.NextOrg, p.NextStartAt.Format(time.RFC3339))
	}
	if len(p.Orgs) == 0 {
		return nil
	}
	fmt.Printf("\nlatest %d organizations:\n", len(p.Orgs))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "org\twave\tmailboxes\tday\tstarted\tfinished\tstatus\treason")
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format("2006-01-02 15:04")
	}
	for _, o := range p.Orgs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", o.Code, o.Wave, o.Mailboxes, o.Day, stamp(o.StartedAt), stamp(o.FinishedAt), o.Status, o.Reason)
	}
	return tw.Flush()
}
