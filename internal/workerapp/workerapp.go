// Package workerapp wires a worker: activities built from configuration,
// workflows and activities registered under their public names. The
// production worker and the demo's in-process worker share it.
package workerapp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/profile"
	"github.com/mailshift/mailshift/internal/routing"
	"github.com/mailshift/mailshift/workflows"
)

// Build creates the activities' dependencies from a validated config.
func Build(cfg *config.Config, logger *slog.Logger) (*activities.Activities, error) {
	a := &activities.Activities{
		Endpoints: map[string]*activities.Endpoint{},
		Logger:    logger,
		Limits: activities.Limits{
			MaxMessageSize:  int64(cfg.Limits.MaxMessageSize),
			MaxLargeItems:   limitOr(cfg.Limits.MaxLargeItems, -1),
			MaxBadItems:     limitOr(cfg.Limits.MaxBadItems, 0),
			LanesPerMailbox: cfg.Limits.LanesPerMailbox,
			AppendWindow:    cfg.Limits.AppendWindow,
		},
		Validation: activities.ValidationDefaults{Level: cfg.Validation.Level, Sample: cfg.Validation.Sample},
	}
	for _, name := range cfg.EndpointNames() {
		ep := cfg.Endpoints[name]
		addr, err := imapconn.ParseAddress(ep.URL)
		if err != nil {
			return nil, fmt.Errorf("endpoints.%s.url: %w", name, err)
		}
		opts, err := ep.IMAPOptions()
		if err != nil {
			return nil, fmt.Errorf("endpoints.%s.%w", name, err)
		}
		login, err := ep.Logins()
		if err != nil {
			return nil, fmt.Errorf("endpoints.%s.%w", name, err)
		}
		e := activities.NewEndpoint(name, addr, ep.MaxConnections, opts, login)
		prof, err := profile.Lookup(ep.Profile)
		if err != nil {
			return nil, fmt.Errorf("endpoints.%s.profile: %w", name, err)
		}
		e.Target = prof.Target
		e.Target.Rerenders = ep.MIME == config.MIMERerender
		e.WellKnown, e.SizeCeiling, e.PerMailbox = prof.WellKnown, prof.MessageSizeCeiling, ep.MaxConnectionsPerMailbox
		a.Endpoints[name] = e
	}
	shareAppSlots(cfg, a.Endpoints)
	// Once per worker start: settings that weaken an endpoint's security.
	warn := logger
	if warn == nil {
		warn = slog.Default()
	}
	for _, w := range cfg.Warnings() {
		warn.Warn("insecure endpoint setting: " + w)
	}
	if cfg.PayloadEncryption == nil {
		warn.Warn("payload_encryption is not configured: workflow inputs, results and failures (mailbox addresses, folder names) are stored in Temporal in clear; see docs/configuration.md#payload-encryption")
	}
	st, err := NewStaging(context.Background(), cfg.Staging)
	if err != nil {
		return nil, err
	}
	a.Staging = st
	switch cfg.Routing.Kind {
	case "file":
		a.Router = &routing.File{Path: cfg.Routing.Path, Nexthop: cfg.Routing.Nexthop}
	case "webhook":
		a.Router = &routing.Webhook{URL: cfg.Routing.URL, TokenFile: cfg.Routing.TokenFile,
			Timeout: cfg.Routing.Timeout, Batch: cfg.Routing.Batch}
	default:
		a.Router = routing.None{}
	}
	a.SpoolDir = os.TempDir()
	return a, nil
}

// Codec builds the payload codec of cfg's payload_encryption (nil when it
// is not configured) and applies it to opts, so every client built from
// opts encrypts. It resolves the keys: call it once at start.
func Codec(cfg *config.Config, opts *client.Options) (*codec.Codec, error) {
	c, err := codec.FromConfig(cfg.PayloadEncryption)
	if err != nil {
		return nil, err
	}
	c.Apply(opts)
	return c, nil
}

// UseMetrics gives the activities a metrics registry and creates every
// configured endpoint's series, so dashboards list idle endpoints too.
func UseMetrics(a *activities.Activities, m *metrics.Metrics) {
	a.Metrics = m
	for name := range a.Endpoints {
		m.Endpoint(name)
	}
}

func limitOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// Register adds mailshift's workflows and activities to a worker.
func Register(w worker.Registry, a *activities.Activities) {
	w.RegisterWorkflowWithOptions(workflows.Organization, workflow.RegisterOptions{Name: workflows.OrganizationWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.Mailbox, workflow.RegisterOptions{Name: workflows.MailboxWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.Campaign, workflow.RegisterOptions{Name: workflows.CampaignWorkflowName})
	w.RegisterActivity(a)
}

// HeartbeatThrottle bounds how long an activity's heartbeats are held back
// by the SDK. A pause, skip or rollback reaches a running transfer only in
// a heartbeat's answer, and the SDK's default (80 % of the heartbeat
// timeout, up to 60 s) would let a paused transfer run on for a minute.
// At 5 s, 1,000 transfers at once send 200 heartbeats a second.
const HeartbeatThrottle = 5 * time.Second

// StopTimeout is how long a stopping worker (SIGTERM) waits for its running
// activities. Transfers stop at their next checkpoint as soon as the stop
// begins and report that they handed the mailbox back, which takes well
// under a second; the server then retries them at once. With the SDK's
// default of 0 the worker would exit before reporting, and every mailbox
// it held would wait out its heartbeat timeout.
const StopTimeout = 15 * time.Second

// WorkerOptions fills in what mailshift's workers need on top of o.
func WorkerOptions(o worker.Options) worker.Options {
	if o.MaxHeartbeatThrottleInterval == 0 {
		o.MaxHeartbeatThrottleInterval = HeartbeatThrottle
	}
	if o.DefaultHeartbeatThrottleInterval == 0 {
		o.DefaultHeartbeatThrottleInterval = HeartbeatThrottle
	}
	if o.WorkerStopTimeout == 0 {
		o.WorkerStopTimeout = StopTimeout
	}
	return o
}

// shareAppSlots gives the endpoints that log in with one app registration
// one connection limit: the app's max_connections, else the smallest of
// theirs.
func shareAppSlots(cfg *config.Config, eps map[string]*activities.Endpoint) {
	type app struct {
		n, appMax int
		names     []string
	}
	apps := map[string]*app{}
	var order []string
	for _, name := range cfg.EndpointNames() {
		ep := cfg.Endpoints[name]
		if ep.OAuth2 == nil {
			continue
		}
		k := ep.OAuth2.TenantID + "/" + ep.OAuth2.ClientID
		ap := apps[k]
		if ap == nil {
			ap = &app{n: ep.MaxConnections}
			apps[k] = ap
			order = append(order, k)
		}
		ap.n = min(ap.n, ep.MaxConnections)
		if ep.OAuth2.MaxConnections > 0 && ap.appMax == 0 {
			ap.appMax = ep.OAuth2.MaxConnections
		}
		ap.names = append(ap.names, name)
	}
	for _, k := range order {
		ap := apps[k]
		if ap.appMax > 0 {
			ap.n = ap.appMax
		}
		shared := make([]*activities.Endpoint, len(ap.names))
		for i, n := range ap.names {
			shared[i] = eps[n]
		}
		activities.ShareSlots(ap.n, shared...)
	}
}
