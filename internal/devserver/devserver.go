// Package devserver runs a complete Temporal server (frontend, history,
// matching and worker services on SQLite) plus, optionally, the Temporal Web
// UI inside the current process. It backs the demo and the integration tests.
//
// The server is quiet by design: its own logging is limited to warnings and
// errors, so it does not disturb progress output on the same terminal, and
// it is muted entirely once Stop begins.
//
// Several servers may run in one process, one after the other or at the same
// time, on different ports and databases. Limits inherited from the Temporal
// server: its SQLite plugin never closes its connections, so a stopped
// in-memory database stays in memory (and a database file open) until the
// process exits; a few idle gRPC client goroutines outlive Stop; and a port
// taken between Start's check and the server's bind still makes the server
// call log.Fatal.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/mailshift/mailshift/internal/codec"
)

const (
	// DefaultFrontendAddr is the frontend gRPC address used when Options.FrontendAddr is empty.
	DefaultFrontendAddr = "127.0.0.1:7233"
	// DefaultUIAddr is the Web UI address used when Options.UIAddr is empty.
	DefaultUIAddr = "127.0.0.1:8233"
	// DefaultNamespace is the namespace created when Options.Namespace is empty.
	DefaultNamespace = "default"
	// UIOff as Options.UIAddr disables the Web UI.
	UIOff = "off"

	clusterName   = "active"
	storeName     = "sqlite-default"
	readyCap      = 60 * time.Second
	retryInterval = 20 * time.Millisecond
)

// Options configures Start. The zero value is a usable in-memory server on
// the default ports.
type Options struct {
	// FrontendAddr is the frontend gRPC address, default "127.0.0.1:7233".
	// Port "0" picks a free port; FrontendAddr() reports the one bound.
	FrontendAddr string
	// UIAddr is the Web UI address, default "127.0.0.1:8233"; "off" disables
	// the UI. Port "0" picks a free port.
	UIAddr string
	// DBPath is the SQLite database. "" or ":memory:" keeps everything in
	// memory; otherwise the file is used (WAL journal), and created together
	// with its schema and parent directories when missing.
	DBPath string
	// Namespace is created at start, default "default".
	Namespace string
	// SearchAttributes are the custom search attributes of Namespace. They are
	// written with the namespace when it is created; when an existing database
	// lacks some of them they are added through the operator service.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives the devserver's own messages and the server's warnings
	// and errors. When nil, server warnings and errors go to stderr in zap's
	// console format and nothing else is printed.
	Logger *slog.Logger
	// Codec, when set with the UI on, is served as a remote codec endpoint
	// on a free loopback port that the Web UI is configured to call (from
	// the browser, allowed by CORS for the UI's origin only), so the UI
	// shows payloads decrypted to the person at this machine. The
	// server's clients are the caller's: see codec.Apply.
	Codec *codec.Codec
}

// Server is a running in-process Temporal server. Create it with Start and
// release it with Stop.
type Server struct {
	namespace    string
	frontendAddr string // host:port clients dial
	uiURL        string
	logger       *slog.Logger // devserver messages; discards when no Logger was given
	sdkLogger    sdklog.Logger

	srv      temporal.Server
	codecSrv *codec.Server
	ui       *uiserver.Server
	uiDone   chan struct{}
	internal client.Client
	ports    []int
	dbPath   string // database file claimed by this server, "" in memory
	// serverLog is the server's logger; Stop mutes it, because shutting
	// down makes the server log dozens of expected warnings and errors.
	serverLog *gatedLogger

	stopOnce sync.Once
	stopErr  error
}

