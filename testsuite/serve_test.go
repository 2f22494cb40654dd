package testsuite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/embedded"
	"github.com/mailshift/mailshift/internal/estate"
)

// TestServeSurvivesSIGKILLMidMigration is issue #14's "real migrations on
// the embedded default", as a user runs it: `starter serve` as its own
// process on a SQLite file, `starter migrate` from the command line, two
// real Dovecot servers. serve is SIGKILLed while the mail is being copied
// and started again on the same database; the organization must carry on
// and finish, and the target, read over IMAP, must hold every source
// message once: per folder, nothing missing and no Message-ID twice.
func TestServeSurvivesSIGKILLMidMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the starter and runs it with an embedded Temporal server")
	}
	dovecottest.RequireOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := buildStarter(t)

	// One organization of mailboxes copied one at a time over few
	// connections: several seconds of copying, so the kill lands mid-way.
	est := estate.Generate(estate.Spec{Seed: 14, LargeItems: -1, Orgs: []estate.OrgSpec{
		{Code: "SRV", Name: "Serve Trust", Mailboxes: 3, MeanMessages: 1200},
	}})
	servers := dovecotServers(t, est)
	cfgPath := workerConfig(t, est, servers.srcURL, servers.tgtURL, 2, "")
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.csv")
	var csv strings.Builder
	csv.WriteString("organization,mailbox,source_user,target_user,wave,organization_name\n")
	for _, org := range est.Orgs {
		for _, mb := range org.Mailboxes {
			fmt.Fprintf(&csv, "%s,%s,%s,%s,1,%s\n", org.Code, mb.Address, mb.User, mb.User, org.Name)
		}
	}
	require.NoError(t, os.WriteFile(inv, []byte(csv.String()), 0o600))
	_, total, _ := est.Totals()

	db := filepath.Join(dir, "db", "serve.db")
	state := filepath.Join(dir, "state")
	t.Setenv("XDG_STATE_HOME", state) // for embedded.Lookup below; the children get it too
	addr, ui := freeLoopbackAddr(t), freeLoopbackAddr(t)
	serveArgs := []string{"serve", "--config", cfgPath, "--db", db, "--address", addr, "--ui", ui, "--metrics", "127.0.0.1:0"}

	first := startServe(t, ctx, bin, serveArgs...)
	require.Contains(t, first.banner(), "(new)", "a new database is announced as new")
	require.Contains(t, first.banner(), "http://"+ui)
	require.Contains(t, first.banner(), "payloads   in clear", "a configuration without payload_encryption is announced")
	sess, ok, err := embedded.Lookup(addr)
	require.NoError(t, err)
	require.True(t, ok, "serve records its session")
	require.Equal(t, embedded.Session{Kind: "serve", Address: addr, Namespace: "default", UIURL: "http://" + ui,
		Config: cfgPath, PID: first.cmd.Process.Pid, Started: sess.Started}, sess)

	out, err := runStarter(ctx, bin, "migrate", "--inventory", inv, "--config", cfgPath, "--address", addr,
		"--concurrency", "1", "--wait=false")
	require.NoError(t, err, "starter migrate: %s", out)
	require.Contains(t, out, "started SRV (3 mailboxes)")

	// Kill once a quarter of the mail is in the target, read over IMAP.
	var copied int
	require.NoError(t, pollWithin(ctx, 3*time.Minute, 50*time.Millisecond, func() (bool, error) {
		n, err := countMessages(ctx, servers.tgt, est)
		copied = n
		return n >= total/4, err
	}), "the target never got a quarter of the %d messages", total)
	first.kill(t)
	after, err := countMessages(ctx, servers.tgt, est)
	require.NoError(t, err)
	t.Logf("serve SIGKILLed with %d of %d messages in the target (%d when the kill was decided)", after, total, copied)
	require.Less(t, after, total, "the copy finished before the kill: make the estate bigger")

	restarted := time.Now()
	second := startServe(t, ctx, bin, serveArgs...)
	t.Logf("second start:\n%s", second.banner())
	require.Contains(t, second.banner(), "reused: 1 organization workflows, 1 running", "a reused database says what it holds")

	c, err := client.Dial(client.Options{HostPort: addr})
	require.NoError(t, err)
	defer c.Close()
	ps, err := control.Watch(ctx, c, []string{"SRV"}, 250*time.Millisecond, nil)
	require.NoError(t, err, "waiting for the organization after the restart")
	require.Len(t, ps, 1)
	require.True(t, ps[0].Validated(), "SRV: %s %v %s", ps[0].Phase, ps[0].Failures, ps[0].Reason)
	t.Logf("SRV validated %s after the restart", time.Since(restarted).Round(100*time.Millisecond))

	out, err = runStarter(ctx, bin, "status", "--address", addr)
	require.NoError(t, err, "starter status: %s", out)
	require.Contains(t, out, "SRV")

	// Independent checks, over IMAP: exact bytes, flags and dates as
	// multisets per folder, then Message-IDs per folder.
	rep, err := servers.verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, total, rep.Messages)
	missing, dups := compareMessageIDs(ctx, t, servers, est)
	require.Empty(t, missing, "messages missing from the target (folder: Message-ID)")
	require.Empty(t, dups, "messages twice in the target (folder: Message-ID)")

	// A clean stop: exit 0, and the session record goes with it.
	second.stop(t)
	_, ok, err = embedded.Lookup(addr)
	require.NoError(t, err)
	require.False(t, ok, "a cleanly stopped serve removes its session record")
}

