package imapconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Default timeouts (see Options.DialTimeout and Options.IdleTimeout).
const (
	// DefaultDialTimeout bounds everything before a connection is ready:
	// TCP connect, greeting, CAPABILITY, STARTTLS and TLS handshake,
	// LOGIN or AUTHENTICATE, and the commands Dial sends after them.
	DefaultDialTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long a ready connection may go without a
	// byte moving while a command waits for its answer.
	DefaultIdleTimeout = 60 * time.Second
)

func (o Options) dialTimeout() time.Duration {
	if o.DialTimeout > 0 {
		return o.DialTimeout
	}
	return DefaultDialTimeout
}

func (o Options) idleTimeout() time.Duration {
	if o.IdleTimeout > 0 {
		return o.IdleTimeout
	}
	return DefaultIdleTimeout
}

// timedConn owns the deadlines of an IMAP connection. Until ready is
// called, one absolute deadline set on the underlying connection by
// connect bounds every read and write (the pre-login steps). Afterwards,
// while a command sent on it has no tagged answer yet, a read or write
// fails once no byte has moved for the idle timeout; every byte that
// moves pushes the deadline back, so a long literal that streams steadily
// is never cut. With no command outstanding the connection may stay quiet
// for ever.
//
// It follows the lines of both directions, passing over literals, to know
// which commands are outstanding; only command names are kept, never
// their arguments.
type timedConn struct {
	net.Conn           // TCP or TLS; its deadlines are set here only
	r        io.Reader // what Read returns: a replayed greeting, then Conn
	addr     Address

	mu      sync.Mutex
	idle    time.Duration // 0 until ready
	expired bool          // a read or write hit its deadline
	pending []command     // sent, not answered, oldest first
	out, in lineScanner
}

type command struct{ tag, name string }

// readBuffer is the read buffer of a plaintext connection.
const readBuffer = 64 << 10

func newTimedConn(c net.Conn, r io.Reader, addr Address) *timedConn {
	if r == nil {
		r = c
	}
	return &timedConn{Conn: c, r: r, addr: addr}
}

// The deadlines of the wrapped connection are timedConn's alone: go-imap's
// client sets absolute ones (5 minutes for a whole literal) that would cut
// a long transfer, and none while it waits for an answer.
func (c *timedConn) SetDeadline(time.Time) error      { return nil }
func (c *timedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *timedConn) SetWriteDeadline(time.Time) error { return nil }

// ready ends the pre-login deadline and starts the idle timeout.
func (c *timedConn) ready(idle time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = idle
	c.Conn.SetWriteDeadline(time.Time{})
	c.armRead()
}

// timedOut reports whether a read or write hit its deadline.
func (c *timedConn) timedOut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expired
}

// quiet reports that no command waits for its answer and no deadline
// was hit: the connection can serve another command stream.
func (c *timedConn) quiet() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.expired && len(c.pending) == 0
}

// armRead sets the read deadline once ready (c.mu held).
func (c *timedConn) armRead() {
	if c.idle == 0 {
		return
	}
	if len(c.pending) > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	} else {
		c.Conn.SetReadDeadline(time.Time{})
	}
}

func (c *timedConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.in.feed(b[:n], c.answered)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.expired = true
		if c.idle > 0 {
			err = &timeoutError{fmt.Sprintf("%s: no data from the server for %s while waiting for the answer to %s", c.addr, c.idle, c.oldest())}
		}
		return n, err
	}
	c.armRead()
	return n, err
}

func (c *timedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.out.feed(b, c.sent)
	if c.idle > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
		c.armRead() // an answer is due; the server may be busy reading this
	}
	c.mu.Unlock()
	n, err := c.Conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.expired = true
		if c.idle > 0 {
			err = &timeoutError{fmt.Sprintf("%s: the server took nothing for %s while sending %s", c.addr, c.idle, c.oldest())}
		}
	}
	return n, err
}

// sent records a command line the client starts ("T12 UID FETCH ...").
// Lines without a space (AUTHENTICATE's continuation, DONE) are not
// commands.
func (c *timedConn) sent(head string) {
	f := strings.Fields(head)
	if len(f) < 2 {
		return
	}
	name := strings.ToUpper(f[1])
	if name == "UID" && len(f) > 2 {
		name += " " + strings.ToUpper(f[2])
	}
	c.pending = append(c.pending, command{tag: f[0], name: name})
}

// answered forgets the command whose tagged answer starts this line.
func (c *timedConn) answered(head string) {
	tag, _, _ := strings.Cut(head, " ")
	if tag == "*" || tag == "+" || tag == "" {
		return
	}
	for i, p := range c.pending {
		if p.tag == tag {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return
		}
	}
}

func (c *timedConn) oldest() string {
	if len(c.pending) == 0 {
		return "a command"
	}
	return c.pending[0].name
}

// timeoutError is an idle timeout; a net.Error so that callers treat it as
// they treat any deadline.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// lineScanner follows the lines of one direction of an IMAP stream and
// reports the first bytes of each line that starts a command or a
// response, passing over literals ({n}, {n+}, {n-} and ~{n}) and the rest
// of a line after a literal.
type lineScanner struct {
	head []byte // the line's first bytes
	tail []byte // the line's last bytes, to see a literal announced
	skip int64  // literal bytes still to pass over
	cont bool   // this line goes on after a literal
}

const (
	scanHead = 64
	scanTail = 32
)

func (s *lineScanner) feed(p []byte, line func(head string)) {
	for len(p) > 0 {
		if s.skip > 0 {
			k := min(int64(len(p)), s.skip)
			s.skip -= k
			p = p[k:]
			continue
		}
		chunk := p
		i := bytes.IndexByte(p, '\n')
		if i >= 0 {
			chunk = p[:i+1]
		}
		p = p[len(chunk):]
		if !s.cont && len(s.head) < scanHead {
			s.head = append(s.head, chunk[:min(len(chunk), scanHead-len(s.head))]...)
		}
		if len(chunk) >= scanTail {
			s.tail = append(s.tail[:0], chunk[len(chunk)-scanTail:]...)
		} else {
			s.tail = append(s.tail, chunk...)
			if len(s.tail) > scanTail {
				s.tail = append(s.tail[:0], s.tail[len(s.tail)-scanTail:]...)
			}
		}
		if i < 0 {
			return
		}
		if !s.cont {
			line(strings.TrimRight(string(s.head), "\r\n"))
		}
		s.skip = literalAt(s.tail)
		s.cont = s.skip > 0
		s.head, s.tail = s.head[:0], s.tail[:0]
	}
}

// literalAt is the size of the literal a line announces at its end, or 0.
func literalAt(tail []byte) int64 {
	t := bytes.TrimRight(tail, "\r\n")
	if len(t) < 3 || t[len(t)-1] != '}' {
		return 0
	}
	open := bytes.LastIndexByte(t, '{')
	if open < 0 {
		return 0
	}
	num := bytes.TrimRight(t[open+1:len(t)-1], "+-")
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
