// Package serve is `starter serve`: real migrations on one machine with no
// Temporal installed. One process runs the embedded Temporal server on a
// SQLite file, its Web UI and a worker with the user's configuration, on
// the address the starter dials by default, so `starter migrate`, `status`
// and every control work against it unchanged.
//
// The database file is the state of every migration: stopping the process
// (Ctrl-C, SIGTERM, or a crash or SIGKILL) and starting it again on the same
// file carries on where it stopped. It is never wiped.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/devserver"
	"github.com/mailshift/mailshift/internal/embedded"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/workerapp"
	"github.com/mailshift/mailshift/workflows"
)

// DBFileName is the database's name in the state directory by default.
const DBFileName = "serve.db"

// Options are `starter serve`'s flags.
type Options struct {
	// Address is the Temporal frontend, default devserver.DefaultFrontendAddr
	// (what the starter dials when TEMPORAL_ADDRESS is unset).
	Address string
	// UIAddr is the Web UI, default devserver.DefaultUIAddr; "off" disables it.
	UIAddr string
	// DBPath is the SQLite file, default DefaultDBPath(). It is created
	// (with its directory) when missing and reused as it is otherwise.
	DBPath string
	// ConfigPath is the worker configuration (YAML); required.
	ConfigPath string
	// MetricsAddr serves the worker's Prometheus metrics at /metrics; "" or
	// "off" disables it.
	MetricsAddr string
	// TaskQueue, when set, replaces the configuration's task_queue.
	TaskQueue string
	// MaxConcurrentActivities, when > 0, bounds the worker's activities.
	MaxConcurrentActivities int
	// Logger receives the worker's and the server's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultDBPath is serve.db in mailshift's state directory
// ($XDG_STATE_HOME/mailshift, default ~/.local/state/mailshift), where the
// embedded session records live too.
func DefaultDBPath() (string, error) {
	dir, err := embedded.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, DBFileName), nil
}

