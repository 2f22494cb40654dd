// Command worker is mailshift's production worker: it polls the mailshift
// task queue and runs the workflows and activities. It does not contain a
// Temporal server.
//
// Temporal client settings come from the environment or a TOML profile
// (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, TEMPORAL_API_KEY,
// TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE). mailshift's own settings come from
// the YAML file named by MAILSHIFT_CONFIG. Prometheus metrics are served at
// MAILSHIFT_METRICS_ADDR (default 127.0.0.1:9464, "off" to disable).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	// Cutover windows are evaluated in workflow code: every worker must see
	// the same time zone rules, whatever the host's tzdata package holds.
	_ "time/tzdata"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/workerapp"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	if err := run(logger); err != nil {
		logger.Error("worker stopped", "error", err)
		os.Exit(1)
	}
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("MAILSHIFT_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

func run(logger *slog.Logger) error {
	path := os.Getenv("MAILSHIFT_CONFIG")
	if path == "" {
		return fmt.Errorf("MAILSHIFT_CONFIG is not set: point it at the worker's YAML configuration (see README)")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if q := os.Getenv("MAILSHIFT_TASK_QUEUE"); q != "" {
		cfg.TaskQueue = q
	}
	acts, err := workerapp.Build(cfg, logger)
	if err != nil {
		return err
	}
	defer activities.CloseIdle(acts)
	// Prometheus metrics: mailshift's own and the Temporal SDK's.
	reg := metrics.New()
	workerapp.UseMetrics(acts, reg)
	srv, err := metrics.Serve(metrics.AddrFromEnv(os.Getenv("MAILSHIFT_METRICS_ADDR")), reg)
	if err != nil {
		return fmt.Errorf("MAILSHIFT_METRICS_ADDR: %w", err)
	}
	if srv != nil {
		defer srv.Close()
		logger.Info("metrics endpoint", "url", "http://"+srv.Addr()+"/metrics")
	}
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return fmt.Errorf("temporal client settings: %w", err)
	}
	opts.Logger = sdklog.NewStructuredLogger(logger)
	opts.MetricsHandler = reg.SDKHandler()
	pc, err := workerapp.Codec(cfg, &opts)
	if err != nil {
		return err
	}
	if pc.Encrypts() {
		logger.Info("payload encryption on", "active_key", pc.ActiveKey(), "keys", pc.KeyIDs())
	}
	c, err := client.Dial(opts)
	if err != nil {
		return fmt.Errorf("connect to Temporal at %q: %w", opts.HostPort, err)
	}
	defer c.Close()
	wopts := worker.Options{}
	if n, err := strconv.Atoi(os.Getenv("MAILSHIFT_MAX_CONCURRENT_ACTIVITIES")); err == nil && n > 0 {
		wopts.MaxConcurrentActivityExecutionSize = n
	}
	w := worker.New(c, cfg.TaskQueue, workerapp.WorkerOptions(wopts))
	workerapp.Register(w, acts)
	logger.Info("worker starting", "task_queue", cfg.TaskQueue, "endpoints", cfg.EndpointNames(), "staging", acts.Staging.Describe())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// worker.Run stops polling on the interrupt and waits for running
	// activities up to WorkerStopTimeout; their heartbeats let retries resume.
	return w.Run(interruptFrom(ctx))
}

func interruptFrom(ctx context.Context) <-chan any {
	ch := make(chan any, 1)
	go func() {
		<-ctx.Done()
		ch <- struct{}{}
	}()
	return ch
}
