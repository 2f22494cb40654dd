package testsuite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/devserver"
	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/workflows"
)

// buildWorker compiles the production worker for the test.
func buildWorker(t *testing.T) string { return buildBinary(t, "./worker") }

// buildStarter compiles the starter CLI for the test.
func buildStarter(t *testing.T) string { return buildBinary(t, "./starter") }

// binaries holds each binary built once for the whole test binary run:
// linking the starter (it embeds the Temporal server) takes about 40 s, and
// half a dozen tests run it. TestMain removes the directory.
var binaries struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
}

func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if bin, ok := binaries.built[pkg]; ok {
		return bin
	}
	if binaries.dir == "" {
		dir, err := os.MkdirTemp("", "mailshift-testsuite-bin-*")
		require.NoError(t, err)
		binaries.dir, binaries.built = dir, map[string]string{}
	}
	bin := filepath.Join(binaries.dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, out)
	binaries.built[pkg] = bin
	return bin
}

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// mailServers is a source and a target IMAP server with an estate loaded
// into the source; verify compares every mailbox independently of mailshift.
type mailServers struct {
	srcURL, tgtURL string
	verify         func(ctx context.Context) (estate.Report, error)
	// src and tgt are the Dovecot instances (nil for in-process servers).
	src, tgt *dovecottest.Instance
}

func inProcessServers(t *testing.T, est *estate.Estate) mailServers {
	src, tgt := startInProcess(t, est)
	return mailServers{srcURL: src.URL(), tgtURL: tgt.URL(), verify: func(ctx context.Context) (estate.Report, error) {
		return estate.VerifyEstate(ctx, est, src.Addr(), tgt.Addr(), estate.VerifyOptions{})
	}}
}

// startInProcess starts an in-process source loaded with est and a target
// with est's users, both closed when the test ends.
func startInProcess(t *testing.T, est *estate.Estate) (src, tgt *estate.Server) {
	t.Helper()
	src, err := estate.StartServer(estate.ServerOptions{Name: "source"})
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	tgt, err = estate.StartServer(estate.ServerOptions{Name: "target"})
	require.NoError(t, err)
	t.Cleanup(func() { tgt.Close() })
	require.NoError(t, src.Load(est))
	require.NoError(t, tgt.AddUsers(est))
	return src, tgt
}

// dovecotServers are two real Dovecot instances that differ the way real
// servers do: '.' versus '/' hierarchy and other special-use folder names.
func dovecotServers(t *testing.T, est *estate.Estate) mailServers {
	src := dovecottest.StartT(t, dovecottest.Options{Name: "crash-src", MailFsync: "never"})
	tgt := dovecottest.StartT(t, dovecottest.Options{Name: "crash-tgt", MailFsync: "never", Separator: '/',
		SpecialUse: map[imap.MailboxAttr]string{imap.MailboxAttrSent: "Sent Items", imap.MailboxAttrDrafts: "Drafts",
			imap.MailboxAttrTrash: "Deleted Items", imap.MailboxAttrJunk: "Junk Email", imap.MailboxAttrArchive: "Archive"}})
	require.NoError(t, dovecottest.LoadEstate(src, est.Mailboxes()))
	for _, mb := range est.Mailboxes() {
		require.NoError(t, tgt.AddUser(mb.User, mb.Password))
	}
	return mailServers{srcURL: src.URL(), tgtURL: tgt.URL(), src: src, tgt: tgt, verify: func(ctx context.Context) (estate.Report, error) {
		var all estate.Report
		for _, mb := range est.Mailboxes() {
			r, err := estate.Verify(ctx, src.Account(mb), tgt.Account(mb), estate.VerifyOptions{MapFolder: dovecottest.FolderMap(mb, src, tgt)})
			if err != nil {
				return all, err
			}
			all.Add(r)
		}
		return all, nil
	}}
}