// Start launches the server, waits until the frontend answers, the namespace
// exists with its search attributes and (when enabled) the UI serves its
// page, and returns it. ctx bounds only this wait (at most 60 s in any case),
// not the server's lifetime. A busy port is reported as an error before
// anything is started; on any error everything started is stopped again.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.FrontendAddr == "" {
		opts.FrontendAddr = DefaultFrontendAddr
	}
	if opts.UIAddr == "" {
		opts.UIAddr = DefaultUIAddr
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	uiEnabled := !strings.EqualFold(strings.TrimSpace(opts.UIAddr), UIOff)

	feHost, fePort, err := splitAddr(opts.FrontendAddr, "Temporal frontend")
	if err != nil {
		return nil, err
	}
	const loopback = "127.0.0.1"
	reqs := []portRequest{
		{what: "Temporal frontend", host: feHost, port: fePort},
		{what: "Temporal frontend HTTP", host: feHost},
		{what: "Temporal history", host: loopback},
		{what: "Temporal matching", host: loopback},
		{what: "Temporal worker", host: loopback},
	}
	var uiHost string
	if uiEnabled {
		var uiPort int
		uiHost, uiPort, err = splitAddr(opts.UIAddr, "Temporal Web UI")
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, portRequest{what: "Temporal Web UI", host: uiHost, port: uiPort})
	}
	ports, err := reservePorts(reqs)
	if err != nil {
		return nil, err
	}

	s := &Server{
		namespace:    opts.Namespace,
		frontendAddr: net.JoinHostPort(dialHost(feHost), strconv.Itoa(ports[0])),
		ports:        ports,
	}
	if opts.Logger != nil {
		s.logger = opts.Logger
	} else {
		s.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.sdkLogger = sdklog.NewStructuredLogger(slog.New(&minLevelHandler{min: slog.LevelWarn, h: sdkHandler(opts.Logger)}))

	ok := false
	defer func() {
		if !ok {
			_ = s.Stop()
		}
	}()

	sqlCfg, err := s.prepareDB(opts)
	if err != nil {
		return nil, err
	}
	if err := s.startTemporal(opts, sqlCfg, feHost, ports); err != nil {
		return nil, err
	}

	readyCtx, cancel := context.WithTimeout(ctx, readyCap)
	defer cancel()
	if err := s.waitFrontend(readyCtx); err != nil {
		return nil, err
	}
	if err := s.ensureSearchAttributes(readyCtx, opts.SearchAttributes); err != nil {
		return nil, err
	}
	if uiEnabled {
		if err := s.startUI(readyCtx, uiHost, ports[5], opts.Codec); err != nil {
			return nil, err
		}
	}
	ok = true
	s.logger.Info("devserver: Temporal server ready",
		"frontend", s.frontendAddr, "ui", s.uiURL, "codec", s.CodecURL(), "namespace", s.namespace, "db", dbDescription(opts.DBPath))
	return s, nil
}

// FrontendAddr returns the host:port of the frontend gRPC service as bound.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// UIURL returns the Web UI base URL such as "http://127.0.0.1:8233", or ""
// when the UI is off.
func (s *Server) UIURL() string { return s.uiURL }

// CodecURL returns the base URL of the remote codec endpoint the Web UI
// decodes payloads with, or "" when there is none.
func (s *Server) CodecURL() string {
	if s.codecSrv == nil {
		return ""
	}
	return s.codecSrv.URL()
}

// Namespace returns the namespace created at start.
func (s *Server) Namespace() string { return s.namespace }

// Client dials the server. HostPort and Namespace are filled in when empty;
// a quiet logger (warnings and errors only) is used when opts.Logger is nil.
func (s *Server) Client(ctx context.Context, opts client.Options) (client.Client, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.HostPort == "" {
		opts.HostPort = s.frontendAddr
	}
	if opts.Namespace == "" {
		opts.Namespace = s.namespace
	}
	if opts.Logger == nil {
		opts.Logger = s.sdkLogger
	}
	return client.DialContext(ctx, opts)
}

