// Package imapconn dials IMAP endpoints and wraps the go-imap v2 client with
// the few operations mailshift needs, classifying server answers into
// permanent and transient faults.
package imapconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// Address is a parsed endpoint URL: imap://host:143 (STARTTLS whenever the
// server offers it, and required unless the host is loopback or the endpoint
// allows plaintext: see ChooseSecurity) or imaps://host:993 (implicit TLS).
type Address struct {
	Host string
	Port int
	TLS  bool
}

func (a Address) String() string {
	scheme := "imap"
	if a.TLS {
		scheme = "imaps"
	}
	return scheme + "://" + net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
}

// HostPort is host:port for net.Dial.
func (a Address) HostPort() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// ParseAddress parses an endpoint URL and refuses credentials embedded in it.
func ParseAddress(raw string) (Address, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Address{}, fmt.Errorf("%q is not a URL", redact(raw))
	}
	if u.User != nil {
		return Address{}, errors.New("credentials must not be embedded in the URL; use a secret reference")
	}
	var a Address
	switch u.Scheme {
	case "imap":
		a.Port = 143
	case "imaps":
		a.Port, a.TLS = 993, true
	default:
		return Address{}, fmt.Errorf("%q: scheme must be imap or imaps", redact(raw))
	}
	a.Host = u.Hostname()
	if a.Host == "" {
		return Address{}, fmt.Errorf("%q: no host", raw)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return Address{}, fmt.Errorf("%q: bad port", raw)
		}
		a.Port = n
	}
	return a, nil
}

// redact hides what could be credentials in an endpoint URL that is echoed
// in an error: everything before the last "@" of the authority.
func redact(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 && i < at {
		start = i + 3
	}
	return raw[:start] + "***" + raw[at:]
}

// Login holds resolved credentials. It is never serialised.
type Login struct {
	Username string
	Password string
	// AuthzID, when set, authenticates Username on behalf of AuthzID with SASL PLAIN.
	AuthzID string
	// Token, when set, logs in to Username's mailbox with a bearer token
	// (SASL XOAUTH2, or OAUTHBEARER where the server offers only that)
	// instead of a password. It is asked for one at every login; an
	// app-only token opens every mailbox its app was given.
	Token func(ctx context.Context) (string, error)
	// Tenant is the directory the token must come from (the endpoint's
	// tenant_id), to name a refusal's cause; "" if unknown.
	Tenant string
	// Credential names what the token comes from (never the secret), so
	// that connections logged in with different credentials are not
	// mistaken for each other.
	Credential string
}

// The user whose mailbox this login opens.
func (l Login) mailboxUser() string {
	if l.AuthzID != "" {
		return l.AuthzID
	}
	return l.Username
}

// Options tune a connection.
type Options struct {
	// RootCAs verifies server certificates; nil means the system's roots
	// (LoadCAFile adds a private CA to them).
	RootCAs *x509.CertPool
	// TLSServerName is the name the server's certificate must carry (and
	// the SNI sent); "" means the URL's host.
	TLSServerName string
	// TLSInsecureSkipVerify accepts any certificate: lab servers only.
	TLSInsecureSkipVerify bool
	// AllowPlaintext lets an imap:// connection to a host that is not
	// loopback go on without TLS when the server does not offer STARTTLS.
	AllowPlaintext bool
	// DialTimeout bounds, all together, every step before a connection
	// is ready: TCP connect, greeting, CAPABILITY, STARTTLS and TLS
	// handshake, LOGIN or AUTHENTICATE, and what Dial asks after login
	// (default DefaultDialTimeout, 30s).
	DialTimeout time.Duration
	// IdleTimeout fails a ready connection on which a command waits for
	// its answer while no byte moves, either way, for this long (default
	// DefaultIdleTimeout, 60s). Bytes that keep moving push it back, so a
	// large message that streams slowly is not cut; a connection with no
	// command outstanding may stay quiet for ever (an IDLE command would
	// be cut; mailshift sends none).
	IdleTimeout time.Duration

	// dial replaces the TCP dialer in tests.
	dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Conn is one authenticated IMAP connection.
type Conn struct {
	C        *imapclient.Client
	Addr     Address
	User     string
	Delim    rune
	caps     imap.CapSet
	security Security
	tlsState *tls.ConnectionState
	raw      *timedConn

	mu sync.Mutex
	// unbind stops the tie to the context the connection serves now
	// (closing it when that context ends); nil while detached.
	unbind func() bool
}

// Security is how the connection is protected.
func (c *Conn) Security() Security { return c.security }

// TLSState is the connection's TLS state, or nil for plaintext.
func (c *Conn) TLSState() *tls.ConnectionState { return c.tlsState }

// Fault kinds, used as Temporal application error types by the activities.
const (
	KindAuth        = "AuthFailed"
	KindNonExistent = "MailboxNotFound"
	KindTooBig      = "TooBig"
	KindOverQuota   = "OverQuota"
	KindRejected    = "Rejected"
	KindUnavailable = "Unavailable"
	// KindConfig: the endpoint's configuration does not let the connection
	// go on (plaintext refused, a certificate that does not verify); a
	// retry cannot help.
	KindConfig = "ConfigError"
	// KindThrottled: the server asks the client to slow down (Exchange
	// Online: "BAD Request is throttled. Suggested Backoff Time: <N>
	// milliseconds", then it drops the connection). Not the message's
	// fault, and not a failure: wait Backoff and go on.
	KindThrottled = "Throttled"
)

// Error is an IMAP fault with a kind and whether a retry can help.
type Error struct {
	Kind      string
	Op        string
	Permanent bool
	Err       error
	// Backoff is how long a throttled client should wait (KindThrottled).
	Backoff time.Duration
}

// DefaultThrottleBackoff is the wait after a throttling answer that
// suggests none.
const DefaultThrottleBackoff = 5 * time.Second

var throttleText = regexp.MustCompile(`(?i)\bthrottled\b(?:.*?backoff time:\s*(\d+)\s*milliseconds)?`)

// throttled recognises a throttling answer and its suggested back-off.
func throttled(text string) (time.Duration, bool) {
	m := throttleText.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	if ms, err := strconv.Atoi(m[1]); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond, true
	}
	return DefaultThrottleBackoff, true
}

