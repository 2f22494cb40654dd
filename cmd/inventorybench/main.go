// Command inventorybench measures inventory validation at NHSmail scale: it
// writes a deterministic inventory (2.1 million mailboxes in 25,000
// organizations by default, see internal/inventory/inventorytest) to a
// temporary file, checks it with inventory.CheckFile, and prints rows,
// organizations, file size, wall time, rows/s, the peak Go heap (sampled
// every millisecond) and the process's peak RSS (VmHWM, reset before the
// check).
//
//	go run ./cmd/inventorybench [-rows 2100000] [-orgs 25000] [-duplicate] [-parse] [-cpuprofile f]
//	go run ./cmd/inventorybench -file inventory.csv
package main

import (
	"bufio"
	"flag"
	"fmt"
	"github.com/mailshift/mailshift/internal/procstat"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailshift/mailshift/internal/inventory"
	"github.com/mailshift/mailshift/internal/inventory/inventorytest"
)

func main() {
	rows := flag.Int("rows", 2_100_000, "mailboxes to generate")
	orgs := flag.Int("orgs", 25_000, "organizations to generate")
	file := flag.String("file", "", "check this inventory instead of generating one")
	dup := flag.Bool("duplicate", false, "generate a duplicate address on line 2 and line rows-100000 (measures the confirming second pass)")
	parse := flag.Bool("parse", false, "also measure inventory.Load, which keeps every row")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the checks to this file")
	flag.Parse()
	if err := run(*rows, *orgs, *file, *dup, *parse, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "inventorybench:", err)
		os.Exit(1)
	}
}

type result struct {
	mode            string
	mailboxes, orgs int
	wall            time.Duration
	peakHeap        uint64
	peakRSS         int64
	err             error
}

func run(rows, orgs int, path string, dup, parse bool, cpuprofile string) error {
	fmt.Printf("inventory benchmark: %s, GOMAXPROCS=%d, %s\n", runtime.Version(), runtime.GOMAXPROCS(0), time.Now().Format(time.DateTime))
	generated := 0
	if path == "" {
		generated = rows
		spec := inventorytest.Spec{Rows: rows, Orgs: orgs}
		if dup {
			spec.Duplicates = [][2]int{{2, max(3, rows-100_000)}}
		}
		f, err := os.CreateTemp("", "inventorybench-*.csv")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		t0 := time.Now()
		w := bufio.NewWriterSize(f, 1<<20)
		_, err = inventorytest.Write(w, spec)
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.Name(), err)
		}
		path = f.Name()
		fmt.Printf("  generated %s in %.1f s\n", path, time.Since(t0).Seconds())
		if plan, err := inventorytest.Plan(spec); err == nil {
			fmt.Println("  " + mix(plan))
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		pf, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	results := []result{measure("CheckFile", generated, func() (int, int, error) {
		sum, err := inventory.CheckFile(path)
		if err != nil {
			return 0, 0, err
		}
		return sum.Mailboxes, len(sum.Orgs), nil
	})}
	if parse {
		results = append(results, measure("Load (keeps rows)", generated, func() (int, int, error) {
			inv, err := inventory.Load(path)
			if err != nil {
				return 0, 0, err
			}
			return inv.Mailboxes(), len(inv.Orgs), nil
		}))
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\trows\torganizations\tfile MB\twall s\trows/s\tpeak heap MB\tpeak RSS MB\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.2f\t%.0f\t%.1f\t%.1f\t\n", r.mode, r.mailboxes, r.orgs,
			float64(st.Size())/1e6, r.wall.Seconds(), float64(r.mailboxes)/r.wall.Seconds(),
			float64(r.peakHeap)/1e6, float64(r.peakRSS)/1e6)
	}
	tw.Flush()
	fmt.Println("MB = 10^6 bytes. Peak heap: live and unswept heap objects, sampled every ms. Peak RSS: VmHWM of this process, reset before each row.")
	for _, r := range results {
		if r.err != nil {
			fmt.Printf("%s: %v\n", r.mode, r.err)
		}
	}
	return nil
}

// measure runs f, which reports mailboxes and organizations. When f finds
// problems, rows are those generated (0 for -file) and organizations 0.
func measure(mode string, generated int, f func() (mailboxes, orgs int, err error)) result {
	r := result{mode: mode}
	procstat.ResetPeakRSS()
	r.peakHeap = procstat.PeakHeap(func() {
		t0 := time.Now()
		r.mailboxes, r.orgs, r.err = f()
		r.wall = time.Since(t0)
	})
	if r.err != nil {
		r.mailboxes = generated
	}
	r.peakRSS = procstat.PeakRSS(0)
	return r
}

// mix describes the organizations' sizes.
func mix(plan []inventorytest.Org) string {
	bands := []struct {
		upTo int
		name string
		n    int
	}{{20, "1-20", 0}, {500, "21-500", 0}, {4999, "501-4999", 0}, {1 << 62, "5000+", 0}}
	largest := plan[0]
	for _, o := range plan {
		for i := range bands {
			if o.Mailboxes <= bands[i].upTo {
				bands[i].n++
				break
			}
		}
		if o.Mailboxes > largest.Mailboxes {
			largest = o
		}
	}
	var parts []string
	for _, b := range bands {
		parts = append(parts, fmt.Sprintf("%s: %d", b.name, b.n))
	}
	return fmt.Sprintf("organizations by mailboxes: %s; largest %s (%d)", strings.Join(parts, ", "), largest.Code, largest.Mailboxes)
}