// Stop shuts down the UI, then the server. It is safe to call more than once;
// later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		begin := time.Now()
		if s.ui != nil {
			s.ui.Stop()
			select {
			case <-s.uiDone:
			case <-time.After(5 * time.Second):
			}
		}
		if s.codecSrv != nil {
			_ = s.codecSrv.Close()
		}
		if s.internal != nil {
			s.internal.Close()
		}
		if s.serverLog != nil {
			// Shutting down makes internal pollers, dialers and handlers log
			// warnings and errors about cancelled calls and closed
			// connections (dozens of lines); all expected, so the server is
			// silent from now on. Failures to stop are returned instead.
			s.serverLog.mute()
		}
		if s.srv != nil {
			if err := s.srv.Stop(); err != nil {
				s.stopErr = fmt.Errorf("devserver: stopping Temporal server: %w", err)
			}
		}
		releasePorts(s.ports)
		releaseDB(s.dbPath)
		s.logger.Info("devserver: Temporal server stopped", "frontend", s.frontendAddr,
			"took", time.Since(begin).Round(time.Millisecond))
	})
	return s.stopErr
}

// prepareDB builds the SQLite configuration, creates the schema of a new
// database file and the namespace.
func (s *Server) prepareDB(opts Options) (*config.SQL, error) {
	sqlCfg := &config.SQL{PluginName: sqliteplugin.PluginName}
	if opts.DBPath == "" || opts.DBPath == ":memory:" {
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		// Every in-memory database of the process needs its own name.
		sqlCfg.DatabaseName = "mailshift-devserver-" + strconv.FormatUint(rand.Uint64(), 36)
	} else {
		path, err := filepath.Abs(opts.DBPath)
		if err != nil {
			return nil, fmt.Errorf("devserver: database path %q: %w", opts.DBPath, err)
		}
		// Keys without "_": the plugin passes them as "_pragma=journal_mode=wal"
		// and checks "journal_mode" to know WAL is on.
		sqlCfg.ConnectAttributes = map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "2"}
		sqlCfg.DatabaseName = path
		// The directory first: the claim's lock file lives beside the database.
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("devserver: creating database directory: %w", err)
		}
		if err := claimDB(path); err != nil {
			return nil, err
		}
		s.dbPath = path
		if st, err := os.Stat(path); errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0) {
			if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
				return nil, fmt.Errorf("devserver: creating database schema in %s: %w", path, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("devserver: database %s: %w", path, err)
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("devserver: namespace %q: %w", opts.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("devserver: creating namespace %q: %w", opts.Namespace, err)
	}
	return sqlCfg, nil
}

// openDBs holds the database files used by running servers of this process,
// each with its lock file (lockDBFile) that keeps other processes off it.
// Two servers on one file would both claim its history shard.
var openDBs = struct {
	sync.Mutex
	m map[string]*os.File
}{m: map[string]*os.File{}}

// claimDB reserves the database file for one server: against the other
// servers of this process, and, through a flock, against other processes.
func claimDB(path string) error {
	openDBs.Lock()
	defer openDBs.Unlock()
	if _, busy := openDBs.m[path]; busy {
		return fmt.Errorf("devserver: database %s is already used by another running server in this process", path)
	}
	lock, err := lockDBFile(path)
	if err != nil {
		return err
	}
	openDBs.m[path] = lock
	return nil
}

func releaseDB(path string) {
	if path == "" {
		return
	}
	openDBs.Lock()
	defer openDBs.Unlock()
	if lock := openDBs.m[path]; lock != nil {
		_ = lock.Close() // closing the descriptor drops the flock
	}
	delete(openDBs.m, path)
}

// startTemporal builds the server configuration and starts the services.
// ports holds frontend, frontend HTTP, history, matching, worker in order.
func (s *Server) startTemporal(opts Options, sqlCfg *config.SQL, feHost string, ports []int) error {
	const loopback = "127.0.0.1"
	feDial := dialHost(feHost)
	hostPort := func(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

	cfg := &config.Config{}
	cfg.Global.Membership = config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: loopback}
	cfg.Persistence = config.Persistence{
		DefaultStore:     storeName,
		VisibilityStore:  storeName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{storeName: {SQL: sqlCfg}},
	}
	cfg.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             hostPort(feDial, ports[0]),
				HTTPAddress:            hostPort(feDial, ports[1]),
			},
		},
	}
	cfg.DCRedirectionPolicy = config.DCRedirectionPolicy{Policy: "noop"}
	cfg.Services = map[string]config.Service{
		"frontend": {RPC: config.RPC{GRPCPort: ports[0], HTTPPort: ports[1], BindOnIP: feHost}},
		"history":  {RPC: config.RPC{GRPCPort: ports[2], BindOnIP: loopback}},
		"matching": {RPC: config.RPC{GRPCPort: ports[3], BindOnIP: loopback}},
		"worker":   {RPC: config.RPC{GRPCPort: ports[4], BindOnIP: loopback}},
	}
	cfg.Archival = config.Archival{
		History:    config.HistoryArchival{State: "disabled"},
		Visibility: config.VisibilityArchival{State: "disabled"},
	}
	cfg.NamespaceDefaults = config.NamespaceDefaults{
		Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		},
	}
	cfg.PublicClient = config.PublicClient{HostPort: hostPort(feDial, ports[0])}

	logger := newGatedLogger(serverLogger(opts.Logger))
	s.serverLog = logger
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return fmt.Errorf("devserver: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return fmt.Errorf("devserver: claim mapper: %w", err)
	}
	dc := dynamicconfig.StaticClient{
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8192,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Search attributes added through the operator service are usable at once.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// The server never stops the SDK workers of these system components
		// (scanner.go: "Nothing is gracefully stopping these workers"), so
		// they would keep polling - and logging - after Stop. A short-lived
		// dev server needs neither the task queue and history scavengers nor
		// the parent-close-policy worker (history then applies parent close
		// policies inline).
		dynamicconfig.TaskQueueScannerEnabled.Key():       false,
		dynamicconfig.HistoryScannerEnabled.Key():         false,
		dynamicconfig.EnableParentClosePolicyWorker.Key(): false,
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(hostPort(feDial, ports[0])),
			primitives.HistoryService:  static.SingleLocalHost(hostPort(loopback, ports[2])),
			primitives.MatchingService: static.SingleLocalHost(hostPort(loopback, ports[3])),
			primitives.WorkerService:   static.SingleLocalHost(hostPort(loopback, ports[4])),
		}),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dc),
	)
	if err != nil {
		return fmt.Errorf("devserver: creating Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		_ = srv.Stop()
		return fmt.Errorf("devserver: starting Temporal server: %w", err)
	}
	s.srv = srv
	return nil
}

