// Command starter drives mailshift: a self-contained demo, and migrations,
// status and operator controls against a Temporal cluster.
//
//	starter demo [--seed N] [--scale F] [--keep] [--approval manual] [--target exchange-online]
//	starter serve --config mailshift.yaml [--db FILE] [--address HOST:PORT] [--ui HOST:PORT]
//	starter codec-server --config mailshift.yaml [--listen 127.0.0.1:8081] [--token-file FILE] [--cors-origin URL]
//	starter migrate --inventory inventory.csv [--source NAME] [--target NAME]
//	starter status [ORG...] [--phase P] [--wave W] [--watch[=N]] [--output text|json]
//	starter approve ORG | approve-skipped ORG | override-readiness ORG
//	starter pause ORG | resume ORG | set-concurrency ORG N | rollback ORG
//	starter skip-mailbox ORG ADDRESS | retry-mailbox ORG ADDRESS
//	starter plan --inventory inventory.csv [--start DATE] [--weekday-capacity N] [--weekend-capacity N] [--tz ZONE] [--holidays DATES] [--window SPEC]
//	starter campaign --inventory inventory.csv --name NAME [plan flags] [--source NAME] [--target NAME]
//	starter campaign-status NAME | campaign-pause NAME | campaign-resume NAME | campaign-set-concurrency NAME N
//
// The Temporal client is configured the standard way (TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TLS and API key variables, or a TOML profile);
// --address overrides the address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdklog "go.temporal.io/sdk/log"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/inventory"
	"github.com/mailshift/mailshift/internal/progress"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
	"github.com/mailshift/mailshift/workflows"
)

