package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/workflows"
)

// The "migrate" tool is what a user runs: `starter migrate` on an
// inventory of the corpus's mailboxes (one organization), end to end,
// against `starter serve` (the embedded Temporal server and a worker),
// which is started and ready before the clock starts. It is timed three
// times: the first migration, a re-run with nothing changed, and a re-run
// after every target folder was emptied.

const benchOrg = "BENCH"

// migrateRun is what one timed `starter migrate` did.
type migrateRun struct {
	label              string
	wall, cpu, machine time.Duration
	// serveCPU and serversCPU split machine: what starter serve (Temporal
	// server and worker) and both Dovecots (logins included) used.
	serveCPU, serversCPU time.Duration
	rssKB                int64
	// phases are the organization's phases in order with their durations,
	// from its workflow history; approvalToSwitch runs from the cutover's
	// start (auto approval) to the routing switch's completion.
	phases           []phaseTime
	approvalToSwitch time.Duration
	// bodyBytes are the message-body bytes both Dovecots sent during the
	// run (their per-session body_bytes).
	bodyBytes int64
	result    string
	// check is the byte-for-byte check after the emptied-target run.
	check string
}

type phaseTime struct {
	phase string
	took  time.Duration
}

// measureMigrate measures the migrate tool into r.
func measureMigrate(o options, src, tgt *dovecottest.Instance, users, pws []string, dir string, r row) row {
	fail := func(err error) row { r.failed = err.Error(); return r }
	// The servers' logs outlive them in the work directory (--keep).
	defer func() {
		for name, inst := range map[string]*dovecottest.Instance{"dovecot-source.log": src, "dovecot-target.log": tgt} {
			if b, err := os.ReadFile(inst.LogPath()); err == nil {
				_ = os.WriteFile(filepath.Join(dir, name), b, 0o644)
			}
		}
	}()
	bin := o.starter
	cfg, inv, err := migrateFiles(dir, o, src, tgt, users, pws)
	if err != nil {
		return fail(err)
	}
	addr, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	serve := exec.Command(bin, "serve", "--config", cfg, "--db", filepath.Join(dir, "serve.db"), "--address", addr, "--ui", "off", "--metrics", "off")
	serve.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"))
	serveLog, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return fail(err)
	}
	defer serveLog.Close()
	serve.Stdout, serve.Stderr = serveLog, serveLog
	if err := serve.Start(); err != nil {
		return fail(err)
	}
	defer func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = serve.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = serve.Process.Kill()
			<-done
		}
	}()
	ctx := context.Background()
	cl, err := waitServe(ctx, addr, 3*time.Minute)
	if err != nil {
		return fail(fmt.Errorf("starter serve: %w (log %s)", err, serveLog.Name()))
	}
	defer cl.Close()
	r.notes = append(r.notes, fmt.Sprintf("`starter migrate` with its defaults (8 mailboxes at once, automatic approval, validation at the worker's default level) on one organization of %d mailboxes, against `starter serve` (embedded Temporal server on SQLite and a worker, %d folders per mailbox at once, %d APPENDs in flight), started and ready before the clock",
		len(users), o.lanes, o.window))

	migrate := func(label string) (migrateRun, error) {
		m := migrateRun{label: label}
		// The user's defaults: concurrency, approval and validation level.
		cmd := exec.Command(bin, "migrate", "--inventory", inv, "--config", cfg, "--address", addr, "--worker-wait", "0")
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"))
		srcOff, tgtOff := fileSize(src.LogPath()), fileSize(tgt.LogPath())
		syscall.Sync()
		busy, serve0, servers0 := machineBusy(), processCPU(serve.Process.Pid), groupCPU(src.PID())+groupCPU(tgt.PID())
		wall, rss, cpu, out, err := runCmds([]*exec.Cmd{cmd}, 1, filepath.Join(dir, label+".log"))
		m.machine = machineBusy() - busy
		m.serveCPU = processCPU(serve.Process.Pid) - serve0
		m.serversCPU = groupCPU(src.PID()) + groupCPU(tgt.PID()) - servers0
		m.wall, m.cpu, m.rssKB = wall, cpu, rss
		if err != nil {
			return m, fmt.Errorf("%s: %v: %s", label, err, tailString(out, 400))
		}
		// The worker keeps connections logged in between a mailbox's
		// passes, and Dovecot logs a session's body bytes when it ends:
		// end them all now, off the clock (the next run starts with none,
		// as a run minutes later would: activities.DefaultKeepIdle).
		for _, inst := range []*dovecottest.Instance{src, tgt} {
			if out, err := inst.Doveadm("kick", "*"); err != nil {
				return m, fmt.Errorf("%s: doveadm kick: %v: %s", label, err, out)
			}
		}
		m.bodyBytes = bodyBytesSince(src.LogPath(), srcOff) + bodyBytesSince(tgt.LogPath(), tgtOff)
		m.phases, m.approvalToSwitch, m.result, err = phasesOf(ctx, cl)
		if err != nil {
			return m, fmt.Errorf("%s: reading its history: %w", label, err)
		}
		log.Printf("migrate: %s in %v (%s), %d body bytes fetched from the servers, phases %v, approval to routing switch %v, CPU: machine %v, Dovecots %v, serve %v, starter %v",
			label, wall.Round(time.Millisecond), m.result, m.bodyBytes, m.phases, m.approvalToSwitch.Round(time.Millisecond), m.machine, m.serversCPU, m.serveCPU, m.cpu)
		return m, nil
	}
	first, err := migrate("first")
	if err != nil {
		return fail(err)
	}
	r.wall, r.cpu, r.machine, r.rssKB = first.wall, first.cpu, first.machine, first.rssKB
	r.migrateRuns = append(r.migrateRuns, first)
	r.notes = append(r.notes, "peak RSS: the starter migrate process; the worker runs inside starter serve, whose CPU is in Machine CPU")
	r.check = checkAll(ctx, o, src, tgt, users, pws, &r)

	again, err := migrate("rerun")
	if err != nil {
		r.notes = append(r.notes, "re-run failed: "+err.Error())
		r.rerunDups = "—"
		return r
	}
	r.rerun = again.wall
	r.migrateRuns = append(r.migrateRuns, again)
	r.rerunDups = duplicatesAfter(ctx, o, src, tgt, users, pws, r.checkDups)

	// Every target folder emptied, the source unchanged: the next run must
	// copy everything again, validate, and duplicate nothing.
	if err := emptyTargets(ctx, o, tgt, users, pws); err != nil {
		r.notes = append(r.notes, "emptying the targets failed: "+err.Error())
		return r
	}
	emptied, err := migrate("emptied")
	if err != nil {
		r.notes = append(r.notes, "re-run after emptying the target failed: "+err.Error())
		return r
	}
	var chk row
	emptied.check = checkAll(ctx, o, src, tgt, users, pws, &chk)
	if chk.checkDups > 0 {
		emptied.check += fmt.Sprintf(" (%d duplicates)", chk.checkDups)
	}
	r.notes = append(r.notes, chk.notes...)
	r.migrateRuns = append(r.migrateRuns, emptied)
	return r
}