// waitFrontend dials until the frontend answers, then waits for the health
// check and the namespace.
func (s *Server) waitFrontend(ctx context.Context) error {
	var lastErr error
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := client.DialContext(attemptCtx, client.Options{
			HostPort:  s.frontendAddr,
			Namespace: s.namespace,
			Logger:    s.sdkLogger,
		})
		cancel()
		if err == nil {
			s.internal = c
			break
		}
		lastErr = err
		if err := sleepCtx(ctx, retryInterval); err != nil {
			return fmt.Errorf("devserver: Temporal frontend %s did not come up: %w (last error: %v)", s.frontendAddr, err, lastErr)
		}
	}
	for {
		_, err := s.internal.CheckHealth(ctx, &client.CheckHealthRequest{})
		if err == nil {
			_, err = s.internal.WorkflowService().DescribeNamespace(ctx,
				&workflowservice.DescribeNamespaceRequest{Namespace: s.namespace})
		}
		if err == nil {
			return nil
		}
		lastErr = err
		if err := sleepCtx(ctx, retryInterval); err != nil {
			return fmt.Errorf("devserver: namespace %q on %s not ready: %w (last error: %v)", s.namespace, s.frontendAddr, err, lastErr)
		}
	}
}

// ensureSearchAttributes adds the search attributes missing from the
// namespace (an existing database created with fewer of them). An attribute
// registered with another type is an error.
func (s *Server) ensureSearchAttributes(ctx context.Context, want map[string]enumspb.IndexedValueType) error {
	if len(want) == 0 {
		return nil
	}
	op := s.internal.OperatorService()
	resp, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.namespace})
	if err != nil {
		return fmt.Errorf("devserver: listing search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	var mismatched []string
	for name, typ := range want {
		have, ok := resp.GetCustomAttributes()[name]
		if !ok {
			if sys, isSys := resp.GetSystemAttributes()[name]; isSys && sys != typ {
				mismatched = append(mismatched, fmt.Sprintf("%s is a system attribute of type %s, not %s", name, sys, typ))
			} else if !isSys {
				missing[name] = typ
			}
			continue
		}
		if have != typ {
			mismatched = append(mismatched, fmt.Sprintf("%s has type %s, not %s", name, have, typ))
		}
	}
	if len(mismatched) > 0 {
		sort.Strings(mismatched)
		return fmt.Errorf("devserver: search attributes of namespace %q conflict with the database: %s",
			s.namespace, strings.Join(mismatched, "; "))
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        s.namespace,
		SearchAttributes: missing,
	}); err != nil {
		return fmt.Errorf("devserver: adding search attributes: %w", err)
	}
	s.logger.Info("devserver: added search attributes", "namespace", s.namespace, "count", len(missing))
	return nil
}