// Throttled reports whether err is a server's request to slow down, and
// for how long.
func Throttled(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.Kind == KindThrottled {
		return e.Backoff, true
	}
	return 0, false
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Classify turns a client error into an *Error.
func Classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		if d, ok := throttled(ie.Text); ok {
			return &Error{Kind: KindThrottled, Op: op, Err: err, Backoff: d}
		}
		switch ie.Code {
		case imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed, imap.ResponseCodeExpired:
			return &Error{Kind: KindAuth, Op: op, Permanent: true, Err: err}
		case imap.ResponseCodeNonExistent, imap.ResponseCodeTryCreate:
			return &Error{Kind: KindNonExistent, Op: op, Permanent: true, Err: err}
		case imap.ResponseCodeTooBig, imap.ResponseCodeLimit:
			return &Error{Kind: KindTooBig, Op: op, Permanent: true, Err: err}
		case imap.ResponseCodeOverQuota:
			return &Error{Kind: KindOverQuota, Op: op, Permanent: true, Err: err}
		case imap.ResponseCodeUnavailable, imap.ResponseCodeServerBug, imap.ResponseCodeInUse:
			return &Error{Kind: KindUnavailable, Op: op, Err: err}
		}
		if ie.Type == imap.StatusResponseTypeNo || ie.Type == imap.StatusResponseTypeBad {
			return &Error{Kind: KindRejected, Op: op, Permanent: true, Err: err}
		}
	}
	return &Error{Kind: KindUnavailable, Op: op, Err: err}
}

// Dial connects (see ChooseSecurity for when TLS is used or required),
// authenticates and learns the hierarchy delimiter.
func Dial(ctx context.Context, addr Address, login Login, opts Options) (*Conn, error) {
	// The token first: a credential that cannot get one costs the server
	// no connection.
	var token string
	if login.Token != nil {
		var err error
		if token, err = tokenFor(ctx, login); err != nil {
			return nil, err
		}
	}
	raw, sec, st, err := connect(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	c := imapclient.New(raw, &imapclient.Options{})
	// The client has no context support: closing the connection is how a
	// cancelled activity unblocks a stuck command.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	conn := &Conn{C: c, Addr: addr, User: login.mailboxUser(), security: sec, tlsState: st, raw: raw}
	// fail reports step op; what names it in "no ... within" when the dial
	// timeout ends it.
	fail := func(op, what string, err error) (*Conn, error) {
		stop()
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if raw.timedOut() {
			return nil, notWithin(addr, what, opts.dialTimeout())
		}
		return nil, Classify(op+" "+addr.String()+" as "+conn.User, err)
	}
	if err := c.WaitGreeting(); err != nil {
		return fail("greeting", "greeting", err)
	}
	step := "answer to LOGIN"
	switch {
	case login.Token != nil:
		step = "answer to AUTHENTICATE"
		var sc sasl.Client
		if sc, err = bearerClient(c, login.Username, token, login.Tenant); err != nil {
			return fail("login", step, err)
		}
		err = c.Authenticate(sc)
	case login.AuthzID != "":
		step = "answer to AUTHENTICATE"
		err = c.Authenticate(sasl.NewPlainClient(login.AuthzID, login.Username, login.Password))
	default:
		err = c.Login(login.Username, login.Password).Wait()
	}
	if err != nil {
		return fail("login", step, loginError("login", addr, err))
	}
	// Most servers (Dovecot among them) list their capabilities in
	// LOGIN's answer, which saves asking for them.
	caps := c.Caps()
	if caps == nil {
		if caps, err = c.Capability().Wait(); err != nil {
			return fail("capability", "answer to CAPABILITY", err)
		}
	}
	conn.caps = caps
	// LIST "" "" returns the delimiter without listing anything.
	l, err := c.List("", "", nil).Collect()
	if err != nil {
		return fail("list", "answer to LIST", err)
	}
	conn.Delim = '/'
	if len(l) > 0 && l[0].Delim != 0 {
		conn.Delim = l[0].Delim
	}
	raw.ready(opts.idleTimeout())
	stop()
	conn.Attach(ctx)
	return conn, nil
}

// Attach ties the connection to ctx: when ctx ends, the connection is
// closed, which is how a cancelled activity unblocks a stuck command (the
// client has no context support). Dial attaches it to its own context.
func (c *Conn) Attach(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { c.C.Close() })
	c.mu.Lock()
	old := c.unbind
	c.unbind = stop
	c.mu.Unlock()
	if old != nil {
		old()
	}
}

