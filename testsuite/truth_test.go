package testsuite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/workflows"
)

// Issue #13: after crashes the message counters counted only the attempt
// that finished, or an interrupted pass twice. They come from the ledgers
// (and validations) now: after a few worker kills, the organization's
// messages equal what an independent IMAP verification finds in the
// target.
func TestCountersAfterKillsMatchTheTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and starts an embedded Temporal server")
	}
	bin := buildWorker(t)
	est := estate.Generate(estate.Spec{Seed: 31, LargeItems: -1, Orgs: []estate.OrgSpec{
		{Code: "CNT", Name: "Count Trust", Mailboxes: 2, MeanMessages: 800},
	}})
	servers := inProcessServers(t, est)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfgPath := workerConfig(t, est, servers.srcURL, servers.tgtURL, 4, "")
	srv, c := embeddedServer(t, ctx)
	startWorker := workerProcess(t, bin, srv.FrontendAddr(), cfgPath)
	org := est.Orgs[0]
	in := workflows.OrganizationInput{Code: org.Code, Name: org.Name, SourceEndpoint: "source", TargetEndpoint: "target",
		Concurrency: 1, HeartbeatTimeout: 2 * time.Second, LocalPassBudget: -1}
	for _, mb := range org.Mailboxes {
		in.Mailboxes = append(in.Mailboxes, workflows.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
	}
	_, err := control.Start(ctx, c, workflows.TaskQueue, in)
	require.NoError(t, err)

	w, kills := killDuringTransfers(ctx, t, c, []string{org.Code}, startWorker, 3, 600, func(k int) time.Duration {
		return time.Duration(40+60*k) * time.Millisecond
	})
	t.Logf("worker killed %d times mid-transfer", kills)
	require.GreaterOrEqual(t, kills, 2, "the test must hit running transfers")
	ps, err := control.Watch(ctx, c, []string{org.Code}, 250*time.Millisecond, nil)
	require.NoError(t, err)
	_ = w.Process.Signal(syscall.SIGTERM)
	_ = w.Wait()
	p := ps[0]
	require.True(t, p.Validated(), "%s %v %s", p.Phase, p.Failures, p.Reason)
	rep, err := servers.verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	t.Logf("passes' results: %d messages, %d bytes; ledgers: %d messages, %d bytes; target: %d messages, %d bytes",
		p.Messages, p.Bytes, p.TargetMessages, p.TargetBytes, rep.Messages, rep.Bytes)
	require.Equal(t, int64(rep.Messages), p.TargetMessages, "the organization's messages in the target are what is there")
	require.Equal(t, rep.Bytes, p.TargetBytes, "and so are their bytes")
}