const usage = `usage: starter <command> [flags]

commands:
  demo              run a whole migration on this machine (embedded Temporal, Web UI, IMAP servers)
  serve             real migrations on this machine: embedded Temporal on a SQLite file, Web UI and a
                    worker with your configuration, until Ctrl-C (--config, --db, --address, --ui)
  codec-server      decrypt payloads for the Web UI and the temporal CLI (Temporal's remote codec protocol):
                    --config FILE [--listen 127.0.0.1:8081] [--token-file FILE] [--cors-origin URL]
  migrate           start one Organization workflow per organization of an inventory and watch them
  status [ORG...]   every organization (running and finished) and campaign: [--phase P] [--wave W]
                    [--campaigns=false] [--watch[=N]] [--output text|json]
  approve ORG       approve an organization's cutover (update approve-cutover)
  approve-skipped ORG
                    accept the skipped items of an organization scored Investigate (update approve-skipped-items)
  override-readiness ORG --reason WHY
                    let an organization below its readiness threshold go on (update override-readiness)
  rollback ORG      revert the routing switch and end the organization as RolledBack (update rollback)
  pause ORG         stop starting mailboxes; running ones stop at a checkpoint (signal pause)
  resume ORG        resume (signal resume)
  set-concurrency ORG N
                    mailboxes at once (update set-concurrency)
  skip-mailbox ORG ADDRESS
                    take a mailbox out of the migration (update skip-mailbox)
  retry-mailbox ORG ADDRESS
                    put a failed or skipped mailbox back (update retry-mailbox)
  plan              check an inventory and print the campaign plan: organizations per day under a capacity calendar
  campaign          start a Campaign workflow that starts each organization on its planned day
  campaign-status NAME
                    show a campaign's progress (query progress)
  campaign-pause NAME | campaign-resume NAME
                    stop starting organizations and pause the running ones; resume both (signals pause, resume)
  campaign-set-concurrency NAME N
                    organizations at once (update set-concurrency)
  report ORG [--config FILE] [--format csv|json|html] [--skipped] [--out FILE] [--inventory FILE]
                    per-mailbox report (state, passes, messages, bytes, skipped items) from the staging store;
                    html: one page with charts, skipped items, score and failures. No --config beside a demo or serve
  report --campaign NAME --format html --out FILE
                    a campaign's organizations on one page (from Temporal)
  release-mailboxes ORG
                    free the target mailboxes a terminated organization still holds (one writer per target mailbox)
  mailbox-id TARGET_USER... [--target ENDPOINT]
                    the workflow id of a target mailbox's Mailbox workflows (mailbox/<key>: ids name no one)
run 'starter <command> -h' for its flags`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "demo":
		return runDemo(ctx, args)
	case "serve":
		return runServe(ctx, args)
	case "codec-server":
		return runCodecServer(ctx, args)
	case "migrate":
		return runMigrate(ctx, args)
	case "status":
		return runStatus(ctx, args)
	case "approve", "approve-skipped", "override-readiness", "rollback", "pause", "resume", "set-concurrency", "skip-mailbox", "retry-mailbox":
		return runControl(ctx, cmd, args)
	case "report":
		return runReport(ctx, args)
	case "release-mailboxes":
		return runReleaseMailboxes(ctx, args)
	case "mailbox-id":
		return runMailboxID(os.Stdout, args)
	case "plan":
		return runPlan(ctx, args)
	case "campaign":
		return runCampaign(ctx, args)
	case "campaign-status", "campaign-pause", "campaign-resume", "campaign-set-concurrency":
		return runCampaignControl(ctx, cmd, args)
	case "-h", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	fmt.Fprintln(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	o := demo.Options{}
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the synthetic estate (same seed, same estate)")
	fs.Float64Var(&o.Scale, "scale", 1, "estate size factor (1 = 3 organizations, 33 mailboxes, ~3,100 messages)")
	fs.StringVar(&o.TemporalAddr, "temporal-addr", "127.0.0.1:7233", "embedded Temporal frontend address")
	fs.StringVar(&o.UIAddr, "ui-addr", "127.0.0.1:8233", `embedded Web UI address ("off" to disable)`)
	fs.StringVar(&o.MetricsAddr, "metrics-addr", "off", `serve the worker's Prometheus metrics at /metrics on this address (e.g. 127.0.0.1:9464; "off" to disable)`)
	fs.StringVar(&o.DBPath, "db", "", "SQLite file for the embedded server (default: in memory)")
	fs.StringVar(&o.WorkDir, "workdir", "", "directory for staging, ledgers, password files and the transport map (default: temporary)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the server and Web UI running after the migration until Ctrl-C")
	fs.StringVar(&o.Approval, "approval", workflows.ApprovalAuto, "cutover approval: auto or manual")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "mailboxes per organization at once")
	size := fs.String("max-message-size", "2MiB", "target's maximum message size; larger items are staged")
	fs.BoolVar(&o.PlainPayloads, "plain-payloads", false, "store payloads in Temporal in clear (by default the demo encrypts them with a key in its work directory)")
	fs.StringVar(&o.Target, "target", demo.TargetInProcess, `what the in-process target server is: "inprocess" (keeps what it is given) or "exchange-online" (behaves like Exchange Online: re-rendered MIME, no keywords, localised well-known folders with one German organization, throttling; its endpoint gets profile: exchange-online and the check compares content, not bytes)`)
	verbose := fs.Bool("v", false, "log worker activity to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	n, err := config.ParseByteSize(*size)
	if err != nil {
		return fmt.Errorf("--max-message-size: %w", err)
	}
	o.MaxMessageSize = n
	if *verbose {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return demo.Run(ctx, o, os.Stdout)
}

// dial connects with envconfig's settings, --address overriding the address.
func dial(address string) (client.Client, error) {
	c, _, err := dialTarget(address)
	return c, err
}

// dialTarget is dial that also tells where it connected: the address and
// namespace a worker must use (the task queue is the caller's to fill in).
func dialTarget(address string) (client.Client, control.WorkerTarget, error) {
	return dialTargetWith(address, "")
}

// dialTargetWith is dialTarget with the worker configuration whose payload
// keys the client uses (see clientCodec; "" finds it the default way).
func dialTargetWith(address, cfgPath string) (client.Client, control.WorkerTarget, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return nil, control.WorkerTarget{}, fmt.Errorf("temporal client settings: %w", err)
	}
	if address != "" {
		opts.HostPort = address
	}
	t := control.WorkerTarget{Address: orDefault(opts.HostPort, client.DefaultHostPort), Namespace: orDefault(opts.Namespace, client.DefaultNamespace)}
	opts.HostPort = t.Address
	if err := withCodec(&opts, cfgPath); err != nil {
		return nil, t, err
	}
	opts.Logger = sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	c, err := client.Dial(opts)
	if err != nil {
		return nil, t, fmt.Errorf("connect to Temporal at %s: %w", t.Address, err)
	}
	return c, t, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	invPath := fs.String("inventory", "", "inventory CSV (organization,mailbox,source_user,target_user[,wave,organization_name])")
	src := fs.String("source", "source", "source endpoint name in the worker's config")
	tgt := fs.String("target", "target", "target endpoint name in the worker's config")
	address := fs.String("address", "", "Temporal address (default: TEMPORAL_ADDRESS or the client profile)")
	taskQueue := fs.String("task-queue", workflows.TaskQueue, "worker task queue")
	conc := fs.Int("concurrency", workflows.DefaultConcurrency, "mailboxes per organization at once")
	approval := fs.String("approval", workflows.ApprovalAuto, "cutover approval: auto or manual")
	threshold := fs.Float64("readiness-threshold", 1, "share of ready mailboxes needed to proceed (0..1]")
	size := fs.String("max-message-size", "", "target's maximum message size (default: the worker's)")
	wait := fs.Bool("wait", true, "watch progress until every organization finishes")
	only := fs.String("org", "", "start only this organization")
	archive := fs.Bool("archive", false, "export every mailbox to the staging store before cutover")
	retain := fs.Int("archive-retain-days", 90, "how long archives are kept (recorded on each object)")
	direct := fs.String("direct-max-bytes", "", "mailboxes readiness measures at or below this size (e.g. 5MB) skip pre-stage: one pass after the routing switch moves them (default: pre-stage all)")
	validation := fs.String("validation", "", "validation level: metadata (FETCH metadata on both sides, no body read), sample (also --validation-sample target bodies per folder) or full (every body on both sides); default: the worker's (validation.level, metadata)")
	targetLanguage := fs.String("target-language", "", "language of the target mailboxes, which names Exchange Online's well-known folders: en, de, fr, es, nl (default en)")
	targetQuota := fs.String("target-quota", "", "the target mailboxes' quota (e.g. 50GB), checked by readiness where the target does not report it over IMAP (Exchange Online)")
	validationSample := fs.Int("validation-sample", 0, "target bodies per folder that --validation sample reads (default: the worker's validation.sample, 10)")
	importStaged := fs.Bool("import-staged", false, "append staged large items that fit --max-message-size to the target during cutover")
	delta := fs.Duration("delta-interval", 0, "repeat delta passes this often while waiting for the cutover (e.g. 6h; 0: none)")
	window := fs.String("cutover-window", "", `cut over only inside this window, e.g. "Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London"`)
	inlineMax := fs.Int("inline-max", defaultInlineMax, "with no --config, the largest organization whose mailbox list may travel in its workflow input; with one, every list is staged in the worker's staging store")
	cfgPath := fs.String("config", os.Getenv("MAILSHIFT_CONFIG"), "the worker's configuration, whose staging store holds the mailbox lists (default: $MAILSHIFT_CONFIG, else that of the starter demo or serve at --address)")
	operator := fs.String("operator", os.Getenv("USER"), "who changes a running organization (set-concurrency, add-mailboxes) when migrate finds it running; default $USER")
	workerWait := fs.Duration("worker-wait", control.WorkerWait, "warn when no worker polls the task queue this long after the start, and every minute after (0: don't check)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *invPath == "" {
		return errors.New("migrate: --inventory is required")
	}
	inv, err := inventory.Load(*invPath)
	if err != nil {
		return err
	}
	var directMax int64
	if *direct != "" {
		if directMax, err = config.ParseByteSize(*direct); err != nil {
			return fmt.Errorf("--direct-max-bytes: %w", err)
		}
	}
	var maxSize int64
	if *size != "" {
		if maxSize, err = config.ParseByteSize(*size); err != nil {
			return fmt.Errorf("--max-message-size: %w", err)
		}
	}
	var quota int64
	if *targetQuota != "" {
		if quota, err = config.ParseByteSize(*targetQuota); err != nil {
			return fmt.Errorf("--target-quota: %w", err)
		}
	}
	if *validation != "" {
		if _, err := transfer.ParseLevel(*validation); err != nil {
			return fmt.Errorf("--validation: %w", err)
		}
	}
	if *validationSample < 0 {
		return fmt.Errorf("--validation-sample: %d is negative", *validationSample)
	}
	if *cfgPath == "" {
		if s, _ := lookupSession(defaultHostPort(*address)); s != nil {
			*cfgPath = s.Config
			fmt.Fprintf(os.Stderr, "migrate: using the worker configuration of the starter %s at %s: %s\n", s.Kind, s.Address, s.Config)
		}
	}
	if *cfgPath != "" {
		// Without this, a mistyped endpoint starts every organization and
		// fails each of its mailboxes in the worker.
		if err := checkEndpoints(*cfgPath, *src, *tgt); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	var inputs []workflows.OrganizationInput
	specsByOrg := map[string][]workflows.MailboxSpec{}
	var store staging.Store
	for _, o := range inv.Orgs {
		if *only != "" && o.Code != *only {
			continue
		}
		in := workflows.OrganizationInput{
			Code: o.Code, Name: o.Name, Wave: o.Wave, SourceEndpoint: *src, TargetEndpoint: *tgt,
			Concurrency: *conc, Approval: *approval, ReadinessThreshold: *threshold,
			Archive: *archive, ArchiveRetainDays: *retain, ImportStaged: *importStaged,
			DeltaInterval: *delta, CutoverWindow: *window, DirectMaxBytes: directMax,
		}
		in.Policy.MaxMessageSize = maxSize
		in.Policy.Validation, in.Policy.ValidationSample = strings.ToLower(*validation), *validationSample
		in.Policy.TargetLanguage, in.Policy.TargetQuotaBytes = strings.ToLower(*targetLanguage), quota
		in.Mailboxes = specsOf(o)
		specsByOrg[o.Code] = in.Mailboxes
		if err := workflows.ValidateOrganizationInput(in); err != nil {
			return err
		}
		// With a staging store known, every list is staged: the workflow
		// input (the first thing the Web UI shows of an organization) then
		// holds a summary, not a directory of addresses. Without one, only
		// lists within --inline-max may travel in the input, which is
		// limited to a few MB.
		if *cfgPath != "" || len(in.Mailboxes) > *inlineMax {
			if store == nil {
				if store, err = openStaging(ctx, *cfgPath); err != nil {
					return fmt.Errorf("migrate: organization %s has %d mailboxes, over --inline-max %d, so its list must be staged: %w", o.Code, len(in.Mailboxes), *inlineMax, err)
				}
			}
			ref, err := activities.StageInventory(ctx, store, o.Code, in.Mailboxes)
			if err != nil {
				return err
			}
			in.Mailboxes, in.Inventory = nil, &ref
		}
		inputs = append(inputs, in)
	}
	if len(inputs) == 0 {
		return fmt.Errorf("no organization %q in %s", *only, *invPath)
	}
	c, target, err := dialTargetWith(*address, *cfgPath)
	if err != nil {
		return err
	}
	defer c.Close()
	target.TaskQueue, target.Config = *taskQueue, *cfgPath
	var codes []string
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	att := &attachment{c: c, store: store, operator: *operator, given: given, out: os.Stdout}
	// The running input is read from history: with the client's keys.
	pc, err := clientCodec(*cfgPath, target.Address)
	if err != nil {
		return err
	}
	for _, in := range inputs {
		// An organization that runs already is attached to, never started
		// again: its workflow id is the organization's.
		running, err := control.RunningOrg(ctx, c, in.Code, pc.DataConverter())
		if err != nil {
			return fmt.Errorf("migrate %s: %w", in.Code, err)
		}
		if running != nil {
			if err := att.attach(ctx, running, in, specsByOrg[in.Code]); err != nil {
				return err
			}
			codes = append(codes, in.Code)
			continue
		}
		run, err := control.Start(ctx, c, *taskQueue, in)
		if err != nil {
			return fmt.Errorf("start %s: %w", in.Code, err)
		}
		fmt.Printf("started %s (%d mailboxes): workflow %s run %s\n", in.Code, in.MailboxCount(), run.GetID(), run.GetRunID())
		codes = append(codes, in.Code)
	}
	refusedErr := func(err error) error {
		if err == nil && att.refused > 0 {
			return fmt.Errorf("migrate: %d change(s) to running organizations refused (see above)", att.refused)
		}
		return err
	}
	if !*wait {
		checkWorker(ctx, c, target, *workerWait, "the organizations are started and run once one polls")
		return refusedErr(nil)
	}
	board := newSyncBoard(*address)
	if *workerWait > 0 {
		// The check runs beside the watch and ends with it.
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		defer func() { cancel(); <-done }()
		go func() {
			defer close(done)
			if err := control.WatchWorker(wctx, c, target, *workerWait, control.WorkerHintEvery, board.note); err != nil && wctx.Err() == nil {
				board.note(fmt.Sprintf("cannot tell whether a worker polls task queue %q: %v", target.TaskQueue, err))
			}
		}()
	}
	return refusedErr(watchAndSummarise(ctx, c, codes, board))
}

// checkWorker is the worker check of a command that does not wait: it
// looks for up to within and, if no worker polls, prints the hint and then
// what happens next.
func checkWorker(ctx context.Context, c client.Client, t control.WorkerTarget, within time.Duration, next string) {
	if within <= 0 {
		return
	}
	start := time.Now()
	p, err := control.WaitForWorker(ctx, c, t.TaskQueue, within)
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, control.ErrNoWorker):
		fmt.Fprintf(os.Stderr, "starter: %s\n  %s\n", t.NoWorkerHint(time.Since(start), p), next)
	default:
		fmt.Fprintf(os.Stderr, "starter: cannot tell whether a worker polls task queue %q: %v\n", t.TaskQueue, err)
	}
}

