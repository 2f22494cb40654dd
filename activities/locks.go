package activities

import (
	"context"
	"sync"
)

// mailboxLocks serialises the transfers of one mailbox within a worker
// process. The server never runs two passes of a mailbox at once, but a
// local activity that the SDK stopped waiting for (its deadline passed)
// can still be finishing a message when the same pass goes on as a
// regular activity on this worker.
type mailboxLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

// lock waits until key is free or ctx ends, and returns the unlock.
func (l *mailboxLocks) lock(ctx context.Context, key string) (func(), error) {
	for {
		l.mu.Lock()
		if l.held == nil {
			l.held = map[string]chan struct{}{}
		}
		busy, ok := l.held[key]
		if !ok {
			done := make(chan struct{})
			l.held[key] = done
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.held, key)
				l.mu.Unlock()
				close(done)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
