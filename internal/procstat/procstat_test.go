package procstat

import (
	"os"
	"testing"
)

func TestPeakRSSGrowsWithMemoryTouched(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	ResetPeakRSS()
	before := PeakRSS(0)
	if before <= 0 {
		t.Fatalf("peak RSS of this process: %d", before)
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		if i%4096 == 0 {
			buf[i] = 1
		}
	}
	after := PeakRSS(os.Getpid())
	if after < before+48<<20 {
		t.Fatalf("touching 64 MiB moved the peak from %d to %d", before, after)
	}
	if PeakRSS(1<<30) != 0 {
		t.Fatal("a process that does not exist has no peak")
	}
	_ = buf[len(buf)-1]
}
