// Package procstat reads what the benchmarks report about processes from
// Linux's /proc (peak resident set size) and the Go runtime (peak heap).
package procstat

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// PeakRSS is a process's peak resident set size (VmHWM) in bytes; pid 0
// means this process. It is 0 when unknown (process gone, not Linux).
func PeakRSS(pid int) int64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// ResetPeakRSS sets this process's VmHWM back to its current RSS, so the
// next PeakRSS measures one step alone (Linux: clear_refs 5).
func ResetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// PeakHeap runs f and returns the largest heap (live and not yet collected
// objects) sampled every millisecond while it ran.
func PeakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	stop, peak := make(chan struct{}), make(chan uint64)
	go func() {
		var p uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			p = max(p, sample[0].Value.Uint64())
			select {
			case <-stop:
				peak <- p
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	return <-peak
}
