// Package demo runs a whole migration on one machine with nothing
// installed: an embedded Temporal server with its Web UI, an in-process
// worker, in-process source and target IMAP servers seeded with a synthetic
// estate, and local staging.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/devserver"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/profile"
	"github.com/mailshift/mailshift/internal/progress"
	"github.com/mailshift/mailshift/internal/routing"
	"github.com/mailshift/mailshift/internal/secrets"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/workerapp"
	"github.com/mailshift/mailshift/workflows"
)

// Options are the demo's flags.
type Options struct {
	Seed           int64
	Scale          float64
	TemporalAddr   string // frontend, default 127.0.0.1:7233
	UIAddr         string // default 127.0.0.1:8233, "off" to disable
	DBPath         string // "" = in memory
	WorkDir        string // "" = a new temporary directory
	Keep           bool
	Approval       string
	Concurrency    int
	MaxMessageSize int64
	Logger         *slog.Logger
	// Estate replaces the generated estate (Seed and Scale are then unused);
	// the scale test and bench give thousands of tiny mailboxes.
	Estate *estate.Estate
	// Worker tunes the in-process worker (pollers, task slots); Register
	// adds workflows and activities to it before it starts.
	Worker   worker.Options
	Register func(worker.Worker)
	// Metrics, when set, receives the worker's metrics (mailshift's and,
	// through the client, the Temporal SDK's); serving them is the
	// caller's.
	Metrics *metrics.Metrics
	// MetricsAddr, for Run: serve /metrics there ("" or "off": not at all).
	MetricsAddr string
	// PlainPayloads turns payload encryption off. By default the demo
	// encrypts every payload with a key of its own (KeyFile in the work
	// directory) and its Web UI decrypts through a loopback codec endpoint.
	PlainPayloads bool
	// Target is what the in-process target server is: TargetInProcess (""
	// too), a server that keeps what it is given, or TargetExchangeOnline,
	// one that behaves like Exchange Online (see ExchangeTarget).
	Target string
}

// Demo targets (Options.Target).
const (
	TargetInProcess      = "inprocess"
	TargetExchangeOnline = profile.ExchangeOnline
)

// With TargetExchangeOnline the target server throttles every
// ExchangeThrottleEvery-th APPEND, asking for ExchangeThrottleBackoff, as
// Exchange Online does under load (deterministic, so every run shows it).
const (
	ExchangeThrottleEvery   = 150
	ExchangeThrottleBackoff = 300 * time.Millisecond
)

// ExchangeGermanOrg is the index of the organization whose mailboxes are
// German on an Exchange target (its well-known folders are "Gesendete
// Elemente", ...; its policy says target_language: de); the others are
// English.
const ExchangeGermanOrg = 1

// ExchangeTarget says what the demo's Exchange Online-like target is.
const ExchangeTarget = "target: Exchange Online-like (profile exchange-online): it re-renders MIME (other bytes and sizes than appended), keeps no keywords, has no SPECIAL-USE and names its well-known folders in the mailbox's language, takes at most 45 MB and throttles"

// KeyFile is the demo's payload key (base64, mode 0600) in its work
// directory. With a database file the key lives beside it instead
// (<db>.payload.key): the key belongs to the histories it encrypted, and a
// later run with another (temporary) work directory must still read them.
const KeyFile = "payload.key"

// keyPath is where the demo keeps its payload key (see KeyFile).
func keyPath(dbPath, workDir string) string {
	if dbPath != "" && dbPath != ":memory:" {
		return dbPath + "." + KeyFile
	}
	return filepath.Join(workDir, KeyFile)
}

// KeyID is the id of the demo's payload key.
const KeyID = "demo"

// Env is a running demo environment; tests use it directly.
type Env struct {
	Estate         *estate.Estate
	Source, Target *estate.Server
	Server         *devserver.Server
	Client         client.Client
	Worker         worker.Worker
	Activities     *activities.Activities
	Config         *config.Config
	// Codec encrypts the payloads of Client (nil with PlainPayloads).
	Codec *codec.Codec
	// ConfigPath is Config written as YAML (<WorkDir>/mailshift.yaml), so
	// other commands (starter report) can read the same staging store.
	ConfigPath string
	WorkDir    string
	// Notice says what Setup did to a work directory a previous run left.
	Notice string
	Inputs []workflows.OrganizationInput
	// Exchange: the target is Exchange Online-like (Options.Target);
	// Language gives its mailboxes' languages then.
	Exchange bool
	Language func(user string) string
	stops    []func()
}

