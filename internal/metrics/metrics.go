// Package metrics holds everything the worker exports to Prometheus: its
// own metrics (every name a constant here), the Temporal SDK's metrics
// through an adapter of the SDK's MetricsHandler onto the same registry,
// and the HTTP endpoint that serves them.
//
// Labels stay bounded: organization codes, endpoint names, skip reasons and
// IMAP fault kinds; never mailbox addresses.
package metrics

import (
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

// mailshift's own metric names.
const (
	// CopiedBytes: message bytes appended to the target (label org).
	CopiedBytes = "mailshift_copied_bytes_total"
	// CopiedMessages: messages appended to the target (label org).
	CopiedMessages = "mailshift_copied_messages_total"
	// SkippedItems: items a transfer did not copy (labels org, reason; the
	// reasons of transfer.Reason*).
	SkippedItems = "mailshift_skipped_items_total"
	// ConnectionsInUse: IMAP connections held to an endpoint (label
	// endpoint), bounded by its max_connections.
	ConnectionsInUse = "mailshift_endpoint_connections_in_use"
	// IMAPErrors: failed connections and logins (labels endpoint, kind;
	// the kinds of imapconn.Kind*, or KindNetwork).
	IMAPErrors = "mailshift_imap_errors_total"
	// EndpointLoginSeconds: how long a connection took to be ready, dial,
	// TLS, greeting and login (label endpoint): a histogram, so latency by
	// endpoint and its trend show how loaded each server is.
	EndpointLoginSeconds = "mailshift_endpoint_login_seconds"
	// ThrottledSeconds: time spent backing off a server's throttling
	// (label endpoint). Nothing backs off yet: it stays 0.
	ThrottledSeconds = "mailshift_throttled_seconds_total"
	// StagingWrittenBytes: bytes written to the staging store (ledgers,
	// staged items, archives, reports).
	StagingWrittenBytes = "mailshift_staging_written_bytes_total"
)

// Metrics the workflows emit through workflow.GetMetricsHandler: the SDK
// handler (SDKHandler, on this registry) carries them, with the SDK's own
// tags added (namespace, task_queue, workflow_type). The SDK drops them
// while a workflow replays, so a worker that replays a history after a
// restart or a cache eviction counts nothing twice.
const (
	// MailboxPasses: mailbox passes an organization booked (labels org,
	// pass: readiness, prestage, delta, final, post-switch, validate,
	// archive, import; outcome: OutcomeOK, OutcomeFailed, OutcomeCanceled).
	// Readiness checked in batches (lean runs) is not a pass and is not
	// counted.
	MailboxPasses = "mailshift_mailbox_passes_total"
	// OrganizationMailboxes: an organization's mailboxes in its current
	// phase (labels org, phase), 0 in the phases it has left; sum by
	// (phase) is mailboxes by phase. A gauge lives on the worker that set
	// it: when an organization moves to another worker, the first one
	// keeps its last value until it restarts (max by (org, phase) hides it).
	OrganizationMailboxes = "mailshift_organization_mailboxes"
)

// Outcomes of MailboxPasses.
const (
	OutcomeOK       = "ok"
	OutcomeFailed   = "failed"
	OutcomeCanceled = "canceled"
)

// Label names.
const (
	LabelOrg      = "org"
	LabelReason   = "reason"
	LabelEndpoint = "endpoint"
	LabelKind     = "kind"
	LabelPass     = "pass"
	LabelOutcome  = "outcome"
	LabelPhase    = "phase"
)

// KindNetwork is the IMAPErrors kind of a fault that is no answer of the
// server (a refused or reset connection, a timeout).
const KindNetwork = "Network"

// DefaultAddr is where the production worker serves /metrics by default.
const DefaultAddr = "127.0.0.1:9464"

// Names lists mailshift's own metric names, the workflows' included.
func Names() []string {
	return []string{CopiedBytes, CopiedMessages, SkippedItems, ConnectionsInUse, EndpointLoginSeconds, IMAPErrors, ThrottledSeconds, StagingWrittenBytes,
		MailboxPasses, OrganizationMailboxes}
}

// Metrics is a worker's registry. A nil *Metrics records nothing, so
// activities built without one (tests) need no special case.
type Metrics struct {
	Registry *prometheus.Registry
	sdk      *sdkCollector

	copiedBytes, copiedMessages *prometheus.CounterVec
	skipped                     *prometheus.CounterVec
	conns                       *prometheus.GaugeVec
	imapErrors                  *prometheus.CounterVec
	login                       *prometheus.HistogramVec
	throttled                   *prometheus.CounterVec
	stagingBytes                prometheus.Counter
}

// New builds a registry with mailshift's metrics, the SDK adapter's, and
// the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		sdk:      newSDKCollector(),
		copiedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: CopiedBytes,
			Help: "Message bytes appended to the target."}, []string{LabelOrg}),
		copiedMessages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: CopiedMessages,
			Help: "Messages appended to the target."}, []string{LabelOrg}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: SkippedItems,
			Help: "Items a transfer did not copy, by reason."}, []string{LabelOrg, LabelReason}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ConnectionsInUse,
			Help: "IMAP connections held to an endpoint."}, []string{LabelEndpoint}),
		imapErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: IMAPErrors,
			Help: "Failed IMAP connections and logins, by fault kind."}, []string{LabelEndpoint, LabelKind}),
		login: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: EndpointLoginSeconds,
			Help:    "Seconds from dialling an endpoint to a logged-in connection.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}, []string{LabelEndpoint}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ThrottledSeconds,
			Help: "Seconds spent backing off a server's throttling."}, []string{LabelEndpoint}),
		stagingBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: StagingWrittenBytes,
			Help: "Bytes written to the staging store."}),
	}
	m.Registry.MustRegister(m.copiedBytes, m.copiedMessages, m.skipped, m.conns, m.login, m.imapErrors, m.throttled, m.stagingBytes,
		m.sdk, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SDKHandler is the client.Options.MetricsHandler that puts the Temporal
// SDK's metrics on this registry.
func (m *Metrics) SDKHandler() client.MetricsHandler {
	if m == nil {
		return nil
	}
	return &sdkHandler{c: m.sdk}
}

// Endpoint makes sure an endpoint's series exist (at 0) before its first
// connection, so dashboards show every configured endpoint.
func (m *Metrics) Endpoint(name string) {
	if m == nil {
		return
	}
	m.conns.WithLabelValues(name)
	m.login.WithLabelValues(name)
	m.throttled.WithLabelValues(name)
}

// LoggedIn records how long a connection to endpoint took to be ready.
func (m *Metrics) LoggedIn(endpoint string, d time.Duration) {
	if m != nil {
		m.login.WithLabelValues(endpoint).Observe(d.Seconds())
	}
}

// Copied adds messages and bytes appended to the target for org.
func (m *Metrics) Copied(org string, messages, bytes int64) {
	if m == nil || (messages <= 0 && bytes <= 0) {
		return
	}
	m.copiedMessages.WithLabelValues(org).Add(float64(max(messages, 0)))
	m.copiedBytes.WithLabelValues(org).Add(float64(max(bytes, 0)))
}

// Skipped adds n items skipped for reason in org.
func (m *Metrics) Skipped(org, reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.skipped.WithLabelValues(org, reason).Add(float64(n))
}

// ConnOpened and ConnClosed track a connection slot of an endpoint.
func (m *Metrics) ConnOpened(endpoint string) {
	if m != nil {
		m.conns.WithLabelValues(endpoint).Inc()
	}
}

// ConnClosed: see ConnOpened.
func (m *Metrics) ConnClosed(endpoint string) {
	if m != nil {
		m.conns.WithLabelValues(endpoint).Dec()
	}
}

// IMAPError counts a failed connection or login to endpoint.
func (m *Metrics) IMAPError(endpoint, kind string) {
	if m != nil {
		m.imapErrors.WithLabelValues(endpoint, kind).Inc()
	}
}

// Throttled adds time spent backing off endpoint's throttling.
func (m *Metrics) Throttled(endpoint string, d time.Duration) {
	if m != nil && d > 0 {
		m.throttled.WithLabelValues(endpoint).Add(d.Seconds())
	}
}

// StagingWritten adds bytes written to the staging store.
func (m *Metrics) StagingWritten(n int64) {
	if m != nil && n > 0 {
		m.stagingBytes.Add(float64(n))
	}
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Server is a running metrics endpoint.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Addr is the address the endpoint listens on (the port chosen for ":0").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the endpoint.
func (s *Server) Close() error { return s.srv.Close() }

// Serve listens on addr and serves /metrics from m in the background.
// addr "off" (or "") serves nothing and returns nil, nil.
func Serve(addr string, m *Metrics) (*Server, error) {
	if addr == "" || addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	s := &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }() // returns ErrServerClosed on Close
	return s, nil
}

// AddrFromEnv reads MAILSHIFT_METRICS_ADDR's value: "" means DefaultAddr,
// "off" disables the endpoint.
func AddrFromEnv(v string) string {
	if v == "" {
		return DefaultAddr
	}
	return v
}

// SDKNames are Temporal SDK metrics (as this adapter names them) the
// dashboard in deploy/grafana uses; the scrape test checks a migration
// yields each of them.
var SDKNames = []string{
	"temporal_request",
	"temporal_request_latency",
	"temporal_workflow_completed",
	"temporal_workflow_endtoend_latency",
	"temporal_activity_execution_latency",
	"temporal_activity_succeed_endtoend_latency",
	"temporal_workflow_task_schedule_to_start_latency",
	"temporal_worker_task_slots_available",
	"temporal_worker_task_slots_used",
	"temporal_sticky_cache_size",
}