// buildStarter builds the starter from this checkout, once per bench run
// and always (a binary left in a reused work directory may be old code).
func buildStarter(workdir string) (string, error) {
	bin := filepath.Join(workdir, "starter")
	log.Printf("building the starter (the Temporal server included: minutes on a cold cache)")
	cmd := exec.Command("go", "build", "-o", bin, "./starter")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./starter (run from the repository root): %w", err)
	}
	return bin, nil
}

// migrateFiles writes the worker's configuration, the users' password file
// and the inventory.
func migrateFiles(dir string, o options, src, tgt *dovecottest.Instance, users, pws []string) (cfg, inv string, err error) {
	var pw, csv strings.Builder
	csv.WriteString("organization,mailbox,source_user,target_user,wave,organization_name\n")
	for i, u := range users {
		fmt.Fprintf(&pw, "%s:%s\n", u, pws[i])
		fmt.Fprintf(&csv, "%s,%s,%s,%s,1,Bench Trust\n", benchOrg, u, u, u)
	}
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte(pw.String()), 0o600); err != nil {
		return "", "", err
	}
	// In use: a connection and an APPEND pipeline per lane of each of the
	// 8 mailboxes migrate runs at once (its default); kept idle between a
	// mailbox's passes: one per mailbox (activities.DefaultKeepIdle).
	conns := 2*8*max(1, o.lanes) + len(users)
	cfg = filepath.Join(dir, "mailshift.yaml")
	body := fmt.Sprintf(`endpoints:
  source: {url: %q, passwords: "file:%s", max_connections: %d}
  target: {url: %q, passwords: "file:%s", max_connections: %d}
staging: {kind: local, path: %q}
routing: {kind: file, path: %q, nexthop: "smtp:[cloud.example]:25"}
limits: {lanes_per_mailbox: %d, append_window: %d, max_message_size: 150MB}
`, src.URL(), passwd, conns, tgt.URL(), passwd, conns, filepath.Join(dir, "staging"), filepath.Join(dir, "transport"), o.lanes, o.window)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return "", "", err
	}
	inv = filepath.Join(dir, "inventory.csv")
	return cfg, inv, os.WriteFile(inv, []byte(csv.String()), 0o600)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitServe waits until serve's frontend answers and its worker polls.
