package testsuite

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/azuritetest"
	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/faultproxy"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/workflows"
)

// faultRig is what a fault case may break: a loopback proxy in front of
// each IMAP server (the in-process pair and a real Dovecot pair) and of
// Azurite, the worker process, the Temporal server process, Dovecot and
// Azurite themselves.
type faultRig struct {
	t           *testing.T
	c           client.Client
	src, tgt    *faultproxy.Proxy // in front of the in-process servers
	dcSrc       *dovecottest.Instance
	dcTgt       *dovecottest.Instance
	dcSrcProxy  *faultproxy.Proxy
	dcTgtProxy  *faultproxy.Proxy
	azurite     *azuritetest.Server
	azProxy     *faultproxy.Proxy
	azBase      int64 // azProxy.SentUpstream() when the current case started
	temporal    *temporalProc
	worker      *exec.Cmd
	startWorker func() *exec.Cmd
}

// Where a case's organization lives.
const (
	onInProcess = iota // the in-process servers (source, target)
	onDovecot          // the real Dovecot pair (dcsource, dctarget)
	onStaged           // the in-process servers, with large items staged to Azurite
)

// faultCase breaks something while a transfer runs and returns when the
// fault is over (the network healed, a process restarted and answering).
// limit, when set, is the longest the copy may then take to move again.
type faultCase struct {
	name   string
	on     int
	limit  time.Duration
	inject func(r *faultRig) time.Time
}

func stallFor(p *faultproxy.Proxy, d time.Duration) time.Time {
	p.Stall(true)
	time.Sleep(d) // the length of the outage is the fault itself
	p.Stall(false)
	return time.Now()
}

func (r *faultRig) signalWorker(sig syscall.Signal, nextFirst bool) time.Time {
	var next *exec.Cmd
	if nextFirst { // a rolling restart: the next worker polls first
		next = r.startWorker()
		waitPollers(context.Background(), r.t, r.c, 2)
	}
	require.NoError(r.t, r.worker.Process.Signal(sig))
	_ = r.worker.Wait()
	gone := time.Now()
	if next == nil {
		next = r.startWorker() // a supervisor restarts the crashed worker
	}
	r.worker = next
	return gone
}

// restartDovecot SIGKILLs every process of inst (a crash: nothing runs to
// release a lock) and starts it again at once on the same mail, port and
// configuration; the fault ends when it greets again.
func (r *faultRig) restartDovecot(inst *dovecottest.Instance) time.Time {
	require.NoError(r.t, inst.Kill())
	down := time.Now()
	locks := inst.LockFiles()
	require.NoError(r.t, inst.Restart())
	r.t.Logf("Dovecot greeting again %s after its kill; lock files left: %v", time.Since(down).Round(10*time.Millisecond), locks)
	return time.Now()
}

// restartDovecotMaster SIGKILLs the master process of inst alone (its
// children are left to notice) and starts a new master on the same mail,
// port and configuration, retrying while the old processes still hold
// what it needs; the fault ends when it greets.
func (r *faultRig) restartDovecotMaster(inst *dovecottest.Instance) time.Time {
	require.NoError(r.t, inst.KillMaster())
	r.t.Logf("Dovecot master killed; lock files: %v", inst.LockFiles())
	deadline := time.Now().Add(3 * time.Minute)
	for attempt := 1; ; attempt++ {
		err := inst.Restart()
		if err == nil {
			if attempt > 1 {
				r.t.Logf("Dovecot started again at attempt %d", attempt)
			}
			return time.Now()
		}
		r.t.Logf("Dovecot restart attempt %d: %v", attempt, err)
		require.True(r.t, time.Now().Before(deadline), "Dovecot did not start again within 3 minutes of its master's kill")
		time.Sleep(time.Second) // an operator's retry interval
	}
}

