package activities

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/internal/transfer"
)

// Endpoint is a named IMAP server as the activities use it.
type Endpoint struct {
	Name    string
	Addr    imapconn.Address
	Options imapconn.Options
	// Login resolves credentials for a user; called only inside activities.
	Login func(user string) (imapconn.Login, error)
	// KeepIdle is how long a connection a pass is done with stays logged
	// in for the mailbox's next pass: 0 means DefaultKeepIdle, < 0 never.
	KeepIdle time.Duration
	// What the endpoint is as a target (its profile): what it keeps of an
	// APPEND; whether its well-known folders go by localised names
	// (Policy.TargetLanguage) instead of SPECIAL-USE; the largest message
	// it takes whatever a policy says (0: no ceiling); and how many
	// connections one mailbox's pass may open to it (0: no bound).
	Target      transfer.Target
	WellKnown   bool
	SizeCeiling int64
	PerMailbox  int
	// slots bounds concurrent connections to this endpoint across the
	// worker, idle ones included.
	slots chan struct{}
	pool  idlePool
	// waiting counts dials waiting for a slot; idle connections are then
	// closed rather than kept.
	waiting atomic.Int64
}

// NewEndpoint builds an endpoint with a connection limit.
func NewEndpoint(name string, addr imapconn.Address, maxConns int, opts imapconn.Options, login func(string) (imapconn.Login, error)) *Endpoint {
	if maxConns <= 0 {
		maxConns = 8
	}
	return &Endpoint{Name: name, Addr: addr, Options: opts, Login: login, slots: make(chan struct{}, maxConns)}
}

// ShareSlots makes endpoints count their connections against one limit of
// n: the endpoints that log in with one app registration, which Exchange
// Online throttles as a whole.
func ShareSlots(n int, eps ...*Endpoint) {
	slots := make(chan struct{}, max(n, 1))
	for _, ep := range eps {
		ep.slots = slots
	}
}

// MaxConnections is how many connections the endpoint may hold at once,
// counted together with the endpoints it shares slots with.
func (ep *Endpoint) MaxConnections() int { return cap(ep.slots) }

// SharesSlots reports whether ep and o count against one limit.
func (ep *Endpoint) SharesSlots(o *Endpoint) bool { return ep.slots == o.slots }

// connect opens source and target connections for a mailbox, waiting for a
// free connection slot on each endpoint (and heartbeating while it waits).
func (a *Activities) connect(ctx context.Context, m MailboxRef) (src, tgt *imapconn.Conn, release func(), err error) {
	return a.connectWith(ctx, m, true)
}

// appender opens a LITERAL+ APPEND pipeline to the mailbox's target, if a
// connection slot is free now (otherwise the lane appends one at a time).
func (a *Activities) appender(ctx context.Context, m MailboxRef) (*imapconn.Appender, error) {
	ep, user, err := a.side(m, false)
	if err != nil {
		return nil, err
	}
	if err := a.takeSlot(ctx, ep, false); err != nil {
		return nil, err
	}
	login, err := loginFor(m, ep, user)
	if err == nil {
		var app *imapconn.Appender
		start := time.Now()
		if app, err = imapconn.DialAppender(ctx, ep.Addr, login, ep.Options, max(a.Limits.AppendWindow, 1)); err == nil {
			a.Metrics.LoggedIn(ep.Name, time.Since(start))
			app.OnClose(func() { a.releaseSlot(ep) })
			return app, nil
		}
		if ctx.Err() == nil {
			a.Metrics.IMAPError(ep.Name, faultKind(err))
		}
	}
	a.releaseSlot(ep)
	return nil, err
}

// errNoSlot means an endpoint is at its connection limit right now.
var errNoSlot = errors.New("endpoint at its connection limit")

// connectNow is connect without waiting for a connection slot.
func (a *Activities) connectNow(ctx context.Context, m MailboxRef) (src, tgt *imapconn.Conn, release func(), err error) {
	return a.connectWith(ctx, m, false)
}

