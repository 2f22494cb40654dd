package devserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mailshift/mailshift/internal/codec"
)

var (
	testKeyOrg   = temporal.NewSearchAttributeKeyKeyword("OrganizationCode")
	testKeyPhase = temporal.NewSearchAttributeKeyKeyword("MigrationPhase")
	testKeyTotal = temporal.NewSearchAttributeKeyInt64("MailboxesTotal")
)

func testSearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		"OrganizationCode": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"MigrationPhase":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"MailboxesTotal":   enumspb.INDEXED_VALUE_TYPE_INT,
	}
}

// testPhaseWorkflow sets MigrationPhase and returns.
func testPhaseWorkflow(ctx workflow.Context, phase string) (string, error) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, testKeyPhase.ValueSet(phase)); err != nil {
		return "", err
	}
	return "phase=" + phase, nil
}

// testWaitWorkflow blocks until it is signalled, so it stays open across restarts.
func testWaitWorkflow(ctx workflow.Context) error {
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	return nil
}

// testLogBuffer collects slog output from server goroutines, which may
// outlive a test, so it must not log through t.
type testLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *testLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *testLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	s, err := Start(ctx, opts)
	require.NoError(t, err)
	t.Logf("devserver ready in %v: frontend %s, ui %q", time.Since(begin).Round(time.Millisecond), s.FrontendAddr(), s.UIURL())
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func testClient(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := s.Client(context.Background(), client.Options{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestInMemoryServerWithUI(t *testing.T) {
	s := startTestServer(t, Options{
		FrontendAddr:     "127.0.0.1:0",
		UIAddr:           "127.0.0.1:0",
		SearchAttributes: testSearchAttributes(),
	})
	require.Equal(t, "default", s.Namespace())
	host, port, err := net.SplitHostPort(s.FrontendAddr())
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)
	require.NotEqual(t, "0", port)
	require.True(t, strings.HasPrefix(s.UIURL(), "http://127.0.0.1:"), s.UIURL())
	require.False(t, strings.HasSuffix(s.UIURL(), ":0"), s.UIURL())
	c := testClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("search attributes", func(t *testing.T) {
		resp, err := c.OperatorService().ListSearchAttributes(ctx,
			&operatorservice.ListSearchAttributesRequest{Namespace: s.Namespace()})
		require.NoError(t, err)
		for name, typ := range testSearchAttributes() {
			assert.Equal(t, typ, resp.GetCustomAttributes()[name], name)
		}
	})

	t.Run("ui", func(t *testing.T) {
		resp, err := http.Get(s.UIURL() + "/")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
		assert.Contains(t, strings.ToLower(string(body)), "<!doctype html>")

		resp, err = http.Get(s.UIURL() + "/api/v1/namespaces")
		require.NoError(t, err)
		body, _ = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Contains(t, resp.Header.Get("Content-Type"), "application/json")
		var v any
		require.NoError(t, json.Unmarshal(body, &v), string(body))
		assert.Contains(t, string(body), `"default"`)
	})

	t.Run("workflow and typed search attributes", func(t *testing.T) {
		const taskQueue = "devserver-test"
		w := worker.New(c, taskQueue, worker.Options{})
		w.RegisterWorkflow(testPhaseWorkflow)
		require.NoError(t, w.Start())
		defer w.Stop()

		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                    "devserver-test-phase",
			TaskQueue:             taskQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(testKeyOrg.ValueSet("ACME"), testKeyTotal.ValueSet(42)),
		}, testPhaseWorkflow, "copying")
		require.NoError(t, err)
		var out string
		require.NoError(t, run.Get(ctx, &out))
		require.Equal(t, "phase=copying", out)

		// Visibility is updated asynchronously: poll briefly.
		query := "OrganizationCode = 'ACME' AND MigrationPhase = 'copying' AND MailboxesTotal >= 40"
		var found []string
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: s.Namespace(), Query: query,
			})
			require.NoError(t, err)
			found = found[:0]
			for _, e := range resp.GetExecutions() {
				found = append(found, e.GetExecution().GetWorkflowId())
			}
			if len(found) > 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		require.Equal(t, []string{"devserver-test-phase"}, found)

		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s.Namespace(), Query: "OrganizationCode = 'OTHER'",
		})
		require.NoError(t, err)
		assert.Empty(t, resp.GetExecutions())
	})

	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop(), "Stop must be idempotent")
	_, err = net.DialTimeout("tcp", s.FrontendAddr(), time.Second)
	require.Error(t, err, "frontend still listening after Stop")
}

func TestPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	addr := busy.Addr().String()

	_, err = Start(context.Background(), Options{FrontendAddr: addr, UIAddr: "off"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), addr)
	assert.Contains(t, err.Error(), "already in use")
	assert.Contains(t, err.Error(), "Temporal frontend")
	t.Log(err)

	_, err = Start(context.Background(), Options{FrontendAddr: "127.0.0.1:0", UIAddr: addr})
	require.Error(t, err)
	assert.Contains(t, err.Error(), addr)
	assert.Contains(t, err.Error(), "Web UI")
	t.Log(err)

	_, err = Start(context.Background(), Options{FrontendAddr: "example.com:7233"})
	require.Error(t, err)
}

func TestFileBackedRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "state", "dev.db")
	logs := &testLogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("devserver logs:\n%s", logs.String())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Run 1: new file, only one of the search attributes.
	s := startTestServer(t, Options{
		FrontendAddr: "127.0.0.1:0",
		UIAddr:       "off",
		DBPath:       dbPath,
		SearchAttributes: map[string]enumspb.IndexedValueType{
			"OrganizationCode": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
		Logger: logger,
	})
	require.Empty(t, s.UIURL())
	_, err := os.Stat(dbPath)
	require.NoError(t, err, "database file not created")
	_, err = os.Stat(dbPath + "-wal")
	require.NoError(t, err, "database is not in WAL mode")
	_, err = Start(ctx, Options{FrontendAddr: "127.0.0.1:0", UIAddr: "off", DBPath: dbPath})
	require.ErrorContains(t, err, "already used by another running server")

	c := testClient(t, s)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    "devserver-test-persisted",
		TaskQueue:             "devserver-test-nobody-polls",
		TypedSearchAttributes: temporal.NewSearchAttributes(testKeyOrg.ValueSet("ACME")),
	}, testWaitWorkflow)
	require.NoError(t, err)
	c.Close()
	require.NoError(t, s.Stop())

	// Run 2: same file, more search attributes: the missing ones are added.
	s = startTestServer(t, Options{
		FrontendAddr:     "127.0.0.1:0",
		UIAddr:           "off",
		DBPath:           dbPath,
		SearchAttributes: testSearchAttributes(),
		Logger:           logger,
	})
	c = testClient(t, s)
	desc, err := c.DescribeWorkflowExecution(ctx, "devserver-test-persisted", run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
	resp, err := c.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: s.Namespace()})
	require.NoError(t, err)
	for name, typ := range testSearchAttributes() {
		assert.Equal(t, typ, resp.GetCustomAttributes()[name], name)
	}
	require.NoError(t, s.Stop())
	assert.Contains(t, logs.String(), "added search attributes")

	// Run 3: a search attribute with another type than stored is an error.
	_, err = Start(ctx, Options{
		FrontendAddr: "127.0.0.1:0",
		UIAddr:       "off",
		DBPath:       dbPath,
		SearchAttributes: map[string]enumspb.IndexedValueType{
			"MailboxesTotal": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
		Logger: logger,
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MailboxesTotal")
	t.Log(err)
}

func TestConcurrentServers(t *testing.T) {
	var wg sync.WaitGroup
	servers := make([]*Server, 2)
	errs := make([]error, 2)
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ui := "off"
			if i == 0 {
				ui = "127.0.0.1:0"
			}
			servers[i], errs[i] = Start(ctx, Options{FrontendAddr: "127.0.0.1:0", UIAddr: ui, Namespace: "ns-" + string(rune('a'+i))})
		}()
	}
	wg.Wait()
	for i, s := range servers {
		require.NoError(t, errs[i])
		t.Cleanup(func() { _ = s.Stop() })
	}
	require.NotEqual(t, servers[0].FrontendAddr(), servers[1].FrontendAddr())
	for _, s := range servers {
		c := testClient(t, s)
		_, err := c.WorkflowService().DescribeNamespace(context.Background(),
			&workflowservice.DescribeNamespaceRequest{Namespace: s.Namespace()})
		require.NoError(t, err, s.Namespace())
	}
	for _, s := range servers {
		require.NoError(t, s.Stop())
	}

	// The server's own SDK workers must be gone after Stop (the devserver
	// disables the system workers the server never stops); leftover pollers
	// would keep retrying and logging for the rest of the process.
	deadline := time.Now().Add(3 * time.Second)
	var stacks string
	for {
		buf := make([]byte, 8<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "internal.(*baseWorker).runPoller") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	assert.NotContains(t, stacks, "internal.(*baseWorker).runPoller", "SDK worker pollers still running after Stop")
}

// With a codec the Web UI is configured with a loopback codec endpoint
// that decrypts for the UI's origin and no other.
func TestUICodecEndpoint(t *testing.T) {
	c, err := codec.New("k1", map[string][]byte{"k1": bytes.Repeat([]byte{7}, 32)})
	require.NoError(t, err)
	s := startTestServer(t, Options{FrontendAddr: "127.0.0.1:0", UIAddr: "127.0.0.1:0", Codec: c})
	require.NotEmpty(t, s.CodecURL())

	resp, err := http.Get(s.UIURL() + "/api/v1/settings")
	require.NoError(t, err)
	var settings struct{ Codec struct{ Endpoint string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&settings))
	resp.Body.Close()
	require.Equal(t, s.CodecURL(), settings.Codec.Endpoint, "the UI is told where to decode")

	enc, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"alice@rxh.example"`)}})
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, s.CodecURL()+"/decode", bytes.NewReader(body))
	req.Header.Set("Origin", s.UIURL())
	req.Header.Set("X-Namespace", s.Namespace())
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	require.Equal(t, s.UIURL(), resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, string(out), base64.StdEncoding.EncodeToString([]byte(`"alice@rxh.example"`)))

	url := s.CodecURL()
	require.NoError(t, s.Stop())
	_, err = http.Post(url+"/decode", "application/json", bytes.NewReader(body))
	require.Error(t, err, "the codec endpoint stops with the server")
}
