// Command stagingbench measures staging throughput: items of 1 MB, 40 MB and
// 150 MB (deterministic data, generated while read) put into the local store
// and into Azure Blob storage, then read back with hash verification. It
// prints MB/s and the process's peak RSS (VmHWM, reset before each row).
//
// Azure Blob is Azurite, started from tools/azurite, unless
// AZURE_STORAGE_CONNECTION_STRING is set (then -container is used, created if
// missing, and the benchmark's objects are deleted afterwards).
//
//	go run ./cmd/stagingbench [-sizes 1MB,40MB,150MB] [-stores local,azblob]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"github.com/mailshift/mailshift/internal/procstat"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailshift/mailshift/internal/azuritetest"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/staging/stagingtest"
)

func main() {
	sizes := flag.String("sizes", "1MB,40MB,150MB", "item sizes")
	stores := flag.String("stores", "local,azblob", "stores to measure")
	budget := flag.Int64("bytes-per-size", 160<<20, "repeat small items until about this many bytes are staged (at least once, at most 20 times)")
	blockSize := flag.Int("block-size", staging.DefaultBlockSize, "azblob block size")
	concurrency := flag.Int("concurrency", staging.DefaultConcurrency, "azblob blocks in flight per item")
	containerName := flag.String("container", "stagingbench", "container (with AZURE_STORAGE_CONNECTION_STRING)")
	flag.Parse()
	if err := run(*sizes, *stores, *budget, *blockSize, *concurrency, *containerName); err != nil {
		fmt.Fprintln(os.Stderr, "stagingbench:", err)
		os.Exit(1)
	}
}

type row struct {
	store         string
	size          int64
	reps          int
	put, get      time.Duration
	peakRSS       int64
	staged, reuse int64
}

func run(sizeList, storeList string, budget int64, blockSize, concurrency int, containerName string) error {
	ctx := context.Background()
	var sizes []int64
	for _, s := range strings.Split(sizeList, ",") {
		n, err := config.ParseByteSize(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("size %q: %v", s, err)
		}
		sizes = append(sizes, n)
	}
	var rid [4]byte
	_, _ = rand.Read(rid[:])
	prefix := "bench-" + hex.EncodeToString(rid[:])
	var rows []row
	var notes []string
	for _, kind := range strings.Split(storeList, ",") {
		var st staging.Store
		var cleanup func()
		switch kind {
		case "local":
			dir, err := os.MkdirTemp("", "stagingbench-*")
			if err != nil {
				return err
			}
			l, err := staging.NewLocal(dir)
			if err != nil {
				return err
			}
			st, cleanup = l, func() { os.RemoveAll(dir) }
			notes = append(notes, "local: "+dir+" (fsync per item)")
		case "azblob":
			conn := os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
			cont := containerName
			what := "Azure (AZURE_STORAGE_CONNECTION_STRING)"
			var stop func()
			if conn == "" {
				dir, err := os.MkdirTemp("", "stagingbench-azurite-*")
				if err != nil {
					return err
				}
				t0 := time.Now()
				srv, err := azuritetest.Start(ctx, dir)
				if err != nil {
					os.RemoveAll(dir)
					return err
				}
				conn, cont = srv.ConnectionString(), prefix
				what = fmt.Sprintf("Azurite on 127.0.0.1:%d (started in %s)", srv.Port, time.Since(t0).Round(100*time.Millisecond))
				stop = func() { srv.Close(); os.RemoveAll(dir) }
			}
			a, err := staging.NewAzure(staging.AzureOptions{ConnectionString: conn, Container: cont, CreateContainer: true,
				BlockSize: blockSize, Concurrency: concurrency})
			if err != nil {
				return err
			}
			if err := a.EnsureContainer(ctx); err != nil {
				return err
			}
			st = a
			cleanup = func() {
				if stop != nil {
					stop()
					return
				}
				objs, _ := a.List(ctx, prefix+"/")
				for _, o := range objs {
					_ = a.Delete(ctx, o.Name)
				}
			}
			notes = append(notes, fmt.Sprintf("azblob: %s, block %d KiB, %d in flight", what, blockSize>>10, concurrency))
		default:
			return fmt.Errorf("unknown store %q (local, azblob)", kind)
		}
		for _, size := range sizes {
			r, err := measure(ctx, st, kind, prefix, size, budget)
			if err != nil {
				cleanup()
				return fmt.Errorf("%s %d bytes: %w", kind, size, err)
			}
			rows = append(rows, r)
		}
		cleanup()
	}

	fmt.Printf("staging benchmark: %s, GOMAXPROCS=%d, %s\n", runtime.Version(), runtime.GOMAXPROCS(0), time.Now().Format(time.DateTime))
	for _, n := range notes {
		fmt.Println("  " + n)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\titem\titems\tput MB/s\tget+verify MB/s\tpeak RSS MiB\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.1f\t%.0f\t\n", r.store, human(r.size), r.reps,
			mbps(r.size*int64(r.reps), r.put), mbps(r.size*int64(r.reps), r.get), float64(r.peakRSS)/(1<<20))
	}
	tw.Flush()
	fmt.Println("MB = 10^6 bytes; item sizes are binary (MiB). Peak RSS is VmHWM of this process, reset before each row (Azurite's own memory is not included).")
	return nil
}

func measure(ctx context.Context, st staging.Store, kind, prefix string, size, budget int64) (row, error) {
	reps := int(budget / size)
	reps = max(1, min(reps, 20))
	r := row{store: kind, size: size, reps: reps}
	runtime.GC()
	procstat.ResetPeakRSS()
	for i := 0; i < reps; i++ {
		name := staging.Name(prefix, kind, strconv.FormatInt(size, 10), strconv.Itoa(i))
		seed := uint64(size) + uint64(i)
		t0 := time.Now()
		o, err := st.Put(ctx, name, stagingtest.Data(seed, size), map[string]string{"kind": "bench"})
		if err != nil {
			return r, err
		}
		r.put += time.Since(t0)
		t0 = time.Now()
		if _, err := staging.Verify(ctx, st, name); err != nil {
			return r, err
		}
		r.get += time.Since(t0)
		if o.Size != size {
			return r, fmt.Errorf("put %d bytes, stored %d", size, o.Size)
		}
	}
	r.peakRSS = procstat.PeakRSS(0)
	return r, nil
}

func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

func human(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