// runStarter runs one starter command to its end and returns its output.
func runStarter(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// freeLoopbackAddr is a loopback address nobody listens on right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// serveProc is a running `starter serve`.
type serveProc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer // stdout and stderr
	done   chan struct{} // closed when the process has exited
	waitEr error
}

// startServe starts `starter serve` and waits until its banner is out,
// which it prints once the server, the UI and the worker run.
func startServe(t *testing.T, ctx context.Context, bin string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.out
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(p.out, sc.Text())
			if !signalled && strings.HasPrefix(sc.Text(), "Ctrl-C stops") {
				close(ready)
				signalled = true
			}
		}
		_, _ = io.Copy(p.out, stdout)
		p.waitEr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("starter serve (pid %d) output:\n%s", p.cmd.Process.Pid, p.out.String())
		}
	})
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("starter serve exited before it was ready (%v):\n%s", p.waitEr, p.out.String())
	case <-ctx.Done():
		t.Fatalf("starter serve not ready: %v\n%s", ctx.Err(), p.out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("starter serve not ready within 90 s:\n%s", p.out.String())
	}
	return p
}

func (p *serveProc) banner() string { return p.out.String() }

// kill SIGKILLs the process: nothing of it runs to release anything.
func (p *serveProc) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("starter serve still running 30 s after SIGKILL")
	}
}

// stop sends SIGTERM and requires a clean exit (status 0) within a minute.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
		require.NoError(t, p.waitEr, "starter serve after SIGTERM:\n%s", p.out.String())
	case <-time.After(time.Minute):
		t.Fatalf("starter serve still running a minute after SIGTERM:\n%s", p.out.String())
	}
	require.Contains(t, p.out.String(), "keeps every migration for the next start")
}

// pollWithin calls cond every interval until it reports true, fails, or
// within (or ctx) ends.
func pollWithin(ctx context.Context, within, interval time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// countMessages is how many messages inst holds for est's users.
func countMessages(ctx context.Context, inst *dovecottest.Instance, est *estate.Estate) (int, error) {
	n := 0
	for _, mb := range est.Mailboxes() {
		c, err := estate.Count(ctx, inst.Account(mb))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", mb.User, err)
		}
		n += c
	}
	return n, nil
}

// compareMessageIDs reads every folder's Message-IDs (ENVELOPE) on both
// sides and returns, per folder, the ones the target holds fewer times
// than the source (missing) and more times (duplicates). Messages without
// a Message-ID count under "<none>"; some have the same one on purpose,
// so multiplicities are compared, not sets.
func compareMessageIDs(ctx context.Context, t *testing.T, s mailServers, est *estate.Estate) (missing, dups []string) {
	t.Helper()
	for _, mb := range est.Mailboxes() {
		src, err := messageIDs(ctx, s.src.Account(mb))
		require.NoError(t, err, "source %s", mb.User)
		tgt, err := messageIDs(ctx, s.tgt.Account(mb))
		require.NoError(t, err, "target %s", mb.User)
		toTarget := dovecottest.FolderMap(mb, s.src, s.tgt)
		for folder, ids := range src {
			tf := toTarget(folder)
			for id, n := range ids {
				have := tgt[tf][id]
				for ; have < n; have++ {
					missing = append(missing, mb.User+" "+tf+": "+id)
				}
			}
		}
		for folder, ids := range tgt {
			srcFolder := ""
			for f := range src {
				if toTarget(f) == folder {
					srcFolder = f
				}
			}
			for id, n := range ids {
				for want := src[srcFolder][id]; n > want; n-- {
					dups = append(dups, mb.User+" "+folder+": "+id)
				}
			}
		}
	}
	return missing, dups
}

// messageIDs maps each selectable folder ("/"-delimited) of an account to
// its Message-IDs and how often each occurs.
func messageIDs(ctx context.Context, a estate.Account) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	err := withIMAP(ctx, a, func(c *imapclient.Client) error {
		folders, err := estate.ListFolders(c)
		if err != nil {
			return err
		}
		for _, f := range folders {
			if f.NoSelect {
				continue
			}
			ids := map[string]int{}
			out[f.Norm] = ids
			sel, err := c.Select(f.Name, &imap.SelectOptions{ReadOnly: true}).Wait()
			if err != nil {
				return fmt.Errorf("EXAMINE %q: %w", f.Name, err)
			}
			if sel.NumMessages == 0 {
				continue
			}
			msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true}).Collect()
			if err != nil {
				return fmt.Errorf("FETCH ENVELOPE in %q: %w", f.Name, err)
			}
			for _, m := range msgs {
				id := "<none>"
				if m.Envelope != nil && m.Envelope.MessageID != "" {
					id = m.Envelope.MessageID
				}
				ids[id]++
			}
		}
		return nil
	})
	return out, err
}

// withIMAP logs in to a, runs f and logs out; ctx bounds it all.
func withIMAP(ctx context.Context, a estate.Account, f func(*imapclient.Client) error) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", a.Addr)
	if err != nil {
		return err
	}
	c := imapclient.New(conn, nil)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	if err := c.Login(a.User, a.Password).Wait(); err != nil {
		return fmt.Errorf("LOGIN %s: %w", a.User, err)
	}
	if err := f(c); err != nil {
		return err
	}
	return c.Logout().Wait()
}
