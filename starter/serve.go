package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/mailshift/mailshift/internal/devserver"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/serve"
)

// runServe is `starter serve`: the embedded Temporal server on a SQLite
// file, its Web UI and a worker with the user's configuration, in this
// process, until SIGINT or SIGTERM.
func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	o := serve.Options{}
	defDB, err := serve.DefaultDBPath()
	if err != nil {
		defDB = "" // no state directory: --db is then required, and Run says so
	}
	fs.StringVar(&o.Address, "address", devserver.DefaultFrontendAddr, "Temporal frontend address (the starter's default; other addresses need --address on every starter command)")
	fs.StringVar(&o.UIAddr, "ui", devserver.DefaultUIAddr, `Temporal Web UI address ("off" to disable)`)
	fs.StringVar(&o.DBPath, "db", defDB, "SQLite file holding every migration; created when missing, reused as it is otherwise")
	fs.StringVar(&o.ConfigPath, "config", os.Getenv("MAILSHIFT_CONFIG"), "the worker's configuration (YAML; default $MAILSHIFT_CONFIG)")
	fs.StringVar(&o.MetricsAddr, "metrics", metrics.AddrFromEnv(os.Getenv("MAILSHIFT_METRICS_ADDR")), `serve the worker's Prometheus metrics at /metrics on this address ("off" to disable; default $MAILSHIFT_METRICS_ADDR or 127.0.0.1:9464)`)
	fs.StringVar(&o.TaskQueue, "task-queue", os.Getenv("MAILSHIFT_TASK_QUEUE"), "task queue (default $MAILSHIFT_TASK_QUEUE or the configuration's task_queue)")
	maxActs, _ := strconv.Atoi(os.Getenv("MAILSHIFT_MAX_CONCURRENT_ACTIVITIES"))
	fs.IntVar(&o.MaxConcurrentActivities, "max-concurrent-activities", maxActs, "activities at once in the worker (default $MAILSHIFT_MAX_CONCURRENT_ACTIVITIES or the SDK's)")
	level := fs.String("log-level", orDefault(os.Getenv("MAILSHIFT_LOG_LEVEL"), "warn"), "log level of the worker and server on stderr: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q (flags only)", fs.Arg(0))
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("serve: --log-level %q: %w", *level, err)
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
	return serve.Run(ctx, o, os.Stdout)
}