func waitServe(ctx context.Context, addr string, within time.Duration) (client.Client, error) {
	deadline := time.Now().Add(within)
	for {
		cl, err := client.Dial(client.Options{HostPort: addr, Logger: quietLogger{}})
		if err == nil {
			if _, err = control.WaitForWorker(ctx, cl, "", time.Until(deadline)); err == nil {
				return cl, nil
			}
			cl.Close()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("not ready at %s after %v: %w", addr, within, err)
		}
		time.Sleep(250 * time.Millisecond) // the frontend is not listening yet
	}
}

// quietLogger drops the SDK's log lines.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// bodyBytesSince adds up body_bytes of the IMAP sessions that logged in
// to a Dovecot after offset in its log: the bytes of message bodies
// (BODY[], BODY[TEXT], RFC822) the server sent them, headers not included.
// Sessions of whoever ran before (the bench's own check) are not counted
// even when their logout line comes late. It waits, up to 10 s, for every
// such session's logout line, which Dovecot writes after the client left.
func bodyBytesSince(path string, offset int64) int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, open, err := sessionBodyBytes(path, offset)
		if err != nil {
			return -1
		}
		if open == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sessionBodyBytes reads the log once: the body bytes of the sessions that
// logged in after offset and have logged out, and how many have not yet.
func sessionBodyBytes(path string, offset int64) (n int64, open int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return 0, 0, err
	}
	session := func(line, prefix string) string {
		_, rest, ok := strings.Cut(line, prefix)
		if !ok {
			return ""
		}
		id, _, _ := strings.Cut(rest, ">")
		return id
	}
	mine := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "imap-login: Info: Login:") {
			if id := session(line, "session=<"); id != "" {
				mine[id] = true
				open++
			}
			continue
		}
		_, rest, ok := strings.Cut(line, " body_bytes=")
		if !ok {
			continue
		}
		// imap(user)<pid><session>: Info: Disconnected: ...
		_, tail, _ := strings.Cut(line, ")<")
		_, tail, _ = strings.Cut(tail, "><")
		id, _, _ := strings.Cut(tail, ">")
		if !mine[id] {
			continue
		}
		open--
		v, _, _ := strings.Cut(rest, " ")
		if b, err := strconv.ParseInt(v, 10, 64); err == nil {
			n += b
		}
	}
	return n, open, sc.Err()
}