func (a *Activities) connectWith(ctx context.Context, m MailboxRef, wait bool) (src, tgt *imapconn.Conn, release func(), err error) {
	src, relSrc, err := a.dialSide(ctx, m, true, wait)
	if err != nil {
		return nil, nil, nil, err
	}
	tgt, relTgt, err := a.dialSide(ctx, m, false, wait)
	if err != nil {
		relSrc()
		return nil, nil, nil, err
	}
	return src, tgt, func() { relTgt(); relSrc() }, nil
}

// side returns the endpoint and user of the source (or target) of a mailbox.
func (a *Activities) side(m MailboxRef, source bool) (*Endpoint, string, error) {
	name, user, which := m.TargetEndpoint, m.TargetUser, "target"
	if source {
		name, user, which = m.SourceEndpoint, m.SourceUser, "source"
	}
	ep, ok := a.Endpoints[name]
	if !ok {
		return nil, "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox %s: %s endpoint %q is not configured on this worker", m.Address, which, name), ErrTypeConfig, nil)
	}
	return ep, user, nil
}

// takeSlot reserves one of ep's connections, waiting for one (with
// heartbeats) or failing at once with errNoSlot; releaseSlot gives it back.
func (a *Activities) takeSlot(ctx context.Context, ep *Endpoint, wait bool) error {
	// A free slot, or one an idle connection gives up.
	free := func() bool {
		for {
			select {
			case ep.slots <- struct{}{}:
				a.Metrics.ConnOpened(ep.Name)
				return true
			default:
			}
			if !a.evictIdle(ep) {
				return false
			}
		}
	}
	if free() {
		return nil
	}
	if !wait {
		return errNoSlot
	}
	// Counted before looking at the pool again, so that a connection put
	// back from now on is closed and its slot freed, not kept idle.
	ep.waiting.Add(1)
	defer ep.waiting.Add(-1)
	if free() {
		return nil
	}
	if err := acquire(ctx, ep.slots); err != nil {
		return err
	}
	a.Metrics.ConnOpened(ep.Name)
	return nil
}

func (a *Activities) releaseSlot(ep *Endpoint) {
	<-ep.slots
	a.Metrics.ConnClosed(ep.Name)
}

// faultKind is the metrics kind of a failed connection or login: the IMAP
// fault kind, except that a fault that is no answer of the server (refused,
// reset, timed out; imapconn classifies those Unavailable too) is
// metrics.KindNetwork.
func faultKind(err error) string {
	var ie *imapconn.Error
	if !errors.As(err, &ie) || ie.Kind == "" {
		return metrics.KindNetwork
	}
	var answer *imap.Error
	if ie.Kind == imapconn.KindUnavailable && !errors.As(err, &answer) {
		return metrics.KindNetwork
	}
	return ie.Kind
}

// loginFor resolves a user's credentials on ep; a failure is configuration.
func loginFor(m MailboxRef, ep *Endpoint, user string) (imapconn.Login, error) {
	login, err := ep.Login(user)
	if err != nil {
		return login, temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox %s: credentials for %s on %s: %v", m.Address, user, ep.Name, err), ErrTypeConfig, nil)
	}
	return login, nil
}

// dialSide opens one authenticated connection to the source or the target.
func (a *Activities) dialSide(ctx context.Context, m MailboxRef, source, wait bool) (*imapconn.Conn, func(), error) {
	ep, user, err := a.side(m, source)
	if err != nil {
		return nil, nil, err
	}
	login, err := loginFor(m, ep, user)
	if err != nil {
		return nil, nil, err
	}
	if c := a.reuse(ctx, ep, login); c != nil {
		return c, func() { a.putBack(ep, login, c) }, nil
	}
	if err := a.takeSlot(ctx, ep, wait); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	c, err := imapconn.Dial(ctx, ep.Addr, login, ep.Options)
	if err != nil {
		a.releaseSlot(ep)
		if ctx.Err() == nil {
			a.Metrics.IMAPError(ep.Name, faultKind(err))
		}
		return nil, nil, temporalError(fmt.Sprintf("mailbox %s: %s", m.Address, ep.Name), err)
	}
	a.Metrics.LoggedIn(ep.Name, time.Since(start))
	return c, func() { a.putBack(ep, login, c) }, nil
}

func acquire(ctx context.Context, slots chan struct{}) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case slots <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx)
			}
		}
	}
}