// TestWorkerKilledRepeatedlyLosesAndDuplicatesNothing runs organizations on
// a real worker process and SIGKILLs it again and again while mailboxes are
// being copied. After a last, undisturbed worker finishes the job, the
// target must equal the source: nothing missing, nothing twice. It runs
// against the in-process servers and against two real Dovecot instances.
func TestWorkerKilledRepeatedlyLosesAndDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and starts an embedded Temporal server")
	}
	bin := buildWorker(t)
	for _, backend := range []struct {
		name  string
		start func(*testing.T, *estate.Estate) mailServers
	}{{"inprocess", inProcessServers}, {"dovecot", dovecotServers}} {
		t.Run(backend.name, func(t *testing.T) {
			spec := estate.Spec{Seed: 99, LargeItems: -1, Orgs: []estate.OrgSpec{
				{Code: "KIL", Name: "Kill Trust", Mailboxes: 4, MeanMessages: 700},
				{Code: "KGP", Name: "Kill Practice", Mailboxes: 2, MeanMessages: 900},
			}}
			est := estate.Generate(spec)
			servers := backend.start(t, est)
			killTest(t, bin, est, servers)
		})
	}
}

func killTest(t *testing.T, bin string, est *estate.Estate, servers mailServers) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cfgPath := workerConfig(t, est, servers.srcURL, servers.tgtURL, 8, "")
	srv, c := embeddedServer(t, ctx)

	startWorker := workerProcess(t, bin, srv.FrontendAddr(), cfgPath)

	var codes []string
	for _, org := range est.Orgs {
		in := workflows.OrganizationInput{Code: org.Code, Name: org.Name, SourceEndpoint: "source", TargetEndpoint: "target",
			Concurrency: 1, HeartbeatTimeout: 2 * time.Second}
		for _, mb := range org.Mailboxes {
			in.Mailboxes = append(in.Mailboxes, workflows.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
		}
		_, err := control.Start(ctx, c, workflows.TaskQueue, in)
		require.NoError(t, err)
		codes = append(codes, org.Code)
	}

	// Kill the worker whenever a transfer it started is in flight, up to 6
	// times; a short, varying delay lands each kill inside one (mid-stream,
	// mid-APPEND pipeline, mid-ledger).
	w, kills := killDuringTransfers(ctx, t, c, codes, startWorker, 6, 1200, func(k int) time.Duration {
		return time.Duration(30+40*k) * time.Millisecond
	})
	t.Logf("worker killed %d times mid-transfer", kills)
	require.GreaterOrEqual(t, kills, 4, "the test must hit running transfers")

	ps, err := control.Watch(ctx, c, codes, 250*time.Millisecond, nil)
	require.NoError(t, err)
	_ = w.Process.Signal(syscall.SIGTERM)
	_ = w.Wait()
	for _, p := range ps {
		require.True(t, p.Validated(), "%s: %s %v %s", p.Organization, p.Phase, p.Failures, p.Reason)
	}
	rep, err := servers.verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	_, total, _ := est.Totals()
	require.Equal(t, total, rep.Messages)
}

// killDuringTransfers starts a worker and SIGKILLs it whenever a transfer
// it started is in flight, after delay(kills), then starts the next, up to
// maxKills times or polls attempts, or until every organization of codes
// has ended. Progress queries need a live worker, so it looks at pending
// activities instead. It returns the last worker, still running.
func killDuringTransfers(ctx context.Context, t *testing.T, c client.Client, codes []string, startWorker func() *exec.Cmd,
	maxKills, polls int, delay func(kills int) time.Duration) (*exec.Cmd, int) {
	kills := 0
	w := startWorker()
	since := time.Now()
	for attempt := 0; attempt < polls && kills < maxKills; attempt++ {
		if attempt%40 == 39 && allClosed(ctx, c, codes) {
			break // finished before enough kills: the caller fails, quickly
		}
		if transferRunningSince(ctx, t, c, since) {
			time.Sleep(delay(kills)) // inside the transfer
			require.NoError(t, w.Process.Signal(syscall.SIGKILL))
			_ = w.Wait()
			kills++
			w = startWorker()
			since = time.Now()
			continue
		}
		time.Sleep(25 * time.Millisecond)
	}
	return w, kills
}