// phasesOf reads the organization's latest run's history: how long each
// phase took (from its MigrationPhase upserts), from the cutover's start to
// the routing switch's completion, and how it ended.
func phasesOf(ctx context.Context, cl client.Client) ([]phaseTime, time.Duration, string, error) {
	it := cl.GetWorkflowHistory(ctx, workflows.OrganizationWorkflowID(benchOrg), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var phases []phaseTime
	var cur string
	var curAt, cutoverAt, switchedAt time.Time
	scheduled := map[int64]string{}
	result := "running"
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, 0, "", err
		}
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			curAt = at
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			f := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()[workflows.SAMigrationPhase.GetName()]
			if f == nil {
				continue
			}
			phase := strings.Trim(string(f.GetData()), `"`)
			if phase == cur {
				continue
			}
			if cur != "" {
				phases = append(phases, phaseTime{cur, at.Sub(curAt)})
			}
			cur, curAt = phase, at
			if phase == string(workflows.PhaseCutover) && cutoverAt.IsZero() {
				cutoverAt = at
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if scheduled[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] == "SwitchRouting" && switchedAt.IsZero() {
				switchedAt = at
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			if cur != "" {
				phases = append(phases, phaseTime{cur, at.Sub(curAt)})
			}
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
				result = cur
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
				result = "failed in " + cur
			default:
				result = "continued as new (later runs not read)"
			}
		}
	}
	var a2s time.Duration
	if !cutoverAt.IsZero() && !switchedAt.IsZero() {
		a2s = switchedAt.Sub(cutoverAt)
	}
	return phases, a2s, result, nil
}

func (p phaseTime) String() string {
	return fmt.Sprintf("%s %.1fs", p.phase, p.took.Seconds())
}

// checkAll compares every mailbox byte for byte and records the
// duplicates it found in r.checkDups.
func checkAll(ctx context.Context, o options, src, tgt *dovecottest.Instance, users, pws []string, r *row) string {
	var total checkResult
	results := make([]checkResult, len(users))
	err := parallel(len(users), o.parallel, func(i int) error {
		var err error
		results[i], err = checkMailbox(ctx, account{src.Addr(), users[i], pws[i]}, account{tgt.Addr(), users[i], pws[i]})
		return err
	})
	if err != nil {
		return "check failed: " + err.Error()
	}
	for _, x := range results {
		total.add(x)
	}
	r.checkDups = total.Duplicates
	for _, e := range total.Examples {
		r.notes = append(r.notes, "check example: "+e)
	}
	return total.summary()
}

// duplicatesAfter counts target messages beyond the source's, per folder,
// less the duplicates the check already found.
func duplicatesAfter(ctx context.Context, o options, src, tgt *dovecottest.Instance, users, pws []string, before int) string {
	dups := 0
	err := parallel(len(users), o.parallel, func(i int) error {
		s, err := countMailbox(ctx, account{src.Addr(), users[i], pws[i]})
		if err != nil {
			return err
		}
		t, err := countMailbox(ctx, account{tgt.Addr(), users[i], pws[i]})
		if err != nil {
			return err
		}
		for f, n := range t {
			if n > s[f] {
				atomicAddInt(&dups, n-s[f])
			}
		}
		return nil
	})
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprint(dups - before)
}

// emptyTargets expunges every message of every target folder.
func emptyTargets(ctx context.Context, o options, tgt *dovecottest.Instance, users, pws []string) error {
	return parallel(len(users), o.parallel, func(i int) error {
		c, err := login(ctx, account{tgt.Addr(), users[i], pws[i]})
		if err != nil {
			return err
		}
		defer c.Close()
		folders, err := estate.ListFolders(c)
		if err != nil {
			return err
		}
		for _, f := range folders {
			if f.NoSelect {
				continue
			}
			sel, err := c.Select(f.Name, nil).Wait()
			if err != nil {
				return fmt.Errorf("%s %s: %w", users[i], f.Name, err)
			}
			if sel.NumMessages > 0 {
				if err := c.Store(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
					return err
				}
				if err := c.Expunge().Close(); err != nil {
					return err
				}
			}
		}
		return c.Logout().Wait()
	})
}