// Close stops everything in reverse order.
func (e *Env) Close() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
	e.stops = nil
}

// Setup starts servers and the worker and builds the organization inputs.
func Setup(ctx context.Context, o Options) (_ *Env, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Scale <= 0 {
		o.Scale = 1
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 2 << 20
	}
	env := &Env{}
	switch o.Target {
	case "", TargetInProcess:
	case TargetExchangeOnline:
		env.Exchange = true
	default:
		return nil, fmt.Errorf("demo target %q: want %s or %s", o.Target, TargetInProcess, TargetExchangeOnline)
	}
	defer func() {
		if err != nil {
			env.Close()
		}
	}()
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "mailshift-demo-*")
		if err != nil {
			return nil, err
		}
		o.WorkDir = dir
		if !o.Keep {
			env.stops = append(env.stops, func() { os.RemoveAll(dir) })
		}
	}
	env.WorkDir = o.WorkDir
	if env.Notice, err = prepareWorkDir(o.WorkDir); err != nil {
		return nil, err
	}
	spec := estate.DefaultSpec(o.Seed)
	if o.Scale != 1 {
		spec = spec.Scale(o.Scale)
	}
	// Large items straddle the demo target's limit so they are staged.
	spec.LargeItemSize = o.MaxMessageSize + o.MaxMessageSize/2
	if env.Estate = o.Estate; env.Estate == nil {
		env.Estate = estate.Generate(spec)
	}

	if env.Source, err = estate.StartServer(estate.ServerOptions{Name: "source"}); err != nil {
		return nil, fmt.Errorf("source IMAP server: %w", err)
	}
	env.stops = append(env.stops, func() { env.Source.Close() })
	if err := env.Source.Load(env.Estate); err != nil {
		return nil, err
	}
	tgtOpts := estate.ServerOptions{Name: "target"}
	if env.Exchange {
		german := map[string]bool{}
		if len(env.Estate.Orgs) > ExchangeGermanOrg {
			for _, mb := range env.Estate.Orgs[ExchangeGermanOrg].Mailboxes {
				german[mb.User] = true
			}
		}
		env.Language = func(user string) string {
			if german[user] {
				return "de"
			}
			return "en"
		}
		var appends atomic.Int64
		tgtOpts.Exchange, tgtOpts.Language = true, env.Language
		tgtOpts.Throttle = func() (time.Duration, bool) {
			return ExchangeThrottleBackoff, appends.Add(1)%ExchangeThrottleEvery == 0
		}
	}
	if env.Target, err = estate.StartServer(tgtOpts); err != nil {
		return nil, fmt.Errorf("target IMAP server: %w", err)
	}
	env.stops = append(env.stops, func() { env.Target.Close() })
	if err := env.Target.AddUsers(env.Estate); err != nil {
		return nil, err
	}

	// Credentials go through the same secret references a real deployment
	// uses: owner-only password files, resolved inside the activities.
	var pw strings.Builder
	for _, mb := range env.Estate.Mailboxes() {
		fmt.Fprintf(&pw, "%s:%s\n", mb.User, mb.Password)
	}
	for _, side := range []string{"source", "target"} {
		if err := os.WriteFile(filepath.Join(o.WorkDir, side+".passwd"), []byte(pw.String()), 0o600); err != nil {
			return nil, err
		}
	}
	tgtEndpoint := config.Endpoint{URL: env.Target.URL(), Auth: config.AuthPassword, Passwords: secrets.Ref("file:" + filepath.Join(o.WorkDir, "target.passwd")), MaxConnections: 16}
	if env.Exchange {
		tgtEndpoint.Profile = profile.ExchangeOnline
	}
	cfg := &config.Config{
		Endpoints: map[string]config.Endpoint{
			"source": {URL: env.Source.URL(), Auth: config.AuthPassword, Passwords: secrets.Ref("file:" + filepath.Join(o.WorkDir, "source.passwd")), MaxConnections: 16},
			"target": tgtEndpoint,
		},
		Staging: config.Staging{Kind: "local", Path: filepath.Join(o.WorkDir, "staging")},
		Routing: config.Routing{Kind: "file", Path: filepath.Join(o.WorkDir, "transport"), Nexthop: "smtp:[cloud-target.example]"},
		Limits:  config.Limits{MaxMessageSize: config.ByteSize(o.MaxMessageSize)},
	}
	if !o.PlainPayloads {
		ref, err := ensureKey(keyPath(o.DBPath, o.WorkDir))
		if err != nil {
			return nil, err
		}
		cfg.PayloadEncryption = &config.PayloadEncryption{ActiveKey: KeyID, Keys: []config.EncryptionKey{{ID: KeyID, Key: ref}}}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	copts := client.Options{Logger: sdklog.NewStructuredLogger(o.Logger), MetricsHandler: o.Metrics.SDKHandler()}
	if env.Codec, err = workerapp.Codec(cfg, &copts); err != nil {
		return nil, err
	}
	env.Config = cfg
	if env.ConfigPath, err = writeConfig(o.WorkDir, cfg); err != nil {
		return nil, err
	}
	if env.Activities, err = workerapp.Build(cfg, o.Logger); err != nil {
		return nil, err
	}
	if o.Metrics != nil {
		workerapp.UseMetrics(env.Activities, o.Metrics)
	}
	env.stops = append(env.stops, func() { activities.CloseIdle(env.Activities) }) // last: after the worker

	if env.Server, err = devserver.Start(ctx, devserver.Options{
		FrontendAddr: o.TemporalAddr, UIAddr: o.UIAddr, DBPath: o.DBPath,
		SearchAttributes: workflows.SearchAttributeTypes(), Logger: o.Logger, Codec: env.Codec,
	}); err != nil {
		return nil, err
	}
	env.stops = append(env.stops, func() { env.Server.Stop() })
	if env.Client, err = env.Server.Client(ctx, copts); err != nil {
		return nil, err
	}
	env.stops = append(env.stops, env.Client.Close)
	env.Worker = worker.New(env.Client, workflows.TaskQueue, workerapp.WorkerOptions(o.Worker))
	workerapp.Register(env.Worker, env.Activities)
	if o.Register != nil {
		o.Register(env.Worker)
	}
	if err := env.Worker.Start(); err != nil {
		return nil, err
	}
	env.stops = append(env.stops, env.Worker.Stop)

	for oi, org := range env.Estate.Orgs {
		in := workflows.OrganizationInput{
			Code: org.Code, Name: org.Name, Wave: "demo",
			SourceEndpoint: "source", TargetEndpoint: "target",
			Concurrency: o.Concurrency, Approval: o.Approval,
		}
		if env.Exchange && oi == ExchangeGermanOrg {
			in.Policy.TargetLanguage = "de"
		}
		for _, mb := range org.Mailboxes {
			in.Mailboxes = append(in.Mailboxes, workflows.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
		}
		env.Inputs = append(env.Inputs, in)
	}
	return env, nil
}

// Migrate starts every organization, draws progress until all are done and
// returns their final progress.
func (e *Env) Migrate(ctx context.Context, out io.Writer) ([]workflows.Progress, error) {
	var codes []string
	for _, in := range e.Inputs {
		// Staged as `starter migrate --config` stages it, so the Web UI
		// opens an organization on its summary, not on its address list.
		ref, err := activities.StageInventory(ctx, e.Activities.Staging, in.Code, in.Mailboxes)
		if err != nil {
			return nil, fmt.Errorf("stage the mailbox list of %s: %w", in.Code, err)
		}
		in.Mailboxes, in.Inventory = nil, &ref
		if _, err := control.Start(ctx, e.Client, workflows.TaskQueue, in); err != nil {
			return nil, fmt.Errorf("start %s: %w", in.Code, err)
		}
		codes = append(codes, in.Code)
	}
	var draw func([]workflows.Progress)
	if out != nil {
		board := progress.NewBoard(out)
		board.Address = e.Server.FrontendAddr()
		draw = func(ps []workflows.Progress) { board.Draw(ps, time.Now()) }
	}
	return control.Watch(ctx, e.Client, codes, 250*time.Millisecond, draw)
}

// Verify compares the source and target servers independently of the
// migration's own validation: on an Exchange Online-like target by
// content as read (the MIME is re-rendered) and flags without keywords,
// with the special-use folders in the mailbox's language.
func (e *Env) Verify(ctx context.Context) (estate.Report, error) {
	opts := estate.VerifyOptions{MaxMessageSize: int64(e.Config.Limits.MaxMessageSize)}
	if e.Exchange {
		opts.Rerendered = true
		opts.MapFolderFor = func(mb *estate.Mailbox) func(string) string {
			return estate.ExchangeFolderMap(mb, e.Language(mb.User))
		}
	}
	return estate.VerifyEstate(ctx, e.Estate, e.Source.Addr(), e.Target.Addr(), opts)
}

// KeywordsDropped counts, per organization, the messages copied without
// their keywords (rows of its reports/<org>/keywords.csv in the staging
// store; an organization without the file has none), and returns the
// files' names.
func (e *Env) KeywordsDropped(ctx context.Context) (n map[string]int, files []string, err error) {
	n = map[string]int{}
	for _, in := range e.Inputs {
		name := activities.KeywordsReportName(in.Code)
		rc, _, err := e.Activities.Staging.Get(ctx, name)
		if errors.Is(err, staging.ErrNotFound) {
			continue // not written: nothing dropped
		}
		if err != nil {
			return n, files, fmt.Errorf("%s: %w", name, err)
		}
		rows, err := csv.NewReader(rc).ReadAll()
		rc.Close()
		if err != nil {
			return n, files, fmt.Errorf("%s: %w", name, err)
		}
		n[in.Code] = max(len(rows)-1, 0) // less the header
		files = append(files, name)
	}
	return n, files, nil
}

// Run is `starter demo`: it returns nil only if every organization validated.
func Run(ctx context.Context, o Options, out io.Writer) error {
	start := time.Now()
	fmt.Fprintln(out, "mailshift demo: starting embedded Temporal server, Web UI, worker and IMAP servers…")
	if o.MetricsAddr != "" && o.MetricsAddr != "off" && o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	// A temporary work directory without --keep is removed when the demo
	// ends; any other outlives it, and so does its session record.
	workDirGoes := o.WorkDir == "" && !o.Keep
	env, err := Setup(ctx, o)
	if err != nil {
		return err
	}
	defer env.Close()
	if err := env.saveSession(workDirGoes); err != nil {
		// Only the no-configuration report depends on it: say so and go on.
		fmt.Fprintf(out, "(starter report will need --config %s: %v)\n", env.ConfigPath, err)
	}
	msrv, err := metrics.Serve(o.MetricsAddr, o.Metrics)
	if err != nil {
		return fmt.Errorf("metrics address: %w", err)
	}
	if msrv != nil {
		defer msrv.Close()
		fmt.Fprintf(out, "Prometheus metrics: http://%s/metrics\n", msrv.Addr())
	}
	if env.Notice != "" {
		fmt.Fprintln(out, env.Notice)
	}
	mbs, msgs, bytes := env.Estate.Totals()
	fmt.Fprintf(out, "estate: %d organizations, %d mailboxes, %d messages, %.1f MB (seed %d); target limit %.1f MB\n",
		len(env.Estate.Orgs), mbs, msgs, float64(bytes)/1e6, o.Seed, float64(env.Config.Limits.MaxMessageSize)/1e6)
	fmt.Fprintf(out, "Temporal %s  Web UI %s  staging %s\n", env.Server.FrontendAddr(), orOff(env.Server.UIURL()), env.Activities.Staging.Describe())
	if env.Codec.Encrypts() {
		fmt.Fprintf(out, "payloads encrypted (AES-256-GCM, key %s); the Web UI decrypts them through %s\n",
			keyPath(o.DBPath, env.WorkDir), orOff(env.Server.CodecURL()))
	}
	if env.Exchange {
		var de []string
		for _, in := range env.Inputs {
			if in.Policy.TargetLanguage == "de" {
				de = append(de, in.Code)
			}
		}
		fmt.Fprintln(out, ExchangeTarget)
		fmt.Fprintf(out, "  German mailboxes (target_language: de): %s; others English. It throttles every %dth APPEND (backoff %s).\n",
			orNone(strings.Join(de, ", ")), ExchangeThrottleEvery, ExchangeThrottleBackoff)
	}
	if o.Approval == workflows.ApprovalManual {
		fmt.Fprintf(out, "approval is manual: approve each organization from another terminal with\n  go run ./%s\n", progress.ApproveCommand("<ORG>", progress.Operator(), env.Server.FrontendAddr()))
	}
	fmt.Fprintln(out)
	ps, err := env.Migrate(ctx, out)
	if err != nil {
		return err
	}
	progress.Summary(out, ps)
	if env.Exchange {
		env.printKeywords(ctx, out)
	}
	rep, verr := env.Verify(ctx)
	how := "byte for byte, flags, dates"
	if env.Exchange {
		how = "by content as read, the target having re-rendered the MIME; flags without keywords; dates; special-use folders in the mailbox's language"
	}
	switch {
	case verr != nil:
		fmt.Fprintf(out, "\nindependent check: %v\n", verr)
	default:
		fmt.Fprintf(out, "\nindependent check (source vs target, %s): %d folders, %d messages, %.1f MB, %d expected absent (over the limit, staged), %d problems\n",
			how, rep.Folders, rep.Messages, float64(rep.Bytes)/1e6, rep.ExpectedMissing, len(rep.Problems))
		for i, p := range rep.Problems {
			if i == 20 {
				fmt.Fprintf(out, "  … %d more\n", len(rep.Problems)-20)
				break
			}
			fmt.Fprintln(out, "  "+p)
		}
	}
	fmt.Fprintf(out, "demo finished in %s\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Fprintln(out, env.reportHint(o.TemporalAddr, workDirGoes))
	failed := 0
	for _, p := range ps {
		if !p.Validated() {
			failed++
		}
	}
	if o.Keep {
		fmt.Fprintf(out, "\n--keep: Temporal at %s, Web UI at %s — press Ctrl-C to stop.\n", env.Server.FrontendAddr(), orOff(env.Server.UIURL()))
		fmt.Fprintf(out, "  temporal workflow list --address %s --query 'MigrationPhase=\"Completed\"'\n", env.Server.FrontendAddr())
		<-ctx.Done()
	}
	if failed > 0 || verr != nil || !rep.OK() {
		return errors.New("not every organization validated")
	}
	return nil
}

// printKeywords says how many messages went to the Exchange-like target
// without their keywords, and where they are listed.
func (e *Env) printKeywords(ctx context.Context, out io.Writer) {
	n, files, err := e.KeywordsDropped(ctx)
	if err != nil {
		fmt.Fprintf(out, "\nkeywords: the target keeps none; reading reports/<org>/keywords.csv: %v\n", err)
		return
	}
	total := 0
	var per []string
	for _, in := range e.Inputs {
		if n[in.Code] > 0 {
			total += n[in.Code]
			per = append(per, fmt.Sprintf("%s %d", in.Code, n[in.Code]))
		}
	}
	fmt.Fprintf(out, "\nkeywords: the target keeps none; %d messages were copied without theirs", total)
	if total > 0 {
		fmt.Fprintf(out, " (%s), each listed with them in the staging store: %s", strings.Join(per, ", "), strings.Join(files, ", "))
	}
	fmt.Fprintln(out)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func orOff(s string) string {
	if s == "" {
		return "(off)"
	}
	return s
}

// ensureKey returns a file: reference to the payload key at path, creating
// it (32 random bytes, base64, owner-only) when it is missing.
func ensureKey(path string) (secrets.Ref, error) {
	ref := secrets.Ref("file:" + path)
	if _, err := os.Stat(path); err == nil {
		return ref, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("demo payload key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("demo payload key: %w", err)
	}
	key := make([]byte, config.EncryptionKeySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("demo payload key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("demo payload key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("demo payload key: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("demo payload key: %w", err)
	}
	return ref, nil
}

// prepareWorkDir creates the work directory if it is missing, and clears
// what a previous demo run left in it: its staging store (ledgers, staged
// items, reports) and its transport map. The demo's mail servers live in
// memory and start afresh from the seed, so a ledger saying the mail was
// copied would be false; kept, it made every organization roll back.
func prepareWorkDir(dir string) (notice string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("work directory: %w", err)
	}
	var cleared []string
	for _, name := range []string{"staging", "transport", "transport" + routing.PrevSuffix} {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return "", fmt.Errorf("work directory: clearing a previous run's %s: %w", name, err)
		}
		cleared = append(cleared, name)
	}
	if len(cleared) == 0 {
		return "", nil
	}
	return fmt.Sprintf("work directory %s held a previous demo run (%s): cleared, because the demo's mail servers start empty each run", dir, strings.Join(cleared, ", ")), nil
}