// restartAzurite waits until a large item is being uploaded (the Azurite
// proxy has forwarded more than any ledger or report needs since the case
// started), then SIGKILLs Azurite and starts it again on the same port and
// data directory; the fault ends when it answers again.
func (r *faultRig) restartAzurite() time.Time {
	deadline := time.Now().Add(2 * time.Minute)
	for r.azProxy.SentUpstream()-r.azBase < stagedKillAfter {
		require.True(r.t, time.Now().Before(deadline), "no large item was uploaded to Azurite within 2 minutes")
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	down := time.Now()
	require.NoError(r.t, r.azurite.Restart(ctx))
	r.t.Logf("Azurite answering again %s after its SIGKILL (%d KiB of the case's uploads sent to it by then)", time.Since(down).Round(10*time.Millisecond), (r.azProxy.SentUpstream()-r.azBase)>>10)
	return time.Now()
}

// restartTemporal SIGKILLs the Temporal server process and starts it again
// on the same SQLite file and frontend port; the fault ends when the
// frontend answers and the namespace is there.
func (r *faultRig) restartTemporal() time.Time {
	r.temporal.kill(r.t)
	down := time.Now()
	r.temporal = startTemporal(r.t, r.temporal.addr, r.temporal.db)
	r.t.Logf("Temporal server serving again %s after its SIGKILL", time.Since(down).Round(10*time.Millisecond))
	return time.Now()
}

var faultCases = []faultCase{
	{name: "source connections cut mid-transfer", inject: func(r *faultRig) time.Time { r.src.Cut(); return time.Now() }},
	{name: "target connections cut mid-APPEND", inject: func(r *faultRig) time.Time { r.tgt.Cut(); return time.Now() }},
	{name: "both sides cut 5 times, 2 s apart", inject: func(r *faultRig) time.Time {
		for i := range 5 {
			if i > 0 {
				time.Sleep(2 * time.Second)
			}
			r.src.Cut()
			r.tgt.Cut()
		}
		return time.Now()
	}},
	{name: "source stalled 25 s (longer than the heartbeat timeout)", inject: func(r *faultRig) time.Time { return stallFor(r.src, 25*time.Second) }},
	{name: "target stalled 10 s", inject: func(r *faultRig) time.Time { return stallFor(r.tgt, 10*time.Second) }},
	{name: "source slowed to 5 KB/s for 10 s", inject: func(r *faultRig) time.Time {
		r.src.SetRate(5 << 10)
		time.Sleep(10 * time.Second)
		r.src.SetRate(faultRate)
		return time.Now()
	}},
	{name: "worker SIGKILL, restarted at once", limit: 30 * time.Second, inject: func(r *faultRig) time.Time { return r.signalWorker(syscall.SIGKILL, false) }},
	{name: "worker SIGTERM, next worker already polling", limit: 5 * time.Second, inject: func(r *faultRig) time.Time { return r.signalWorker(syscall.SIGTERM, true) }},
	{name: "Temporal server SIGKILLed, restarted on its SQLite file", limit: 30 * time.Second, inject: (*faultRig).restartTemporal},
	{name: "source Dovecot kill -9 (all processes), restarted", on: onDovecot, limit: 30 * time.Second,
		inject: func(r *faultRig) time.Time { return r.restartDovecot(r.dcSrc) }},
	{name: "target Dovecot kill -9 (all processes) mid-APPEND, restarted", on: onDovecot, limit: 30 * time.Second,
		inject: func(r *faultRig) time.Time { return r.restartDovecot(r.dcTgt) }},
	{name: "target Dovecot master alone kill -9 mid-APPEND, restarted", on: onDovecot, limit: 30 * time.Second,
		inject: func(r *faultRig) time.Time { return r.restartDovecotMaster(r.dcTgt) }},
	{name: "Azurite SIGKILLed while a large item is staged, restarted", on: onStaged, limit: 60 * time.Second, inject: (*faultRig).restartAzurite},
}

// faultRate slows each proxied connection so that every fault lands in a
// running transfer; the limit is lifted once the copy has moved again.
const faultRate = 100 << 10

// The staged case: items over stagedLimit go to Azurite, whose proxy is
// slowed to stagedRate so that an upload lasts seconds; Azurite is killed
// once stagedKillAfter bytes went to it in the case, more than the ledgers
// take, so in the middle of a large item.
const (
	stagedLimit     = 512 << 10
	stagedRate      = 64 << 10
	stagedKillAfter = 160 << 10
	stagedItems     = 2
	stagedContainer = "faults"
)

// TestFaultSuite breaks the network, the worker, the Temporal server,
// Dovecot and Azurite in the middle of transfers, one fault per
// organization, and measures how long the copy takes to move again once
// the fault is over (the target's message count, read over IMAP
// independently of mailshift, grows; for the staged case, or the number
// of items staged). Every organization must then validate, and its target
// must equal its source: nothing missing, nothing twice, nothing altered.
// The table it logs is docs/faults.md's.
func TestFaultSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and starts Temporal, Dovecot and Azurite")
	}
	dovecottest.RequireOrSkip(t)
	bin := buildWorker(t)
	spec := estate.Spec{Seed: 41, LargeItems: -1}
	var stagedSpec estate.Spec
	for i, fc := range faultCases {
		o := estate.OrgSpec{Code: fmt.Sprintf("FLT%d", i+1), Name: fc.name, Mailboxes: 1, MeanMessages: 400}
		if fc.on == onStaged {
			// Its own estate: Generate spreads large items over every
			// organization of a spec.
			stagedSpec = estate.Spec{Seed: 43, LargeItems: stagedItems, LargeItemSize: stagedLimit, Orgs: []estate.OrgSpec{o}}
			continue
		}
		spec.Orgs = append(spec.Orgs, o)
	}
	est := estate.Generate(spec)
	estStaged := estate.Generate(stagedSpec)
	orgOf := map[string]*estate.Org{}
	for _, e := range []*estate.Estate{est, estStaged} {
		for i := range e.Orgs {
			orgOf[e.Orgs[i].Code] = &e.Orgs[i]
		}
	}
	src, err := estate.StartServer(estate.ServerOptions{Name: "source"})
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	tgt, err := estate.StartServer(estate.ServerOptions{Name: "target"})
	require.NoError(t, err)
	t.Cleanup(func() { tgt.Close() })
	rig := &faultRig{t: t}
	var dcMailboxes []*estate.Mailbox
	for i, fc := range faultCases {
		org := orgOf[fmt.Sprintf("FLT%d", i+1)]
		for j := range org.Mailboxes {
			if fc.on == onDovecot {
				dcMailboxes = append(dcMailboxes, &org.Mailboxes[j])
			}
		}
	}
	for _, e := range []*estate.Estate{est, estStaged} {
		require.NoError(t, src.Load(e))
		require.NoError(t, tgt.AddUsers(e))
	}
	// Default mail_fsync: a crash then leaves what a production server
	// would leave on disk.
	rig.dcSrc = dovecottest.StartT(t, dovecottest.Options{Name: "faults-src"})
	rig.dcTgt = dovecottest.StartT(t, dovecottest.Options{Name: "faults-tgt"})
	require.NoError(t, dovecottest.LoadEstate(rig.dcSrc, dcMailboxes))
	for _, mb := range dcMailboxes {
		require.NoError(t, rig.dcTgt.AddUser(mb.User, mb.Password))
	}
	if _, err := azuritetest.Command(); err == nil || azuritetest.Required() {
		rig.azurite = azuritetest.Require(t)
	} else {
		t.Logf("%v: staging is local and the Azurite case is skipped", err)
	}

	proxy := func(upstream string) *faultproxy.Proxy {
		p, err := faultproxy.Start(upstream)
		require.NoError(t, err)
		t.Cleanup(func() { p.Close() })
		return p
	}
	rig.src, rig.tgt = proxy(src.Addr()), proxy(tgt.Addr())
	rig.dcSrcProxy, rig.dcTgtProxy = proxy(rig.dcSrc.Addr()), proxy(rig.dcTgt.Addr())
	if rig.azurite != nil {
		rig.azProxy = proxy(fmt.Sprintf("127.0.0.1:%d", rig.azurite.Port))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	// The Temporal server runs in a process of its own on a SQLite file,
	// so that it can be killed and started again on the same database.
	rig.temporal = startTemporal(t, freeLoopbackAddr(t), filepath.Join(t.TempDir(), "temporal", "faults.db"))
	rig.c, err = client.Dial(client.Options{HostPort: rig.temporal.addr, Logger: quietSDKLogger()})
	require.NoError(t, err)
	t.Cleanup(rig.c.Close)
	rig.startWorker = workerProcess(t, bin, rig.temporal.addr, faultsConfig(t, rig, append(est.Mailboxes(), estStaged.Mailboxes()...)))
	rig.worker = rig.startWorker()

	var table strings.Builder
	table.WriteString("| fault | copy moving again after | messages checked | missing, duplicated or altered |\n|---|---:|---:|---:|\n")
	// MAILSHIFT_FAULT_CASES, words separated by "|", runs only the cases
	// whose names contain one of them: to rerun some while working on them.
	only := os.Getenv("MAILSHIFT_FAULT_CASES")
	selected := func(name string) bool {
		for w := range strings.SplitSeq(strings.ToLower(only), "|") {
			if strings.Contains(strings.ToLower(name), w) {
				return true
			}
		}
		return false
	}
	for i, fc := range faultCases {
		if only != "" && !selected(fc.name) || fc.on == onStaged && rig.azurite == nil {
			continue
		}
		org := orgOf[fmt.Sprintf("FLT%d", i+1)]
		in := workflows.OrganizationInput{Code: org.Code, Name: org.Name, SourceEndpoint: "source", TargetEndpoint: "target"}
		srcAcc, tgtAcc := src.Account, tgt.Account
		imapProxies := []*faultproxy.Proxy{rig.src, rig.tgt}
		verifyOpts := estate.VerifyOptions{}
		switch fc.on {
		case onDovecot:
			in.SourceEndpoint, in.TargetEndpoint = "dcsource", "dctarget"
			srcAcc, tgtAcc = rig.dcSrc.Account, rig.dcTgt.Account
			imapProxies = []*faultproxy.Proxy{rig.dcSrcProxy, rig.dcTgtProxy}
		case onStaged:
			in.Policy.MaxMessageSize = stagedLimit
			verifyOpts.MaxMessageSize = stagedLimit
			rig.azProxy.SetRate(stagedRate)
			rig.azBase = rig.azProxy.SentUpstream()
		}
		for _, p := range imapProxies {
			p.SetRate(faultRate)
		}
		for _, mb := range org.Mailboxes {
			in.Mailboxes = append(in.Mailboxes, workflows.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
		}
		_, err := control.Start(ctx, rig.c, workflows.TaskQueue, in)
		require.NoError(t, err)
		waitTransfer(ctx, t, rig.c, org.Code, 0)

		progress := func() int {
			n := 0
			for j := range org.Mailboxes {
				c, err := estate.Count(ctx, tgtAcc(&org.Mailboxes[j]))
				require.NoError(t, err)
				n += c
			}
			if fc.on == onStaged {
				n += len(stagedItemsOf(ctx, t, rig, org))
			}
			return n
		}
		ended := fc.inject(rig)
		recovered := waitMoving(ctx, t, org.Code, progress, ended)
		took := recovered.Sub(ended)
		for _, p := range imapProxies {
			p.SetRate(0)
		}
		if fc.on == onStaged {
			rig.azProxy.SetRate(0)
		}

		ps, err := control.Watch(ctx, rig.c, []string{org.Code}, 250*time.Millisecond, nil)
		require.NoError(t, err)
		require.True(t, ps[0].Validated(), "%s (%s): %s %v %s", fc.name, org.Code, ps[0].Phase, ps[0].Failures, ps[0].Reason)
		var rep estate.Report
		want := 0
		for j := range org.Mailboxes {
			mb := &org.Mailboxes[j]
			o := verifyOpts
			if fc.on == onDovecot {
				o.MapFolder = dovecottest.FolderMap(mb, rig.dcSrc, rig.dcTgt)
			}
			r, err := estate.Verify(ctx, srcAcc(mb), tgtAcc(mb), o)
			require.NoError(t, err)
			rep.Add(r)
			for _, f := range mb.Folders {
				want += len(f.Messages)
			}
		}
		require.True(t, rep.OK(), "%s: %s", fc.name, rep.String())
		require.Equal(t, want, rep.Messages, fc.name)
		note := ""
		if fc.on == onStaged {
			checkStaged(ctx, t, rig, org)
			require.Equal(t, stagedItems, rep.ExpectedMissing, "%s: the large items are not in the target", fc.name)
			note = fmt.Sprintf(" (%d of them staged, each once, exact)", stagedItems)
		}
		t.Logf("%s: the copy moved again %s after the fault ended; %d messages exact%s", fc.name, took.Round(10*time.Millisecond), rep.Messages, note)
		fmt.Fprintf(&table, "| %s | %.1f s | %d%s | %d |\n", fc.name, took.Seconds(), rep.Messages, note, len(rep.Problems))
		if fc.limit > 0 {
			require.Less(t, took, fc.limit, "%s: recovery too slow", fc.name)
		}
	}
	t.Logf("fault table (docs/faults.md):\n%s", table.String())
}

// faultsConfig writes the worker configuration of the suite: the
// in-process pair as source and target, the Dovecot pair as dcsource and
// dctarget, all through their proxies, and staging in an Azurite container
// reached through its proxy, in small blocks so that an upload interrupted
// mid-item has blocks to resume from.
func faultsConfig(t *testing.T, r *faultRig, mbs []*estate.Mailbox) string {
	t.Helper()
	dir := t.TempDir()
	var pw strings.Builder
	for _, mb := range mbs {
		fmt.Fprintf(&pw, "%s:%s\n", mb.User, mb.Password)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw.String()), 0o600))
	stagingCfg := fmt.Sprintf("{kind: local, path: %q}", filepath.Join(dir, "staging"))
	if r.azurite != nil {
		conn := strings.Replace(r.azurite.ConnectionString(), fmt.Sprintf("127.0.0.1:%d", r.azurite.Port), r.azProxy.Addr(), 1)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "azure"), []byte(conn), 0o600))
		stagingCfg = fmt.Sprintf(`{kind: azblob, container: %s, connection_string: "file:%s/azure", create_container: true, block_size: 64KiB}`, stagedContainer, dir)
	}
	cfgPath := filepath.Join(dir, "mailshift.yaml")
	ep := func(addr string) string {
		return fmt.Sprintf("{url: %q, passwords: \"file:%s/passwd\", max_connections: 8}", "imap://"+addr, dir)
	}
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
endpoints:
  source: %s
  target: %s
  dcsource: %s
  dctarget: %s