// printMigrate prints the migrate tool's runs, each a median over the
// repetitions, and its ratios to mbsync.
func printMigrate(byTool map[string][]row, nbytes int64) {
	var ok []row
	for _, r := range byTool["migrate"] {
		if r.failed == "" && len(r.migrateRuns) > 0 {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return
	}
	title := "1 run"
	if len(ok) > 1 {
		title = fmt.Sprintf("medians of %d runs", len(ok))
	}
	fmt.Printf("\n#### migrate, end to end (%s)\n\n", title)
	fmt.Println("| run | Wall | MB/s | Machine CPU | of which Dovecots | of which serve | Body bytes fetched | Readiness | Pre-stage | Cutover | Validation | Approval → routing switch | End | Check |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
	for _, label := range []string{"first", "rerun", "emptied"} {
		var runs []migrateRun
		for _, r := range ok {
			for _, m := range r.migrateRuns {
				if m.label == label {
					runs = append(runs, m)
				}
			}
		}
		if len(runs) == 0 {
			continue
		}
		med := func(f func(migrateRun) time.Duration) time.Duration {
			d := make([]time.Duration, len(runs))
			for i, m := range runs {
				d[i] = f(m)
			}
			return median(d)
		}
		phase := func(name string) string {
			return fmt.Sprintf("%.1fs", med(func(m migrateRun) time.Duration {
				var t time.Duration
				for _, p := range m.phases {
					if p.phase == name {
						t += p.took
					}
				}
				return t
			}).Seconds())
		}
		wall := med(func(m migrateRun) time.Duration { return m.wall })
		var body []string
		ends, checks := map[string]bool{}, map[string]bool{}
		var endList, checkList []string
		for _, m := range runs {
			body = append(body, strconv.FormatInt(m.bodyBytes, 10))
			if !ends[m.result] {
				ends[m.result] = true
				endList = append(endList, m.result)
			}
			c := m.check
			if label == "first" || label == "rerun" {
				c = "(table above)"
			}
			if !checks[c] {
				checks[c] = true
				checkList = append(checkList, c)
			}
		}
		name := map[string]string{"first": "first migration", "rerun": "re-run, nothing changed", "emptied": "re-run, every target folder emptied"}[label]
		rate := fmt.Sprintf("%.1f", mb(nbytes)/wall.Seconds())
		if label == "rerun" {
			rate = "—" // nothing to copy
		}
		fmt.Printf("| %s | %s | %s | %.1fs | %.1fs | %.1fs | %s | %s | %s | %s | %s | %.1fs | %s | %s |\n", name, wall.Round(10*time.Millisecond),
			rate, med(func(m migrateRun) time.Duration { return m.machine }).Seconds(),
			med(func(m migrateRun) time.Duration { return m.serversCPU }).Seconds(),
			med(func(m migrateRun) time.Duration { return m.serveCPU }).Seconds(), strings.Join(body, " / "),
			phase(string(workflows.PhaseReadiness)), phase(string(workflows.PhasePreStage)), phase(string(workflows.PhaseCutover)),
			phase(string(workflows.PhaseValidation)), med(func(m migrateRun) time.Duration { return m.approvalToSwitch }).Seconds(),
			strings.Join(endList, " / "), strings.Join(checkList, " / "))
	}
	first := median(durations(ok, func(r row) time.Duration { return r.wall }))
	rerun := median(durations(ok, func(r row) time.Duration { return r.rerun }))
	fmt.Println()
	if ms := byTool["mbsync"]; len(ms) > 0 {
		var good []row
		for _, r := range ms {
			if r.failed == "" {
				good = append(good, r)
			}
		}
		if len(good) > 0 {
			mw := median(durations(good, func(r row) time.Duration { return r.wall }))
			fmt.Printf("- first migration: migrate %.1f MB/s, mbsync %.1f MB/s: %.2fx\n", mb(nbytes)/first.Seconds(), mb(nbytes)/mw.Seconds(), mw.Seconds()/first.Seconds())
		}
	}
	fmt.Printf("- no-op re-run: %.0f%% of the first migration's wall time\n", 100*rerun.Seconds()/first.Seconds())
}
