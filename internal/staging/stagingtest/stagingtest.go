// Package stagingtest has helpers shared by the staging tests and the
// staging benchmark: deterministic data of any size without holding it in
// memory, and heap measurement.
package stagingtest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
)

// Data returns size pseudo-random bytes determined by seed, generated as
// they are read (ChaCha8, about 1 GB/s), so a 150 MB source costs no memory.
func Data(seed uint64, size int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// SHA256 is the hex SHA-256 of Data(seed, size).
func SHA256(seed uint64, size int64) string {
	h := sha256.New()
	if _, err := io.Copy(h, Data(seed, size)); err != nil {
		panic(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Bytes returns Data(seed, size) in memory, for small sizes.
func Bytes(seed uint64, size int) []byte {
	b := make([]byte, size)
	if _, err := io.ReadFull(Data(seed, int64(size)), b); err != nil {
		panic(err)
	}
	return b
}

// PeakHeapGrowth runs f while sampling runtime.ReadMemStats every 5 ms and
// returns how far HeapAlloc rose above its value (after a GC) before f.
func PeakHeapGrowth(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	peak := base
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak {
				peak = m.HeapAlloc
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > peak {
		peak = ms.HeapAlloc
	}
	return peak - base
}