// Run serves until ctx ends, then stops the worker, then the server, and
// returns nil. It returns an error only when something could not start.
func Run(ctx context.Context, o Options, out io.Writer) (err error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.Address == "" {
		o.Address = devserver.DefaultFrontendAddr
	}
	if o.UIAddr == "" {
		o.UIAddr = devserver.DefaultUIAddr
	}
	if o.ConfigPath == "" {
		return errors.New("serve: no worker configuration: pass --config FILE or set MAILSHIFT_CONFIG (see README, Quick start)")
	}
	cfgPath, err := filepath.Abs(o.ConfigPath)
	if err != nil {
		return fmt.Errorf("serve: configuration path %q: %w", o.ConfigPath, err)
	}
	if o.DBPath == "" {
		if o.DBPath, err = DefaultDBPath(); err != nil {
			return fmt.Errorf("serve: default database: %w (pass --db)", err)
		}
	}
	if o.DBPath == ":memory:" {
		return errors.New("serve: --db must be a file: serve's migrations must survive a restart (use `starter demo` for a throwaway run)")
	}
	dbPath, err := filepath.Abs(o.DBPath)
	if err != nil {
		return fmt.Errorf("serve: database path %q: %w", o.DBPath, err)
	}

	// The configuration first: a mistake in it is reported before a server
	// is started for nothing.
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if o.TaskQueue != "" {
		cfg.TaskQueue = o.TaskQueue
	}
	acts, err := workerapp.Build(cfg, logger)
	if err != nil {
		return err
	}
	reg := metrics.New()
	workerapp.UseMetrics(acts, reg)
	// The keys are read now, so a missing one stops serve before the
	// server starts; the same codec serves the Web UI.
	copts := client.Options{}
	pc, err := workerapp.Codec(cfg, &copts)
	if err != nil {
		return err
	}

	newDB := true
	if st, err := os.Stat(dbPath); err == nil && st.Size() > 0 {
		newDB = false
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("serve: database %s: %w", dbPath, err)
	}

	// Owner-only: the database names every organization and mailbox.
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return fmt.Errorf("serve: database directory: %w", err)
	}
	srv, err := devserver.Start(ctx, devserver.Options{
		FrontendAddr: o.Address, UIAddr: o.UIAddr, DBPath: dbPath,
		SearchAttributes: workflows.SearchAttributeTypes(), Logger: logger, Codec: pc,
	})
	if err != nil {
		return err
	}
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		stops = nil
	}
	defer stop()
	stops = append(stops, func() { activities.CloseIdle(acts) }) // last: after the worker
	stops = append(stops, func() {
		if err := srv.Stop(); err != nil {
			logger.Error("stopping the Temporal server", "error", err)
		}
	})

	msrv, err := metrics.Serve(o.MetricsAddr, reg)
	if err != nil {
		return fmt.Errorf("serve: metrics address %s: %w", o.MetricsAddr, err)
	}
	if msrv != nil {
		stops = append(stops, func() { _ = msrv.Close() })
	}

	identity := workerIdentity(os.Getpid())
	copts.Identity = identity
	copts.Logger = sdklog.NewStructuredLogger(logger)
	copts.MetricsHandler = reg.SDKHandler()
	c, err := srv.Client(ctx, copts)
	if err != nil {
		return fmt.Errorf("serve: connecting to the embedded server at %s: %w", srv.FrontendAddr(), err)
	}
	stops = append(stops, c.Close)

	estate := describeEstate(ctx, c, newDB)
	// Before this worker polls: what the previous process was running when
	// it died goes back to the queue now, not when its heartbeat times out.
	requeued, rerr := requeueOrphans(ctx, c, srv.Namespace(), identity)
	if rerr != nil {
		logger.Warn("serve: could not hand back the activities of a previous run; they resume when their heartbeat times out (2 minutes by default)", "error", rerr)
	}

	wopts := worker.Options{}
	if o.MaxConcurrentActivities > 0 {
		wopts.MaxConcurrentActivityExecutionSize = o.MaxConcurrentActivities
	}
	w := worker.New(c, cfg.TaskQueue, workerapp.WorkerOptions(wopts))
	workerapp.Register(w, acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("serve: starting the worker on task queue %q: %w", cfg.TaskQueue, err)
	}
	// Stopped before the client and the server, so running transfers end
	// at a checkpoint rather than on a dead connection.
	stops = append(stops, w.Stop)

	sess := embedded.Session{
		Kind: "serve", Address: srv.FrontendAddr(), Namespace: srv.Namespace(), UIURL: srv.UIURL(),
		Config: cfgPath, PID: os.Getpid(), Started: time.Now().UTC(),
	}
	if err := embedded.Save(sess); err != nil {
		// Only `starter report`'s default needs it: say so, and serve on.
		logger.Warn("serve: could not record this session for other starter commands", "error", err)
	} else {
		stops = append(stops, func() { _ = embedded.Remove(sess.Address, sess.PID) })
	}

	banner(out, bannerInfo{
		address: srv.FrontendAddr(), namespace: srv.Namespace(), uiURL: srv.UIURL(), db: dbPath, estate: estate,
		requeued: requeued, config: cfgPath, taskQueue: cfg.TaskQueue, endpoints: cfg.EndpointNames(),
		staging: acts.Staging.Describe(), metrics: metricsURL(msrv), encryption: describeEncryption(pc, srv.CodecURL()),
	})

	<-ctx.Done()
	fmt.Fprintln(out, "mailshift serve: stopping the worker, then the Temporal server (Ctrl-C again to exit at once)…")
	// A second signal exits at once; signal.Notify adds a listener beside
	// the caller's, which keeps catching them after its context ended.
	hard := make(chan os.Signal, 1)
	signal.Notify(hard, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(hard)
	go func() {
		if _, ok := <-hard; ok {
			fmt.Fprintln(out, "mailshift serve: second signal, exiting now; the next start carries on from the database")
			os.Exit(1)
		}
	}()
	begin := time.Now()
	stop()
	fmt.Fprintf(out, "mailshift serve: stopped in %s; %s keeps every migration for the next start\n",
		time.Since(begin).Round(10*time.Millisecond), dbPath)
	return nil
}

