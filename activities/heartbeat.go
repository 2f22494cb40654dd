package activities

import (
	"context"
	"io"
	"time"

	"go.temporal.io/sdk/activity"
)

// keepAlive heartbeats every few seconds until stop is called, for an
// activity whose work has no natural progress points (validation digests
// whole folders): a pause or rollback then reaches it within seconds, and
// a dead worker is noticed.
func keepAlive(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// heartbeatReader heartbeats while a large body streams to staging, so a
// 150 MB item on a slow link does not look like a dead worker.
func heartbeatReader(ctx context.Context, r io.Reader) io.Reader {
	if !activity.IsActivity(ctx) {
		return r
	}
	return &hbReader{ctx: ctx, r: r}
}

type hbReader struct {
	ctx  context.Context
	r    io.Reader
	n    int64
	last int64
}

func (h *hbReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += int64(n)
	if h.n-h.last >= 4<<20 {
		h.last = h.n
		activity.RecordHeartbeat(h.ctx)
	}
	return n, err
}