// Issue #13: migrate on a running organization attached silently, ignored
// a mailbox added to the inventory and a new --concurrency, and printed
// "started". Now it says what it attached to, adds the mailbox (which is
// then migrated: verified independently), applies the concurrency, and
// refuses with reasons what it cannot change, dropped mailboxes included.
func TestMigrateOnARunningOrganization(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and the starter and starts an embedded Temporal server")
	}
	worker, starter := buildWorker(t), buildStarter(t)
	est := estate.Generate(estate.Spec{Seed: 32, LargeItems: -1, Orgs: []estate.OrgSpec{
		{Code: "RUN", Name: "Running Trust", Mailboxes: 3, MeanMessages: 40},
	}})
	servers := inProcessServers(t, est)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfgPath := workerConfig(t, est, servers.srcURL, servers.tgtURL, 4, "")
	srv, c := embeddedServer(t, ctx)
	w := workerProcess(t, worker, srv.FrontendAddr(), cfgPath)()
	defer func() { _ = w.Process.Signal(syscall.SIGTERM); _ = w.Wait() }()
	org := est.Orgs[0]
	mbs := org.Mailboxes
	inventory := func(name string, rows ...estate.Mailbox) string {
		var b strings.Builder
		b.WriteString("organization,mailbox,source_user,target_user,wave,organization_name\n")
		for _, mb := range rows {
			fmt.Fprintf(&b, "%s,%s,%s,%s,1,%s\n", org.Code, mb.Address, mb.User, mb.User, org.Name)
		}
		path := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
		return path
	}
	addr := srv.FrontendAddr()
	out, err := runStarter(ctx, starter, "migrate", "--inventory", inventory("first.csv", mbs[0], mbs[1]), "--config", cfgPath,
		"--address", addr, "--approval", "manual", "--concurrency", "1", "--wait=false", "--worker-wait=0")
	require.NoError(t, err, out)
	require.Contains(t, out, "started RUN (2 mailboxes)")
	require.NoError(t, pollWithin(ctx, 2*time.Minute, 100*time.Millisecond, func() (bool, error) {
		p, err := control.Progress(ctx, c, org.Code)
		return err == nil && p.Phase == workflows.PhaseAwaitingCutover, nil
	}), "RUN never reached AwaitingCutover")

	// mbs[0] dropped, mbs[2] added, concurrency and approval changed.
	out, err = runStarter(ctx, starter, "migrate", "--inventory", inventory("second.csv", mbs[1], mbs[2]), "--config", cfgPath,
		"--address", addr, "--approval", "auto", "--concurrency", "3", "--operator", "tester", "--wait=false", "--worker-wait=0")
	t.Logf("second migrate:\n%s", out)
	require.Error(t, err, "refused changes make migrate fail")
	require.NotContains(t, out, "started RUN")
	require.Contains(t, out, "attached to running organization RUN (not started again): workflow org/RUN run ")
	require.Contains(t, out, "phase AwaitingCutover")
	require.Contains(t, out, "applied: concurrency 1 -> 3 through set-concurrency, operator tester")
	require.Contains(t, out, "refused: --approval auto: the running organization has manual")
	require.Contains(t, out, "approve-cutover")
	require.Contains(t, out, "no longer in the inventory but stay in the running organization (it never drops a mailbox): "+mbs[0].Address)
	require.Contains(t, out, "added: 1 mailbox(es) through add-mailboxes (now 3, phase AwaitingCutover), operator tester: "+mbs[2].Address)

	p, err := control.Progress(ctx, c, org.Code)
	require.NoError(t, err)
	require.Equal(t, 3, p.Concurrency)
	require.Equal(t, 3, p.MailboxesTotal)

	// Adding it again is refused by the workflow, with the reason.
	out, err = runStarter(ctx, starter, "migrate", "--inventory", inventory("third.csv", mbs[0], mbs[1], mbs[2]), "--config", cfgPath,
		"--address", addr, "--wait=false", "--worker-wait=0", "--operator", "tester")
	require.NoError(t, err, "nothing to change: %s", out)
	require.Contains(t, out, "attached to running organization RUN")
	require.NotContains(t, out, "added:")

	_, err = control.ApproveCutover(ctx, c, org.Code, "tester", "CAB-13")
	require.NoError(t, err)
	ps, err := control.Watch(ctx, c, []string{org.Code}, 250*time.Millisecond, nil)
	require.NoError(t, err)
	require.True(t, ps[0].Validated(), "%s %v %s", ps[0].Phase, ps[0].Failures, ps[0].Reason)
	require.Equal(t, 3, ps[0].MailboxesDone, "the added mailbox is migrated and validated")
	rep, err := servers.verify(ctx) // every mailbox of the estate, the added one included
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, int64(rep.Messages), ps[0].TargetMessages)

	// Once it has ended, add-mailboxes is refused with the reason.
	_, err = control.AddMailboxes(ctx, c, org.Code, workflows.AddMailboxesRequest{Operator: "tester",
		Mailboxes: []workflows.MailboxSpec{{Address: "late@run.example", SourceUser: "late", TargetUser: "late"}}})
	require.Error(t, err)
}