staging: %s
`, ep(r.src.Addr()), ep(r.tgt.Addr()), ep(r.dcSrcProxy.Addr()), ep(r.dcTgtProxy.Addr()), stagingCfg)), 0o600))
	return cfgPath
}

// stagingStore is the suite's container, reached directly (not through
// the proxy) so that the test's own reads are neither slowed nor counted.
func stagingStore(t *testing.T, r *faultRig) *staging.Azure {
	t.Helper()
	st, err := staging.NewAzure(staging.AzureOptions{ConnectionString: r.azurite.ConnectionString(), Container: stagedContainer})
	require.NoError(t, err)
	return st
}

// stagedItemsOf lists the large items staged for org (not ledgers,
// reports or archives).
func stagedItemsOf(ctx context.Context, t *testing.T, r *faultRig, org *estate.Org) []staging.Object {
	t.Helper()
	objs, err := stagingStore(t, r).List(ctx, org.Code+"/")
	require.NoError(t, err)
	var items []staging.Object
	for _, o := range objs {
		if strings.HasSuffix(o.Name, ".eml") && !strings.Contains(o.Name, "/archive/") {
			items = append(items, o)
		}
	}
	return items
}

// checkStaged requires every large item of org to be staged exactly once,
// with the source's bytes (each read also re-checks the SHA-256 recorded
// at upload), and nothing else staged as an item.
func checkStaged(ctx context.Context, t *testing.T, r *faultRig, org *estate.Org) {
	t.Helper()
	want := map[[32]byte]int{}
	for _, mb := range org.Mailboxes {
		for _, f := range mb.Folders {
			for _, m := range f.Messages {
				if len(m.Raw) > stagedLimit {
					want[sha256.Sum256(m.Raw)]++
				}
			}
		}
	}
	st := stagingStore(t, r)
	got := map[[32]byte]int{}
	items := stagedItemsOf(ctx, t, r, org)
	for _, o := range items {
		rc, _, err := st.Get(ctx, o.Name)
		require.NoError(t, err, o.Name)
		b, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err, "reading staged %s", o.Name)
		got[sha256.Sum256(b)]++
	}
	require.Len(t, items, stagedItems, "staged items of %s", org.Code)
	require.Equal(t, want, got, "staged items of %s: each large item once, byte for byte", org.Code)
}

// waitMoving waits until progress() exceeds what it was when the fault
// ended, and returns when it saw that.
func waitMoving(ctx context.Context, t *testing.T, code string, progress func() int, since time.Time) time.Time {
	t.Helper()
	base := progress()
	deadline := since.Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if progress() > base {
			return time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: the copy did not move for 3 minutes after the fault ended", code)
	return time.Time{}
}

type transferAttempt struct {
	attempt int32
	started time.Time
}

// waitTransfer waits until org's mailbox has a TransferMailbox activity
// running as a regular activity, in an attempt after `after`.
func waitTransfer(ctx context.Context, t *testing.T, c client.Client, org string, after int32) transferAttempt {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND %s = '%s'", workflows.MailboxWorkflowName, workflows.SAOrganizationCode.GetName(), org),
		})
		require.NoError(t, err)
		for _, e := range resp.Executions {
			d, err := c.DescribeWorkflowExecution(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
			if err != nil {
				continue
			}
			for _, pa := range d.GetPendingActivities() {
				if pa.GetActivityType().GetName() == "TransferMailbox" && pa.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED && pa.GetAttempt() > after {
					return transferAttempt{attempt: pa.GetAttempt(), started: pa.GetLastStartedTime().AsTime()}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: no transfer attempt after %d started within 2 minutes", org, after)
	return transferAttempt{}
}

// waitPollers waits until n workers poll mailshift's activity task queue.
func waitPollers(ctx context.Context, t *testing.T, c client.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := c.DescribeTaskQueue(ctx, workflows.TaskQueue, enums.TASK_QUEUE_TYPE_ACTIVITY)
		require.NoError(t, err)
		ids := map[string]bool{}
		for _, p := range resp.GetPollers() {
			ids[p.GetIdentity()] = true
		}
		if len(ids) >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("fewer than %d workers poll %s after a minute", n, workflows.TaskQueue)
}
