// Command orgbench measures how fast the Organization workflow drives
// mailboxes on the embedded Temporal server: Mailbox workflows per second
// for an organization of N tiny mailboxes, next to a raw baseline (trivial
// workflow + one activity) measured in the same process, plus the
// organization's continue-as-new runs and its longest history.
//
//	go run ./cmd/orgbench [-mailboxes 2000] [-concurrency 100] [-per-run 500] [-direct-max-bytes 0]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/mailshift/mailshift/internal/orgload"
)

func main() {
	n := flag.Int("mailboxes", 2000, "mailboxes in the organization")
	baseline := flag.Int("baseline", 0, "trivial workflows in the baseline (default: as many as mailboxes)")
	conc := flag.Int("concurrency", 100, "mailboxes of the organization at once")
	perRun := flag.Int("per-run", 500, "mailboxes started per organization run before it continues as new")
	direct := flag.Int64("direct-max-bytes", 0, "move mailboxes up to this size in the post-switch pass alone (0: pre-stage every mailbox)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the organization run (server and worker) to this file")
	flag.Parse()
	if *baseline == 0 {
		*baseline = *n
	}
	log.SetFlags(log.Ltime)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	dir, err := os.MkdirTemp("", "orgbench-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	opts := orgload.Options{Mailboxes: *n, Concurrency: *conc, MailboxesPerRun: *perRun, DirectMaxBytes: *direct, WorkDir: dir}
	env, err := orgload.Setup(ctx, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()

	log.Printf("baseline: %d trivial workflows (one activity each)", *baseline)
	bw, err := env.Baseline(ctx, *baseline)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("organization: %d tiny mailboxes, %d at once", *n, *conc)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer f.Close()
	}
	res, err := env.Organization(ctx, opts)
	pprof.StopCPUProfile()
	if err != nil {
		log.Fatal(err)
	}
	if res.Progress.MailboxesDone != *n {
		log.Fatalf("organization ended %s with %d of %d mailboxes done: %s %v", res.Progress.Phase, res.Progress.MailboxesDone, *n, res.Progress.Reason, res.Progress.Failures)
	}
	base := float64(*baseline) / bw.Seconds()
	rate := float64(res.MailboxWorkflows) / res.Wall.Seconds()
	fmt.Printf("\n### orgbench: embedded Temporal (SQLite in memory), worker in process, GOMAXPROCS %d\n\n", runtime.GOMAXPROCS(0))
	fmt.Println("| Run | Workflows | Wall | Workflows/s | vs baseline |")
	fmt.Println("|---|---:|---:|---:|---:|")
	fmt.Printf("| baseline: trivial workflow + 1 activity | %d | %s | %.1f | 100%% |\n", *baseline, bw.Round(10*time.Millisecond), base)
	fmt.Printf("| Organization of %d mailboxes, %.1f Mailbox workflows each | %d | %s | %.1f | %.0f%% |\n",
		*n, float64(res.MailboxWorkflows)/float64(*n), res.MailboxWorkflows, res.Wall.Round(10*time.Millisecond), rate, 100*rate/base)
	fmt.Printf("\n- organization: phase %s, %d mailboxes done, %d runs (continue-as-new every %d starts), longest run history %d events\n",
		res.Progress.Phase, res.Progress.MailboxesDone, res.Runs, *perRun, res.MaxHistory)
	fmt.Printf("- mailboxes per second through the whole lifecycle: %.1f\n", float64(*n)/res.Wall.Seconds())
}
