package activities

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/imapconn"
)

// A mailbox's passes follow each other closely (readiness, pre-stage, the
// final pass, the post-switch pass and validation within minutes during a
// cutover), and each used to log in afresh on both sides. A login is the
// dearest thing a pass with little to copy does: a Dovecot in its default
// high-security mode starts two processes for it (about 30 ms of CPU
// each), and Exchange Online counts logins against the mailbox's
// throttling budget. So a connection a pass is done with waits a while,
// logged in, for the mailbox's next pass on this worker. An idle
// connection keeps its endpoint slot; a dial that finds none free closes
// the longest idle one instead of waiting.

// DefaultKeepIdle is how long a logged-in connection waits for its
// mailbox's next pass (Endpoint.KeepIdle).
const DefaultKeepIdle = time.Minute

// reuseCheckTimeout bounds the NOOP that checks a pooled connection: a
// hung server is left to a fresh dial and its own timeouts.
const reuseCheckTimeout = 5 * time.Second

// idleConn is a logged-in connection waiting in its endpoint's pool.
type idleConn struct {
	key   poolKey
	c     *imapconn.Conn
	timer *time.Timer
}

// poolKey names whom a connection is logged in as; the credential is kept
// as a hash, so a changed password or token never reuses the old session.
type poolKey struct {
	user string
	cred [32]byte
}

func keyOf(login imapconn.Login) poolKey {
	h := sha256.New()
	for _, s := range []string{login.Username, login.AuthzID, login.Password, login.Credential} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var k poolKey
	k.user = login.Username + "\x00" + login.AuthzID
	copy(k.cred[:], h.Sum(nil))
	return k
}

// idlePool is an endpoint's idle connections, newest last.
type idlePool struct {
	mu   sync.Mutex
	idle []*idleConn
}

// keepIdle is how long ep keeps an idle connection (0: not at all).
func (ep *Endpoint) keepIdle() time.Duration {
	switch {
	case ep.KeepIdle < 0:
		return 0
	case ep.KeepIdle == 0:
		return DefaultKeepIdle
	}
	return ep.KeepIdle
}

// take removes and returns the newest idle connection logged in as k.
func (p *idlePool) take(k poolKey) *idleConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		if ic := p.idle[i]; ic.key == k {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			ic.timer.Stop()
			return ic
		}
	}
	return nil
}

// remove takes ic out of the pool; false if someone else took it first.
func (p *idlePool) remove(ic *idleConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.idle {
		if x == ic {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			return true
		}
	}
	return false
}

// oldest removes and returns the longest idle connection, if any.
func (p *idlePool) oldest() *idleConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return nil
	}
	ic := p.idle[0]
	p.idle = p.idle[1:]
	ic.timer.Stop()
	return ic
}

// reuse returns a pooled connection of ep logged in as login, attached to
// ctx and checked alive with a NOOP (a server restart or idle logout
// leaves dead ones), or nil.
func (a *Activities) reuse(ctx context.Context, ep *Endpoint, login imapconn.Login) *imapconn.Conn {
	k := keyOf(login)
	for {
		ic := ep.pool.take(k)
		if ic == nil {
			return nil
		}
		ic.c.Attach(ctx)
		noop := make(chan error, 1)
		go func() { noop <- ic.c.C.Noop().Wait() }()
		select {
		case err := <-noop:
			if err == nil {
				a.Metrics.ConnOpened(ep.Name)
				return ic.c
			}
		case <-time.After(reuseCheckTimeout):
		}
		closeIdle(ep, ic.c)
	}
}

// putBack pools c, logged in as login, for the mailbox's next pass, or
// closes it if it is not fit to be used again.
func (a *Activities) putBack(ep *Endpoint, login imapconn.Login, c *imapconn.Conn) {
	keep := ep.keepIdle()
	// A pass waiting for a slot of this endpoint gets this one now.
	if keep <= 0 || ep.waiting.Load() > 0 || !c.Detach() {
		a.closeConn(ep, c)
		return
	}
	// Leave no folder selected: the next user starts where a fresh login
	// does, and a folder selected read-write is not held open for hours.
	if c.C.Mailbox() != nil {
		if !c.Has(imap.CapUnselect) || c.C.Unselect().Wait() != nil {
			a.closeConn(ep, c)
			return
		}
	}
	ic := &idleConn{key: keyOf(login), c: c}
	ep.pool.mu.Lock()
	// Asked again under the lock: a dial that began to wait during the
	// UNSELECT looked at the pool before this connection was in it.
	if ep.waiting.Load() > 0 {
		ep.pool.mu.Unlock()
		a.closeConn(ep, c)
		return
	}
	a.Metrics.ConnClosed(ep.Name) // idle is not in use
	ic.timer = time.AfterFunc(keep, func() {
		if ep.pool.remove(ic) {
			closeIdle(ep, ic.c)
		}
	})
	ep.pool.idle = append(ep.pool.idle, ic)
	ep.pool.mu.Unlock()
}

// closeConn logs c, in use, out and frees its endpoint slot.
func (a *Activities) closeConn(ep *Endpoint, c *imapconn.Conn) {
	c.Close()
	a.releaseSlot(ep)
}

// closeIdle logs c, taken idle from the pool, out and frees its slot.
func closeIdle(ep *Endpoint, c *imapconn.Conn) {
	c.Close()
	<-ep.slots
}

// evictIdle closes ep's longest idle connection to free its slot; false
// if none is idle.
func (a *Activities) evictIdle(ep *Endpoint) bool {
	ic := ep.pool.oldest()
	if ic == nil {
		return false
	}
	closeIdle(ep, ic.c)
	return true
}

// CloseIdle logs out a's idle connections (a worker that stops), all at
// once: a hung server costs one LOGOUT timeout, not one per connection.
// It is not a method: every exported method of Activities is an activity.
func CloseIdle(a *Activities) {
	var wg sync.WaitGroup
	for _, ep := range a.Endpoints {
		for ic := ep.pool.oldest(); ic != nil; ic = ep.pool.oldest() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				closeIdle(ep, ic.c)
			}()
		}
	}
	wg.Wait()
}