// Detach unties the connection from its context so that it can outlive
// it, idle in a pool. It reports whether the connection is fit to be used
// again: not closed (by its context or the server), and with every
// command it sent answered.
func (c *Conn) Detach() bool {
	c.mu.Lock()
	stop := c.unbind
	c.unbind = nil
	c.mu.Unlock()
	if stop != nil && !stop() {
		return false // its context ended and closed it
	}
	select {
	case <-c.C.Closed():
		return false
	default:
	}
	switch c.C.State() {
	case imap.ConnStateAuthenticated, imap.ConnStateSelected:
	default:
		return false
	}
	return c.raw.quiet()
}

// Has reports whether the server advertised a capability.
func (c *Conn) Has(cap imap.Cap) bool { return c.caps.Has(cap) }

// Close logs out politely and closes the socket.
func (c *Conn) Close() error {
	done := make(chan struct{})
	go func() {
		_ = c.C.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return c.C.Close()
}

// Folder is one mailbox folder as listed by the server.
type Folder struct {
	Name       string // as the server names it (UTF-8, server delimiter)
	Path       []string
	Attrs      []imap.MailboxAttr
	NoSelect   bool
	SpecialUse imap.MailboxAttr // \Sent, \Drafts, ... or ""
}

var specialUses = []imap.MailboxAttr{imap.MailboxAttrSent, imap.MailboxAttrDrafts, imap.MailboxAttrTrash, imap.MailboxAttrJunk, imap.MailboxAttrArchive, imap.MailboxAttrAll, imap.MailboxAttrFlagged}

// Folders lists every folder, with special-use attributes when offered.
func (c *Conn) Folders() ([]Folder, error) {
	var opts *imap.ListOptions
	if c.Has(imap.CapSpecialUse) {
		opts = &imap.ListOptions{ReturnSpecialUse: true}
	}
	list, err := c.C.List("", "*", opts).Collect()
	if err != nil {
		return nil, Classify("list", err)
	}
	out := make([]Folder, 0, len(list))
	for _, l := range list {
		f := Folder{Name: l.Mailbox, Attrs: l.Attrs}
		if l.Delim != 0 {
			f.Path = strings.Split(l.Mailbox, string(l.Delim))
		} else {
			f.Path = []string{l.Mailbox}
		}
		for _, a := range l.Attrs {
			switch {
			case strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)), strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent)):
				f.NoSelect = true
			}
			for _, su := range specialUses {
				if strings.EqualFold(string(a), string(su)) {
					f.SpecialUse = su
				}
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// Select opens a folder; readOnly uses EXAMINE so no flag changes happen.
func (c *Conn) Select(name string, readOnly bool) (*imap.SelectData, error) {
	opts := &imap.SelectOptions{ReadOnly: readOnly}
	if c.Has(imap.CapCondStore) {
		opts.CondStore = true
	}
	d, err := c.C.Select(name, opts).Wait()
	if err != nil {
		return nil, Classify("select "+name, err)
	}
	return d, nil
}

// Create makes a folder; an existing folder is not an error.
func (c *Conn) Create(name string) error {
	err := c.C.Create(name, nil).Wait()
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) && alreadyExists(ie) {
		return nil
	}
	return Classify("create "+name, err)
}

// alreadyExists recognises "NO [ALREADYEXISTS]" and, from servers that send
// no response code, a text saying so; "[NONEXISTENT] parent does not exist"
// and the like are failures.
func alreadyExists(ie *imap.Error) bool {
	if ie.Code != "" {
		return ie.Code == imap.ResponseCodeAlreadyExists
	}
	t := strings.ToLower(ie.Text)
	return strings.Contains(t, "exist") && !strings.Contains(t, "not exist") && !strings.Contains(t, "n't exist") && !strings.Contains(t, "nonexist")
}