// syncBoard is a progress board that notes from another goroutine (the
// worker check) can interrupt: a note goes to stderr and the board starts
// again below it, rather than drawing over it.
type syncBoard struct {
	mu    sync.Mutex
	board *progress.Board
}

// newSyncBoard draws on stdout; address (the --address flag, if any) goes
// into its hints.
func newSyncBoard(address string) *syncBoard {
	b := progress.NewBoard(os.Stdout)
	b.Address = address
	return &syncBoard{board: b}
}

func (b *syncBoard) draw(ps []workflows.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.board.Draw(ps, time.Now())
}

func (b *syncBoard) note(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(os.Stderr, "starter: %s\n", msg)
	b.board.Break()
}

func watchAndSummarise(ctx context.Context, c client.Client, codes []string, board *syncBoard) error {
	ps, err := control.Watch(ctx, c, codes, time.Second, board.draw)
	if err != nil {
		return err
	}
	progress.Summary(os.Stdout, ps)
	bad := 0
	for _, p := range ps {
		if !p.Validated() {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d organizations did not validate", bad, len(ps))
	}
	return nil
}

func runControl(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	address := fs.String("address", "", "Temporal address")
	approver := fs.String("approver", progress.Operator(), "who does it (recorded in history)")
	reason := fs.String("reason", "", "why (recorded in history)")
	pos, err := parseAnyOrder(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return fmt.Errorf("%s: organization code required", cmd)
	}
	org := pos[0]
	if err := requireDecision(cmd, *approver, *reason); err != nil {
		return err
	}
	c, err := dial(*address)
	if err != nil {
		return err
	}
	defer c.Close()
	switch cmd {
	case "approve", "approve-skipped", "override-readiness", "rollback":
		do := map[string]struct {
			f    func(context.Context, client.Client, string, string, string) (workflows.Approval, error)
			what string
		}{
			"approve":            {control.ApproveCutover, "cutover approved"},
			"approve-skipped":    {control.ApproveSkippedItems, "skipped items approved"},
			"override-readiness": {control.OverrideReadiness, "readiness overridden"},
			"rollback":           {control.Rollback, "rollback requested (routing reverts, the organization ends as RolledBack)"},
		}[cmd]
		a, err := do.f(ctx, c, org, *approver, *reason)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s by %s at %s\n", org, do.what, a.Approver, a.At.Format(time.RFC3339))
	case "pause":
		if err := control.Pause(ctx, c, org); err != nil {
			return err
		}
		fmt.Printf("%s: paused (running mailboxes stop at their next checkpoint and start again on resume)\n", org)
	case "resume":
		if err := control.Resume(ctx, c, org); err != nil {
			return err
		}
		fmt.Printf("%s: resumed\n", org)
	case "set-concurrency":
		if len(pos) != 2 {
			return errors.New("set-concurrency ORG N")
		}
		n, err := strconv.Atoi(pos[1])
		if err != nil {
			return fmt.Errorf("set-concurrency: %q is not a number", pos[1])
		}
		was, err := control.SetConcurrency(ctx, c, org, n, *approver)
		if err != nil {
			return err
		}
		fmt.Printf("%s: concurrency %d -> %d\n", org, was, n)
	case "skip-mailbox", "retry-mailbox":
		if len(pos) != 2 {
			return fmt.Errorf("%s ORG ADDRESS", cmd)
		}
		f := control.SkipMailbox
		if cmd == "retry-mailbox" {
			f = control.RetryMailbox
		}
		r, err := f(ctx, c, org, pos[1], *approver, *reason)
		if err != nil {
			return err
		}
		fmt.Printf("%s: mailbox %s was %s, now %s\n", org, r.Address, r.Was, r.Now)
	}
	return nil
}

// requireDecision checks, before anything is dialled, what the workflow
// would refuse anyway: a control that records a person needs one, and an
// approval or rollback needs its reason.
func requireDecision(cmd, who, reason string) error {
	if cmd == "pause" || cmd == "resume" {
		return nil // signals: they record no one
	}
	if strings.TrimSpace(who) == "" {
		return fmt.Errorf("%s: --approver is required (who does it, for the audit trail)", cmd)
	}
	switch cmd {
	case "approve", "approve-skipped", "override-readiness", "rollback":
		if strings.TrimSpace(reason) == "" {
			return fmt.Errorf("%s: --reason is required (the change ticket, or why)", cmd)
		}
	}
	return nil
}

// checkEndpoints refuses --source or --target names that the worker
// configuration at cfgPath does not define.
func checkEndpoints(cfgPath string, names ...string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, ok := cfg.Endpoints[n]; !ok {
			return fmt.Errorf("endpoint %q is not in %s (its endpoints: %s): check --source and --target", n, cfgPath, strings.Join(cfg.EndpointNames(), ", "))
		}
	}
	return nil
}
