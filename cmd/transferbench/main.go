// Command transferbench measures mailshift's IMAP-to-IMAP transfer against
// other tools on the same deterministic corpus, between two private Dovecot
// instances on loopback (mail_fsync=never on both, login processes in
// high-performance mode unless --fast-logins=false):
//
//   - migrate: what a user runs, `starter migrate` on one organization of the
//     corpus's mailboxes, end to end (readiness, pre-stage, cutover with the
//     routing switch, validation), against `starter serve` started and ready
//     before the clock; then a no-op re-run and a re-run after every target
//     folder was emptied, with each phase's time and the body bytes the
//     servers sent (see migrate.go);
//   - mailshift: transfer.Run per mailbox, several mailboxes in parallel, in
//     a child process (this binary re-executed) so its peak RSS is its own:
//     the engine alone;
//   - mbsync (isync) with CopyArrivalDate, one process per group of mailboxes;
//   - doveadm backup -R with imapc as the remote, run with the target's config;
//   - the read limit: every body fetched (one UID FETCH 1:* per folder) and
//     discarded, as many mailboxes in parallel.
//
// For each tool the target is a fresh instance. It reports wall time, msg/s,
// MB/s, peak RSS, a check of every message (bytes, flags, INTERNALDATE;
// missing and duplicates), the time of a second, no-op run and the
// duplicates after it, as a markdown table.
//
//	go run ./cmd/transferbench                 # 20 mailboxes × 500 messages, ~2 GB
//	go run ./cmd/transferbench --scale 0.05    # quick run
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/procstat"

	"github.com/mailshift/mailshift/internal/dovecottest"
)

type options struct {
	mailboxes, messages int
	scale               float64
	seed                int64
	parallel            int
	lanes               int
	window              int
	tools               []string
	workdir             string
	keep                bool
	repeat              int
	store               string
	starter             string // the starter binary the migrate tool runs, built for this run
	fastLogins          bool
}