// startUI runs the Web UI (and c's codec endpoint for it) and waits until
// it serves its page.
func (s *Server) startUI(ctx context.Context, host string, port int, c *codec.Codec) error {
	url := "http://" + net.JoinHostPort(dialHost(host), strconv.Itoa(port))
	var codecCfg uiconfig.Codec
	if c != nil {
		// The browser calls it from the UI's page: only that origin (by
		// either loopback name) may. Loopback only and no token: it
		// decrypts for whoever can reach it, as the UI shows everything
		// to whoever can reach it.
		origins := []string{url}
		if h := dialHost(host); h == "127.0.0.1" || h == "localhost" {
			origins = []string{"http://127.0.0.1:" + strconv.Itoa(port), "http://localhost:" + strconv.Itoa(port)}
		}
		cs, err := codec.Serve("127.0.0.1:0", c, codec.HandlerOptions{CORSOrigins: origins})
		if err != nil {
			return fmt.Errorf("devserver: %w", err)
		}
		s.codecSrv = cs
		codecCfg = uiconfig.Codec{Endpoint: cs.URL()}
	}
	s.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Codec:               codecCfg,
		Host:                host,
		Port:                port,
		TemporalGRPCAddress: s.frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    s.namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
	}))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = s.ui.Start()
	}()

	hc := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
		if err != nil {
			return fmt.Errorf("devserver: UI request: %w", err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.uiURL = url
				return nil
			}
			err = fmt.Errorf("GET / answered %s", resp.Status)
		}
		lastErr = err
		if err := sleepCtx(ctx, retryInterval); err != nil {
			return fmt.Errorf("devserver: Temporal Web UI %s did not come up: %w (last error: %v)", url, err, lastErr)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func dbDescription(path string) string {
	if path == "" || path == ":memory:" {
		return ":memory:"
	}
	return path
}

// serverLogger returns the logger handed to the Temporal server: warnings
// and errors only, either to l or, when l is nil, to stderr in zap's console
// format.
func serverLogger(l *slog.Logger) log.Logger {
	if l == nil {
		return log.NewZapLogger(log.BuildZapLogger(log.Config{Level: "warn", Format: "console"}))
	}
	return &slogServerLogger{l: l.With("component", "temporal-server")}
}

// sdkHandler is where the SDK clients used by the devserver log: the
// Logger's handler, or stderr.
func sdkHandler(l *slog.Logger) slog.Handler {
	if l != nil {
		return l.With("component", "temporal-sdk").Handler()
	}
	return slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
}

// minLevelHandler drops records below min.
type minLevelHandler struct {
	min slog.Level
	h   slog.Handler
}

func (m *minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m *minLevelHandler) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m *minLevelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &minLevelHandler{min: m.min, h: m.h.WithAttrs(a)}
}
func (m *minLevelHandler) WithGroup(g string) slog.Handler {
	return &minLevelHandler{min: m.min, h: m.h.WithGroup(g)}
}

