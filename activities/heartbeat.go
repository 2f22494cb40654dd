package activities

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// pulseEvery is how often a running activity heartbeats when it has no
// news of its own. The default heartbeat timeout (20 s, workflows) is four
// pulses, so a live worker is never taken for a dead one however long a
// message takes, while a dead worker's mailbox is retried within seconds.
const pulseEvery = 5 * time.Second

// pulse heartbeats every pulseEvery with the latest details given to beat,
// until stop. Heartbeat details replace the previous ones on the server, so
// a pulse without details would erase a transfer's checkpoint: the pulse
// repeats the last details it was given (which must not change afterwards;
// transfer checkpoints are clones).
type pulse struct {
	ctx     context.Context
	mu      sync.Mutex
	details []any
	done    chan struct{}
	once    sync.Once
}

func startPulse(ctx context.Context) *pulse {
	p := &pulse{ctx: ctx, done: make(chan struct{})}
	if !activity.IsActivity(ctx) {
		return p
	}
	go func() {
		t := time.NewTicker(pulseEvery)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				p.mu.Lock()
				d := p.details
				p.mu.Unlock()
				activity.RecordHeartbeat(ctx, d...)
			}
		}
	}()
	return p
}

// beat keeps details for the next pulse. It does not heartbeat itself: the
// SDK sends a heartbeat in the caller's goroutine, so a copy that
// heartbeated at each checkpoint would wait for the Temporal server
// whenever the server is slow or down, although copying does not need it.
// A checkpoint is therefore at most pulseEvery older on the server than in
// the ledger; the retry reconciles the difference.
func (p *pulse) beat(details ...any) {
	p.mu.Lock()
	p.details = details
	p.mu.Unlock()
}

func (p *pulse) stop() { p.once.Do(func() { close(p.done) }) }

// keepAlive heartbeats every few seconds until stop is called, for an
// activity whose work has no natural progress points (validation digests
// whole folders): a pause or rollback then reaches it within seconds, and
// a dead worker is noticed.
func keepAlive(ctx context.Context) (stop func()) { return startPulse(ctx).stop }

// errHandedBack is the cause of an activity context cancelled because its
// worker is stopping.
var errHandedBack = errors.New("worker stopping")

// handBackOnStop returns ctx cancelled (cause errHandedBack) as soon as the
// worker starts a graceful stop (SIGTERM), so a long transfer stops at its
// next checkpoint and its failure reaches the server while the worker
// still waits for its activities (WorkerStopTimeout): the retry starts on
// another worker at once instead of after the heartbeat timeout.
func handBackOnStop(ctx context.Context) (context.Context, func()) {
	if !activity.IsActivity(ctx) {
		return ctx, func() {}
	}
	hctx, cancel := context.WithCancelCause(ctx)
	stop := activity.GetWorkerStopChannel(ctx)
	go func() {
		select {
		case <-stop:
			cancel(errHandedBack)
		case <-hctx.Done():
		}
	}()
	return hctx, func() { cancel(nil) }
}

// handedBack reports whether ctx ended because the worker is stopping.
func handedBack(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errHandedBack)
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