func main() {
	child := flag.Bool("child", false, "internal: run a measured job read from stdin")
	var o options
	var tools string
	flag.IntVar(&o.mailboxes, "mailboxes", 20, "mailboxes in the corpus")
	flag.IntVar(&o.messages, "messages", 500, "messages per mailbox (before --scale)")
	flag.Float64Var(&o.scale, "scale", 1, "multiplies the messages per mailbox (e.g. 0.05 for a quick run)")
	flag.Int64Var(&o.seed, "seed", 1, "corpus seed")
	flag.IntVar(&o.parallel, "parallel", 4, "mailboxes transferred at a time (processes for mbsync and doveadm)")
	flag.IntVar(&o.window, "append-window", 16, "mailshift: APPENDs in flight per lane over LITERAL+ (0: wait for each, as the go-imap client does)")
	flag.IntVar(&o.lanes, "lanes", config.DefaultLanesPerMailbox, "mailshift: folders of one mailbox copied at once, each on its own connection pair (the worker's lanes_per_mailbox)")
	flag.StringVar(&tools, "tools", "migrate,mailshift,mbsync,doveadm,read", "tools to measure, in order")
	flag.StringVar(&o.workdir, "workdir", "", "directory for tool state and logs (default: a temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.IntVar(&o.repeat, "repeat", 1, "measure every tool this many times (fresh target each time) and report medians")
	flag.BoolVar(&o.fastLogins, "fast-logins", true, "run both Dovecots' login processes in high-performance mode, as Dovecot advises for larger sites (false: its default high-security mode, a process per connection)")
	flag.StringVar(&o.store, "store", defaultStore(), `directory for the Dovecot instances' mail stores and the tools' state ("" = the system's temporary directory)`)
	flag.Parse()
	if *child {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		return
	}
	o.tools = strings.Split(tools, ",")
	log.SetFlags(log.Ltime)
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

type row struct {
	tool      string
	wall      time.Duration
	rssKB     int64
	cpu       time.Duration
	machine   time.Duration // every process's CPU during the pass: tool and both servers
	check     string
	rerun     time.Duration
	rerunDups string
	notes     []string
	failed    string
	// migrate tool: its runs (first, rerun, emptied), and the duplicates
	// its first check found.
	migrateRuns []migrateRun
	checkDups   int
}

func run(o options) error {
	if err := dovecottest.Available(); err != nil {
		return err
	}
	if o.store != "" {
		// Every instance directory, the work directory and the tools'
		// state are made with os.MkdirTemp, which follows TMPDIR.
		if err := os.Setenv("TMPDIR", o.store); err != nil {
			return err
		}
	}
	c := corpus{seed: o.seed, mailboxes: o.mailboxes, messages: max(1, int(float64(o.messages)*o.scale+0.5))}
	if o.workdir == "" {
		d, err := os.MkdirTemp("", "transferbench-")
		if err != nil {
			return err
		}
		o.workdir = d
		if !o.keep {
			defer os.RemoveAll(d)
		}
	}
	if err := os.MkdirAll(o.workdir, 0o755); err != nil {
		return err
	}
	log.Printf("work directory %s", o.workdir)

	src, err := dovecottest.Start(dovecottest.Options{Name: "bench-src", Separator: '/', MailFsync: "never", FastLogins: o.fastLogins})
	if err != nil {
		return err
	}
	defer src.Stop()
	start := time.Now()
	var nmsg, nbytes int64
	var largest int64
	err = parallel(c.mailboxes, 2, func(i int) error {
		mb := c.mailbox(i)
		for _, f := range mb.Folders {
			for _, m := range f.Messages {
				atomicAdd(&nmsg, 1)
				atomicAdd(&nbytes, int64(len(m.Raw)))
				atomicMax(&largest, int64(len(m.Raw)))
			}
		}
		return dovecottest.LoadMailbox(src, mb)
	})
	if err != nil {
		return fmt.Errorf("loading the corpus: %w", err)
	}
	load := time.Since(start)
	log.Printf("corpus: %d mailboxes, %d messages, %.1f MB (largest %.1f MB) loaded into %s in %v (%.0f msg/s, %.1f MB/s)",
		c.mailboxes, nmsg, mb(nbytes), mb(largest), src.Addr(), load.Round(time.Millisecond), float64(nmsg)/load.Seconds(), mb(nbytes)/load.Seconds())

	// Each repetition measures every tool once, in order, so that a slow
	// phase of the host hits all tools alike; the table shows medians.
	if slices.Contains(o.tools, "migrate") {
		if o.starter, err = buildStarter(o.workdir); err != nil {
			return err
		}
	}
	byTool := map[string][]row{}
	for rep := 1; rep <= o.repeat; rep++ {
		for _, tool := range o.tools {
			tool = strings.TrimSpace(tool)
			r := measure(o, c, src, tool, rep, nmsg, nbytes)
			if r.failed != "" {
				log.Printf("%s: FAILED: %s", r.tool, r.failed)
			}
			byTool[tool] = append(byTool[tool], r)
		}
	}

	logins := "login processes in high-performance mode"
	if !o.fastLogins {
		logins = "login processes in high-security mode (a process per connection)"
	}
	fmt.Printf("\n### transferbench: %d mailboxes × %d messages = %d messages, %.1f MB; %d mailboxes at a time; Dovecot %s, mail_fsync=never, %s, mail stores in %s; GOMAXPROCS %d; %s\n\n",
		c.mailboxes, c.messages, nmsg, mb(nbytes), o.parallel, dovecotVersion(), logins, os.TempDir(), runtime.GOMAXPROCS(0), plural(o.repeat, "run", "runs, medians (range)"))
	fmt.Println("| Tool | Wall | msg/s | MB/s | Tool CPU | Machine CPU | Peak RSS | Check (bytes, flags, dates) | No-op re-run | Duplicates after re-run |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
	seen := map[string]bool{}
	for _, tool := range o.tools {
		tool = strings.TrimSpace(tool)
		if seen[tool] {
			continue
		}
		seen[tool] = true
		rows := byTool[tool]
		var ok []row
		for _, r := range rows {
			if r.failed != "" {
				fmt.Printf("| %s | failed: %s | | | | | | | | |\n", r.tool, strings.ReplaceAll(r.failed, "|", "/"))
			} else {
				ok = append(ok, r)
			}
		}
		if len(ok) == 0 {
			continue
		}
		walls := durations(ok, func(r row) time.Duration { return r.wall })
		wall := median(walls)
		wallText := wall.Round(10 * time.Millisecond).String()
		if len(ok) > 1 {
			wallText += fmt.Sprintf(" (%v–%v)", walls[0].Round(100*time.Millisecond), walls[len(walls)-1].Round(100*time.Millisecond))
		}
		rerun := "—"
		if rr := median(durations(ok, func(r row) time.Duration { return r.rerun })); rr > 0 {
			rerun = rr.Round(10 * time.Millisecond).String()
		}
		var rss int64
		checks, dups := map[string]bool{}, map[string]bool{}
		var checkList, dupList []string
		for _, r := range ok {
			rss = max(rss, r.rssKB)
			if !checks[r.check] {
				checks[r.check] = true
				checkList = append(checkList, r.check)
			}
			if !dups[r.rerunDups] {
				dups[r.rerunDups] = true
				dupList = append(dupList, r.rerunDups)
			}
		}
		cpu := median(durations(ok, func(r row) time.Duration { return r.cpu }))
		machine := median(durations(ok, func(r row) time.Duration { return r.machine }))
		fmt.Printf("| %s | %s | %.0f | %.1f | %.1fs | %.1fs | %.0f MB | %s | %s | %s |\n", tool, wallText,
			float64(nmsg)/wall.Seconds(), mb(nbytes)/wall.Seconds(), cpu.Seconds(), machine.Seconds(), float64(rss)/1024,
			strings.Join(checkList, " / "), rerun, strings.Join(dupList, " / "))
	}
	fmt.Println()
	seen = map[string]bool{}
	for _, tool := range o.tools {
		tool = strings.TrimSpace(tool)
		if seen[tool] || len(byTool[tool]) == 0 {
			continue
		}
		seen[tool] = true
		notes := map[string]bool{}
		for _, r := range byTool[tool] {
			for _, n := range r.notes {
				if !notes[n] {
					notes[n] = true
					fmt.Printf("- %s: %s\n", tool, n)
				}
			}
		}
	}
	fmt.Printf("- corpus load (APPEND, 2 connections): %v\n", load.Round(time.Millisecond))
	printMigrate(byTool, nbytes)
	return nil
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func durations(rows []row, f func(row) time.Duration) []time.Duration {
	out := make([]time.Duration, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out
}

// median of d, which it sorts.
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func dovecotVersion() string {
	out, err := exec.Command("dovecot", "--version").Output()
	if err != nil {
		if out, err = exec.Command("/usr/sbin/dovecot", "--version").Output(); err != nil {
			return "?"
		}
	}
	return strings.Fields(string(out))[0]
}

// measure runs one tool against a fresh target.
func measure(o options, c corpus, src *dovecottest.Instance, tool string, rep int, nmsg, nbytes int64) row {
	r := row{tool: tool}
	fail := func(err error) row { r.failed = err.Error(); return r }
	tgt, err := dovecottest.Start(dovecottest.Options{Name: "bench-tgt", Separator: '.', MailFsync: "never", FastLogins: o.fastLogins})
	if err != nil {
		return fail(err)
	}
	defer tgt.Stop()
	var users, pws []string
	for i := range c.mailboxes {
		u, p := c.user(i)
		users, pws = append(users, u), append(pws, p)
		if err := tgt.AddUser(u, p); err != nil {
			return fail(err)
		}
	}
	dir := filepath.Join(o.workdir, fmt.Sprintf("%s-%d", tool, rep))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	log.Printf("%s: starting (target %s)", tool, tgt.Addr())

	var pass func(rerun bool) ([]*exec.Cmd, error)
	switch tool {
	case "migrate":
		return measureMigrate(o, src, tgt, users, pws, dir, r)
	case "mailshift":
		pass = func(rerun bool) ([]*exec.Cmd, error) {
			return childCmds(childJob{Mode: "mailshift", Src: src.Addr(), Tgt: tgt.Addr(), Users: users, Pass: pws, Parallel: o.parallel, Lanes: o.lanes, Window: o.window,
				CheckpointDir: dir, UseCheckpoint: rerun})
		}
		r.notes = append(r.notes, fmt.Sprintf("transfer.Run per mailbox, %d mailboxes at a time in one child process, up to %d folders per mailbox at once (a source and a target connection each); the re-run resumes from the saved checkpoints", o.parallel, o.lanes))
	case "read":
		pass = func(rerun bool) ([]*exec.Cmd, error) {
			return childCmds(childJob{Mode: "read", Src: src.Addr(), Users: users, Pass: pws, Parallel: o.parallel})
		}
		r.notes = append(r.notes, fmt.Sprintf("read limit: UID FETCH 1:* BODY.PEEK[] per folder, bodies discarded, %d connections (one per mailbox)", o.parallel))
	case "mbsync":
		conf, err := mbsyncConfig(dir, src, tgt, users, pws)
		if err != nil {
			return fail(err)
		}
		pass = func(rerun bool) ([]*exec.Cmd, error) { return mbsyncCmds(conf, len(users), o.parallel, dir) }
		r.notes = append(r.notes, fmt.Sprintf("mbsync %s, Sync Pull, Create Near, CopyArrivalDate yes, %d processes with a share of the channels each; peak RSS is the largest process", toolVersion("mbsync", "-v"), o.parallel))
	case "doveadm":
		pass = func(rerun bool) ([]*exec.Cmd, error) { return doveadmCmds(src, tgt, users, pws, dir) }
		r.notes = append(r.notes, fmt.Sprintf("doveadm backup -R -u <user> imapc: with the target's config, %d processes at a time (one per mailbox); peak RSS is the largest process", o.parallel))
	default:
		return fail(fmt.Errorf("unknown tool %q", tool))
	}
	if tool == "mbsync" && findTool("mbsync") == "" {
		return fail(errors.New("mbsync not installed (apt-get install isync)"))
	}

	cmds, err := pass(false)
	if err != nil {
		return fail(err)
	}
	// Start every tool from a clean page cache state: the corpus load and
	// the previous tool left gigabytes of dirty pages whose writeback would
	// otherwise throttle whoever runs next.
	syscall.Sync()
	procs := o.parallel
	if tool == "mailshift" || tool == "read" {
		procs = 1
	}
	busy := machineBusy()
	wall, rss, cpu, out, err := runCmds(cmds, procs, filepath.Join(dir, "pass1.log"))
	r.machine = machineBusy() - busy
	if err != nil {
		return fail(fmt.Errorf("%v (log %s): %s", err, filepath.Join(dir, "pass1.log"), tailString(out, 400)))
	}
	r.wall, r.rssKB, r.cpu = wall, rss, cpu
	log.Printf("%s: pass 1 in %v, CPU %v, peak RSS %.0f MB", tool, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), float64(rss)/1024)
	if tool == "mailshift" || tool == "read" {
		var res childResult
		if err := json.Unmarshal([]byte(lastLine(out)), &res); err == nil {
			if res.PeakRSSKB > 0 {
				r.rssKB = res.PeakRSSKB // its own, exact
			}
			log.Printf("%s: %d messages, %d bytes, %d bodies read, %d skipped, own VmHWM %d KiB", tool, res.Messages, res.Bytes, res.BodiesRead, res.Skipped, res.PeakRSSKB)
			if tool == "read" && res.Messages != nmsg {
				r.notes = append(r.notes, fmt.Sprintf("read %d of %d messages", res.Messages, nmsg))
			}
		}
	}
	if tool == "read" {
		r.check, r.rerunDups = "n/a (nothing written)", "—"
		return r
	}

	ctx := context.Background()
	var total checkResult
	results := make([]checkResult, len(users))
	err = parallel(len(users), o.parallel, func(i int) error {
		var err error
		results[i], err = checkMailbox(ctx, account{src.Addr(), users[i], pws[i]}, account{tgt.Addr(), users[i], pws[i]})
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("check: %w", err))
	}
	for _, x := range results {
		total.add(x)
	}
	r.check = total.summary()
	for _, e := range total.Examples {
		r.notes = append(r.notes, "check example: "+e)
	}
	log.Printf("%s: check: %s", tool, r.check)

	cmds, err = pass(true)
	if err != nil {
		return fail(err)
	}
	rerun, _, _, out, err := runCmds(cmds, procs, filepath.Join(dir, "rerun.log"))
	if err != nil {
		r.notes = append(r.notes, fmt.Sprintf("re-run failed: %v: %s", err, tailString(out, 300)))
	}
	r.rerun = rerun
	if tool == "mailshift" {
		var res childResult
		if err := json.Unmarshal([]byte(lastLine(out)), &res); err == nil {
			r.notes = append(r.notes, fmt.Sprintf("re-run read %d bodies and copied %d messages", res.BodiesRead, res.Messages))
		}
	}
	r.rerunDups = duplicatesAfter(ctx, o, src, tgt, users, pws, total.Duplicates)
	log.Printf("%s: re-run in %v, %s duplicates after it", tool, rerun.Round(time.Millisecond), r.rerunDups)
	return r
}

func childCmds(job childJob) ([]*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-child")
	cmd.Stdin = strings.NewReader(string(b))
	return []*exec.Cmd{cmd}, nil
}

// runCmds runs cmds, at most p at a time, and returns the wall time, the
// largest peak RSS (KiB) of any of them, their total CPU time (user+system,
// including their children) and their combined output (also written to
// logPath).
func runCmds(cmds []*exec.Cmd, p int, logPath string) (time.Duration, int64, time.Duration, string, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return 0, 0, 0, "", err
	}
	var cpu atomic.Int64
	defer f.Close()
	outs := make([]strings.Builder, len(cmds))
	var rss int64
	start := time.Now()
	err = parallel(len(cmds), p, func(i int) error {
		cmd := cmds[i]
		var stderr strings.Builder
		cmd.Stdout = &outs[i]
		cmd.Stderr = &stderr
		// Peak RSS: wait4's ru_maxrss is useless here, because Go starts
		// children with CLONE_VM|CLONE_VFORK and Linux carries the parent's
		// high-water mark over exec into the child's maxrss. VmHWM in
		// /proc/<pid>/status belongs to the exec'd image only; it is sampled
		// every 10 ms until the process exits.
		if err := cmd.Start(); err != nil {
			return err
		}
		done := make(chan struct{})
		sampled := make(chan int64, 1)
		go func() {
			var peak int64
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				if v := procstat.PeakRSS(cmd.Process.Pid) >> 10; v > peak {
					peak = v
				}
				select {
				case <-done:
					sampled <- peak
					return
				case <-t.C:
				}
			}
		}()
		err := cmd.Wait()
		close(done)
		atomicMax(&rss, <-sampled)
		cpu.Add(int64(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()))
		outs[i].WriteString(stderr.String())
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(cmd.Args[:min(3, len(cmd.Args))], " "), err)
		}
		return nil
	})
	wall := time.Since(start)
	var all strings.Builder
	for i := range outs {
		all.WriteString(outs[i].String())
	}
	io.WriteString(f, all.String())
	return wall, rss, time.Duration(cpu.Load()), all.String(), err
}

