package activities

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
)

// eachInParallel calls fn(i) for every i in [0, n) on up to parallel
// goroutines, and stops handing out items when ctx ends. It heartbeats how
// many are done on a ticker, so one long item (a folder of a million
// messages) does not look like a dead worker.
func eachInParallel(ctx context.Context, n, parallel int, fn func(i int)) {
	parallel = min(max(parallel, 1), max(n, 1))
	var (
		done atomic.Int64
		wg   sync.WaitGroup
	)
	beat := time.Second
	if activity.IsActivity(ctx) {
		if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 {
			beat = max(beat, min(hb/3, 10*time.Second))
		}
	}
	ticker := time.NewTicker(beat)
	defer ticker.Stop()
	stopBeat := make(chan struct{})
	defer close(stopBeat)
	go func() {
		for {
			select {
			case <-ticker.C:
				if activity.IsActivity(ctx) {
					activity.RecordHeartbeat(ctx, done.Load())
				}
			case <-stopBeat:
				return
			}
		}
	}()
	next := make(chan int)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
				done.Add(1)
			}
		}()
	}
	func() {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
}