func metricsURL(m *metrics.Server) string {
	if m == nil {
		return ""
	}
	return "http://" + m.Addr() + "/metrics"
}

// describeEstate says whether the database is new or what it already holds.
// Counting is best-effort: a failure only makes the banner vaguer.
func describeEstate(ctx context.Context, c client.Client, newDB bool) string {
	if newDB {
		return "new"
	}
	count := func(q string) (int64, error) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r, err := c.CountWorkflow(cctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		return r.GetCount(), err
	}
	// A run that continued as new is the same organization going on.
	orgs := fmt.Sprintf("WorkflowType = '%s'", workflows.OrganizationWorkflowName)
	all, err := count(orgs + " AND ExecutionStatus != 'ContinuedAsNew'")
	if err != nil {
		return "reused"
	}
	running, err := count(orgs + " AND ExecutionStatus = 'Running'")
	if err != nil {
		return fmt.Sprintf("reused: %d organization workflows", all)
	}
	return fmt.Sprintf("reused: %d organization workflows, %d running", all, running)
}

type bannerInfo struct {
	address, namespace, uiURL, db, estate string
	requeued                              int
	config, taskQueue                     string
	endpoints                             []string
	staging, metrics, encryption          string
}

// describeEncryption is the banner's payloads line.
func describeEncryption(pc *codec.Codec, codecURL string) string {
	if !pc.Encrypts() {
		return "in clear (no payload_encryption in the configuration)"
	}
	s := fmt.Sprintf("encrypted with key %s (keys %s)", pc.ActiveKey(), strings.Join(pc.KeyIDs(), ", "))
	if codecURL != "" {
		s += "; the Web UI decrypts through " + codecURL + " (loopback only)"
	}
	return s
}

func banner(out io.Writer, b bannerInfo) {
	orOff := func(s string) string {
		if s == "" {
			return "off"
		}
		return s
	}
	fmt.Fprintf(out, "mailshift serve (pid %d): Temporal server, Web UI and worker in this process\n", os.Getpid())
	fmt.Fprintf(out, "  Temporal   %s  namespace %s\n", b.address, b.namespace)
	fmt.Fprintf(out, "  Web UI     %s\n", orOff(b.uiURL))
	fmt.Fprintf(out, "  database   %s (%s)\n", b.db, b.estate)
	if b.requeued > 0 {
		fmt.Fprintf(out, "             %d activities the previous run left running were handed back to the queue\n", b.requeued)
	}
	fmt.Fprintf(out, "  worker     %s: task queue %s, endpoints %s, staging %s\n", b.config, b.taskQueue, strings.Join(b.endpoints, ", "), b.staging)
	fmt.Fprintf(out, "  metrics    %s\n", orOff(b.metrics))
	fmt.Fprintf(out, "  payloads   %s\n", b.encryption)
	fmt.Fprintln(out, "Next, in another terminal (from the repository):")
	flags := ""
	if b.address != devserver.DefaultFrontendAddr {
		flags = " --address " + b.address
	}
	fmt.Fprintf(out, "  go run ./starter migrate --inventory inventory.csv --config %s%s\n", shellQuote(b.config), flags)
	fmt.Fprintf(out, "  go run ./starter status%s\n", flags)
	if env := os.Getenv("TEMPORAL_ADDRESS"); env != "" && flags == "" && env != b.address {
		fmt.Fprintf(out, "  (TEMPORAL_ADDRESS=%s is set here: unset it, or add --address %s, so the starter reaches this server)\n", env, b.address)
	}
	fmt.Fprintln(out, "Ctrl-C stops the worker, then the server; start again on the same --db to carry on.")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:@,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