// slogServerLogger adapts a *slog.Logger to the server's log.Logger. Debug
// and info messages are dropped; Panic and Fatal keep their semantics.
type slogServerLogger struct {
	l *slog.Logger
}

var _ log.WithLogger = (*slogServerLogger)(nil)

func (s *slogServerLogger) Debug(string, ...tag.Tag) {}
func (s *slogServerLogger) Info(string, ...tag.Tag)  {}
func (s *slogServerLogger) Warn(msg string, tags ...tag.Tag) {
	s.l.Warn(msg, tagArgs(tags)...)
}
func (s *slogServerLogger) Error(msg string, tags ...tag.Tag) {
	s.l.Error(msg, tagArgs(tags)...)
}
func (s *slogServerLogger) DPanic(msg string, tags ...tag.Tag) {
	s.l.Error(msg, tagArgs(tags)...)
}
func (s *slogServerLogger) Panic(msg string, tags ...tag.Tag) {
	s.l.Error(msg, tagArgs(tags)...)
	panic(msg)
}
func (s *slogServerLogger) Fatal(msg string, tags ...tag.Tag) {
	s.l.Error(msg, tagArgs(tags)...)
	os.Exit(1)
}
func (s *slogServerLogger) With(tags ...tag.Tag) log.Logger {
	return &slogServerLogger{l: s.l.With(tagArgs(tags)...)}
}

func tagArgs(tags []tag.Tag) []any {
	args := make([]any, 0, len(tags))
	for _, t := range tags {
		args = append(args, slog.Any(t.Key(), t.Value()))
	}
	return args
}

// gatedLogger forwards to the server logger until it is muted; Fatal and
// Panic always pass.
type gatedLogger struct {
	inner log.Logger
	muted *atomic.Bool // shared with the loggers derived by With
}

var _ log.WithLogger = (*gatedLogger)(nil)

func newGatedLogger(inner log.Logger) *gatedLogger {
	if sl, ok := inner.(log.SkipLogger); ok {
		inner = sl.Skip(1) // report the caller, not this wrapper
	}
	return &gatedLogger{inner: inner, muted: new(atomic.Bool)}
}

func (g *gatedLogger) mute() { g.muted.Store(true) }

func (g *gatedLogger) Debug(msg string, tags ...tag.Tag) {
	if !g.muted.Load() {
		g.inner.Debug(msg, tags...)
	}
}
func (g *gatedLogger) Info(msg string, tags ...tag.Tag) {
	if !g.muted.Load() {
		g.inner.Info(msg, tags...)
	}
}
func (g *gatedLogger) Warn(msg string, tags ...tag.Tag) {
	if !g.muted.Load() {
		g.inner.Warn(msg, tags...)
	}
}
func (g *gatedLogger) Error(msg string, tags ...tag.Tag) {
	if !g.muted.Load() {
		g.inner.Error(msg, tags...)
	}
}
func (g *gatedLogger) DPanic(msg string, tags ...tag.Tag) {
	if !g.muted.Load() {
		g.inner.DPanic(msg, tags...)
	}
}
func (g *gatedLogger) Panic(msg string, tags ...tag.Tag) { g.inner.Panic(msg, tags...) }
func (g *gatedLogger) Fatal(msg string, tags ...tag.Tag) { g.inner.Fatal(msg, tags...) }
func (g *gatedLogger) With(tags ...tag.Tag) log.Logger {
	return &gatedLogger{inner: log.With(g.inner, tags...), muted: g.muted}
}