// workerProcess returns a function that starts the production worker
// binary against the Temporal server at address with the configuration at
// cfgPath; every process it starts is killed when the test ends.
func workerProcess(t *testing.T, bin, address, cfgPath string) func() *exec.Cmd {
	return func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+address, "TEMPORAL_NAMESPACE=default",
			"MAILSHIFT_CONFIG="+cfgPath, "MAILSHIFT_LOG_LEVEL=warn", "MAILSHIFT_METRICS_ADDR=127.0.0.1:0")
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		return cmd
	}
}

// workerConfig writes an owner-only password file for est's users and a
// worker configuration for the two endpoints; extra is appended YAML.
func workerConfig(t *testing.T, est *estate.Estate, srcURL, tgtURL string, maxConns int, extra string) string {
	t.Helper()
	dir := t.TempDir()
	var pw strings.Builder
	for _, mb := range est.Mailboxes() {
		fmt.Fprintf(&pw, "%s:%s\n", mb.User, mb.Password)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw.String()), 0o600))
	cfgPath := filepath.Join(dir, "mailshift.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
endpoints:
  source: {url: %q, passwords: "file:%s/passwd", max_connections: %d}
  target: {url: %q, passwords: "file:%s/passwd", max_connections: %d}
staging: {kind: local, path: %q}
%s`, srcURL, dir, maxConns, tgtURL, dir, maxConns, filepath.Join(dir, "staging"), extra)), 0o600))
	return cfgPath
}

// embeddedServer starts a Temporal server for one test, with a client.
func embeddedServer(t *testing.T, ctx context.Context) (*devserver.Server, client.Client) {
	t.Helper()
	srv, err := devserver.Start(ctx, devserver.Options{FrontendAddr: "127.0.0.1:0", UIAddr: "off", SearchAttributes: workflows.SearchAttributeTypes()})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop() })
	c, err := srv.Client(ctx, client.Options{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return srv, c
}

// allClosed reports whether every organization's workflow has finished.
func allClosed(ctx context.Context, c client.Client, codes []string) bool {
	for _, code := range codes {
		d, err := c.DescribeWorkflowExecution(ctx, workflows.OrganizationWorkflowID(code), "")
		if err != nil || d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return false
		}
	}
	return true
}

// transferRunningSince reports whether a TransferMailbox activity was
// started (by the current worker) after since and is still running.
func transferRunningSince(ctx context.Context, t *testing.T, c client.Client, since time.Time) bool {
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.MailboxWorkflowName), PageSize: 20,
	})
	if err != nil {
		return false
	}
	for _, e := range resp.Executions {
		d, err := c.DescribeWorkflowExecution(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
		if err != nil {
			continue
		}
		for _, pa := range d.GetPendingActivities() {
			if pa.GetActivityType().GetName() == "TransferMailbox" && pa.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED &&
				pa.GetLastStartedTime().AsTime().After(since) {
				return true
			}
		}
		// A small mailbox's pass runs as a local activity inside the
		// workflow task (see workflows.Mailbox): a started task of a
		// transfer pass is a transfer in flight.
		var summary string
		_ = converter.GetDefaultDataConverter().FromPayload(d.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary)
		wt := d.GetPendingWorkflowTask()
		if wt.GetState() == enums.PENDING_WORKFLOW_TASK_STATE_STARTED && wt.GetStartedTime().AsTime().After(since) &&
			slices.ContainsFunc(report.TransferPasses, func(p string) bool { return strings.HasSuffix(summary, ": "+p) }) {
			return true
		}
	}
	return false
}