// machineBusy is the CPU time every process on the machine has used since
// boot (user, nice, system, irq, softirq; not idle, iowait or steal), so a
// pass's difference shows what the servers spent on behalf of each tool.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var t time.Duration
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i == 7 { // idle, iowait, steal
			continue
		}
		if i > 7 {
			break // guest time is already counted in user
		}
		t += ticks(v)
	}
	return t
}

// processCPU is the CPU time (user and system) process pid has used, its
// threads included, or 0 when it cannot be read.
func processCPU(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 15 {
		return 0
	}
	return ticks(f[11]) + ticks(f[12])
}

// groupCPU is the CPU time of every process in pid's process group, with
// the children they have reaped: a Dovecot master and its login, imap and
// auth processes, ended sessions included.
func groupCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var t time.Duration
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := procStat(p)
		if len(f) < 15 || f[2] != strconv.Itoa(pid) {
			continue
		}
		t += ticks(f[11]) + ticks(f[12]) + ticks(f[13]) + ticks(f[14])
	}
	return t
}

// procStat is /proc/pid/stat's fields after the command name (state is
// field 0, pgrp 2, utime 11).
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return nil
	}
	return strings.Fields(s[i+2:])
}

func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * time.Second / 100 // USER_HZ
}

func lastLine(s string) string {
	for _, l := range reverse(strings.Split(strings.TrimSpace(s), "\n")) {
		if strings.HasPrefix(l, "{") {
			return l
		}
	}
	return ""
}

func reverse(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[len(l)-1-i] = s
	}
	return out
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
	}
	return ""
}

func toolVersion(name string, arg string) string {
	p := findTool(name)
	if p == "" {
		return "(missing)"
	}
	out, _ := exec.Command(p, arg).CombinedOutput()
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// defaultStore puts the mail stores on /dev/shm when it is a tmpfs. On a
// disk file system the servers' file churn is measured as much as the
// tools: on this VM's ext4 without a journal, every new inode is checked
// against inodes deleted in the last 60-360 s, so a run right after a
// target was deleted (or after many maildir UID-list rewrites) is up to 60 %
// slower, for every tool alike, and one run's ranking says little.
func defaultStore() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Type == 0x01021994 { // TMPFS_MAGIC
		return "/dev/shm"
	}
	return ""
}
