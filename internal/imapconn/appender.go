package imapconn

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
)

// Appender is a bare IMAP connection that only APPENDs, with
// non-synchronizing literals (LITERAL+) and several commands in flight. The
// go-imap client sends every literal over 4 KiB as a synchronizing literal
// and mailshift would wait for each answer: two round trips per message.
// Answers arrive in order on Results.
type Appender struct {
	conn    net.Conn
	bw      *bufio.Writer
	br      *bufio.Reader
	next    int
	results chan AppendResult
	done    chan struct{}
	err     error
	onClose func()
	closed  bool
	// raw and stopDial serve the dial only: the connection's timers, and
	// the tie of the dial's context to the connection.
	raw      *timedConn
	stopDial func()
	// selected is the mailbox the session has open (see Append); the read
	// loop clears it when the server refuses the SELECT.
	mu       sync.Mutex
	selected string
}

// OnClose registers f to run once when Close is called.
func (a *Appender) OnClose(f func()) { a.onClose = f }

// AppendResult is the server's answer to one APPEND.
type AppendResult struct {
	Tag         string
	OK          bool
	UIDValidity uint32
	UID         uint32
	// Err is the refusal (a *imap.Error with its response code) or a
	// connection failure.
	Err error
}

// ErrNoLiteralPlus means the server does not offer LITERAL+; use the
// ordinary client instead.
var ErrNoLiteralPlus = errors.New("server does not offer LITERAL+")

// DialAppender connects as Dial does (TLS, STARTTLS or plaintext by the
// same policy) and logs in. window bounds the answers buffered.
func DialAppender(ctx context.Context, addr Address, login Login, opts Options, window int) (*Appender, error) {
	var token string
	if login.Token != nil {
		var err error
		if token, err = tokenFor(ctx, login); err != nil {
			return nil, err
		}
	}
	conn, _, _, err := connect(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	a := &Appender{conn: conn, raw: conn, bw: bufio.NewWriterSize(conn, 64<<10), br: bufio.NewReaderSize(conn, 16<<10),
		results: make(chan AppendResult, window+4), done: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	a.stopDial = func() { stop() }
	// step names, in "no ... within", what the dial timeout ends.
	step := "greeting"
	fail := func(err error) (*Appender, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if conn.timedOut() {
			return nil, notWithin(addr, step, opts.dialTimeout())
		}
		return nil, err
	}
	greeting, err := a.line()
	if err != nil {
		return fail(&Error{Kind: KindUnavailable, Op: "greeting " + addr.String(), Err: err})
	}
	if !strings.HasPrefix(greeting, "* OK") && !strings.HasPrefix(greeting, "* PREAUTH") {
		return fail(&Error{Kind: KindUnavailable, Op: "greeting " + addr.String(), Err: errors.New(greeting)})
	}
	if login.Token != nil {
		step = "answer to AUTHENTICATE"
		if err := a.authenticate(greeting, login.Username, token, login.Tenant); err != nil {
			return fail(loginError("login "+addr.String()+" as "+login.mailboxUser(), addr, err))
		}
		return a.ready(ctx, addr, opts, fail, &step)
	}
	var cmd string
	if login.AuthzID != "" {
		ir := base64.StdEncoding.EncodeToString([]byte(login.AuthzID + "\x00" + login.Username + "\x00" + login.Password))
		cmd = "AUTHENTICATE PLAIN " + ir
		step = "answer to AUTHENTICATE"
	} else {
		u, err1 := quote(login.Username)
		p, err2 := quote(login.Password)
		if err := errors.Join(err1, err2); err != nil {
			return fail(err)
		}
		cmd = "LOGIN " + u + " " + p
		step = "answer to LOGIN"
	}
	if _, err := a.command(cmd, nil); err != nil {
		return fail(loginError("login "+addr.String()+" as "+login.mailboxUser(), addr, err))
	}
	return a.ready(ctx, addr, opts, fail, &step)
}

// ready checks, once logged in, that the server takes LITERAL+, and starts
// reading answers.
func (a *Appender) ready(ctx context.Context, addr Address, opts Options, fail func(error) (*Appender, error), step *string) (*Appender, error) {
	conn := a.raw
	// Servers may extend their capabilities after login (go-imap's server
	// offers LITERAL+ only then), so ask now.
	var caps string
	*step = "answer to CAPABILITY"
	if _, err := a.command("CAPABILITY", func(l string) {
		if strings.HasPrefix(strings.ToUpper(l), "* CAPABILITY ") {
			caps = strings.ToUpper(l)
		}
	}); err != nil {
		return fail(Classify("capability "+addr.String(), err))
	}
	if !strings.Contains(caps+" ", " LITERAL+ ") {
		return fail(ErrNoLiteralPlus)
	}
	conn.ready(opts.idleTimeout())
	a.stopDial()
	context.AfterFunc(ctx, func() { conn.Close() })
	go a.readLoop()
	return a, nil
}

// authenticate logs in with a bearer token: XOAUTH2 when the server
// offers it, else OAUTHBEARER, with the initial response on the command
// line where SASL-IR allows. An error challenge is answered with the
// empty response the mechanisms ask for (which go-imap cannot send), so
// the server's final answer comes too; the refusal carries the challenge.
func (a *Appender) authenticate(greeting, user, token, tenant string) error {
	caps := strings.ToUpper(greeting)
	if !strings.Contains(caps, "[CAPABILITY ") {
		caps = ""
		if _, err := a.command("CAPABILITY", func(l string) {
			if strings.HasPrefix(strings.ToUpper(l), "* CAPABILITY ") {
				caps = strings.ToUpper(l)
			}
		}); err != nil {
			return err
		}
	}
	has := func(c string) bool { return strings.Contains(caps+" ", " "+c+" ") || strings.Contains(caps, " "+c+"]") }
	mech, ir := "XOAUTH2", "user="+user+"\x01auth=Bearer "+token+"\x01\x01"
	switch {
	case has(capXOAUTH2):
	case has(capOAUTHBEARER):
		mech, ir = "OAUTHBEARER", "n,a="+strings.NewReplacer("=", "=3D", ",", "=2C").Replace(user)+",\x01auth=Bearer "+token+"\x01\x01"
	default:
		return &Error{Kind: KindConfig, Op: "login as " + user, Permanent: true,
			Err: errors.New("the server offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER, so a token cannot be used (is this endpoint's auth right?)")}
	}
	enc := base64.StdEncoding.EncodeToString([]byte(ir))
	a.next++
	tag := "m" + strconv.Itoa(a.next)
	cmd := tag + " AUTHENTICATE " + mech
	sendIR := !has("SASL-IR")
	if !sendIR {
		cmd += " " + enc
	}
	if _, err := a.bw.WriteString(cmd + "\r\n"); err != nil {
		return err
	}
	if err := a.bw.Flush(); err != nil {
		return err
	}
	var refusal string
	for {
		l, err := a.line()
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(l, "+"):
			reply := ""
			if sendIR {
				reply, sendIR = enc, false
			} else {
				b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(l, "+")))
				refusal = string(b)
			}
			if _, err := a.bw.WriteString(reply + "\r\n"); err != nil {
				return err
			}
			if err := a.bw.Flush(); err != nil {
				return err
			}
		case strings.HasPrefix(l, tag+" "):
			res := parseTagged(tag, l)
			if res.Err == nil {
				return nil
			}
			if refusal != "" {
				return refused(user, mech, refusal, token, tenant)
			}
			return res.Err
		}
	}
}

// quote makes an IMAP quoted string; credentials with CR or LF cannot be.
func quote(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", errors.New("credential contains a line break")
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`, nil
}

// line reads one response line, skipping over literals inside it.
func (a *Appender) line() (string, error) {
	var sb strings.Builder
	for {
		l, err := a.br.ReadString('\n')
		if err != nil {
			return "", err
		}
		l = strings.TrimRight(l, "\r\n")
		sb.WriteString(l)
		// A line ending in {n} is followed by n bytes of literal, then more line.
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}") {
			if n, err := strconv.ParseInt(strings.TrimSuffix(l[i+1:len(l)-1], "+"), 10, 64); err == nil {
				if _, err := io.CopyN(io.Discard, a.br, n); err != nil {
					return "", err
				}
				continue
			}
		}
		return sb.String(), nil
	}
}

// command runs one command synchronously (before the read loop starts).
func (a *Appender) command(cmd string, untagged func(string)) (string, error) {
	a.next++
	tag := "m" + strconv.Itoa(a.next)
	if _, err := a.bw.WriteString(tag + " " + cmd + "\r\n"); err != nil {
		return "", err
	}
	if err := a.bw.Flush(); err != nil {
		return "", err
	}
	for {
		l, err := a.line()
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(l, tag+" ") {
			res := parseTagged(tag, l)
			if res.Err != nil {
				return l, res.Err
			}
			return l, nil
		}
		if untagged != nil {
			untagged(l)
		}
	}
}

func parseTagged(tag, l string) AppendResult {
	res := AppendResult{Tag: tag}
	rest := strings.TrimPrefix(l, tag+" ")
	status, text, _ := strings.Cut(rest, " ")
	var code string
	if strings.HasPrefix(text, "[") {
		if end := strings.IndexByte(text, ']'); end > 0 {
			code, text = text[1:end], strings.TrimSpace(text[end+1:])
		}
	}
	switch strings.ToUpper(status) {
	case "OK":
		res.OK = true
		if f := strings.Fields(code); len(f) == 3 && strings.EqualFold(f[0], "APPENDUID") {
			v, _ := strconv.ParseUint(f[1], 10, 32)
			u, _ := strconv.ParseUint(f[2], 10, 32)
			res.UIDValidity, res.UID = uint32(v), uint32(u)
		}
	case "NO", "BAD":
		typ := imap.StatusResponseTypeNo
		if strings.EqualFold(status, "BAD") {
			typ = imap.StatusResponseTypeBad
		}
		name, _, _ := strings.Cut(code, " ")
		res.Err = &imap.Error{Type: typ, Code: imap.ResponseCode(strings.ToUpper(name)), Text: text}
	default:
		res.Err = fmt.Errorf("unexpected answer %q", l)
	}
	return res
}

func (a *Appender) readLoop() {
	defer close(a.done)
	defer close(a.results)
	for {
		l, err := a.line()
		if err != nil {
			a.err = err
			return
		}
		if strings.HasPrefix(l, "* BYE") {
			a.err = errors.New(l)
			return
		}
		if strings.HasPrefix(l, "*") || strings.HasPrefix(l, "+") {
			continue
		}
		tag, _, _ := strings.Cut(l, " ")
		if strings.HasPrefix(tag, "s") {
			// Append's own SELECT. A refusal also shows in the APPEND's
			// answer; forget the mailbox so the next Append selects again.
			if res := parseTagged(tag, l); !res.OK {
				a.mu.Lock()
				a.selected = ""
				a.mu.Unlock()
			}
			continue
		}
		a.results <- parseTagged(tag, l)
	}
}

// Results delivers one answer per Append, in order; it is closed when the
// connection ends (then Err tells why).
func (a *Appender) Results() <-chan AppendResult { return a.results }

// Err is why the connection ended, once Results is closed.
func (a *Appender) Err() error {
	<-a.done
	if a.err == nil {
		return io.ErrUnexpectedEOF
	}
	return a.err
}

// Append writes one APPEND with its literal and returns its tag without
// waiting for the answer.
func (a *Appender) Append(mailbox string, flags []imap.Flag, date time.Time, size int64, body io.Reader) (string, error) {
	a.next++
	tag := "m" + strconv.Itoa(a.next)
	var sb strings.Builder
	a.mu.Lock()
	reselect := a.selected != mailbox
	a.selected = mailbox
	a.mu.Unlock()
	if reselect {
		// With the mailbox open in the session Dovecot adds each message to
		// its open index and UID list; appending to a closed mailbox reopens
		// it and rewrites the maildir UID list every time.
		sb.WriteString("s" + strconv.Itoa(a.next) + " SELECT " + quoteMailbox(mailbox) + "\r\n")
	}
	sb.WriteString(tag + " APPEND " + quoteMailbox(mailbox))
	if len(flags) > 0 {
		fs := make([]string, len(flags))
		for i, f := range flags {
			fs[i] = string(f)
		}
		sb.WriteString(" (" + strings.Join(fs, " ") + ")")
	}
	if !date.IsZero() {
		sb.WriteString(` "` + date.Format("02-Jan-2006 15:04:05 -0700") + `"`)
	}
	sb.WriteString(" {" + strconv.FormatInt(size, 10) + "+}\r\n")
	if _, err := a.bw.WriteString(sb.String()); err != nil {
		return tag, err
	}
	n, err := io.Copy(a.bw, body)
	if err == nil && n != size {
		err = fmt.Errorf("message delivered %d of %d bytes", n, size)
	}
	if err != nil {
		// The literal is short: the connection cannot carry another command.
		a.conn.Close()
		return tag, err
	}
	if _, err := a.bw.WriteString("\r\n"); err != nil {
		return tag, err
	}
	// Flush only when the buffer is full or the caller waits: small
	// messages then travel several to a packet.
	return tag, nil
}

// Flush sends what is buffered.
func (a *Appender) Flush() error { return a.bw.Flush() }

// Close logs out and closes the connection.
func (a *Appender) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	a.bw.WriteString("z LOGOUT\r\n")
	a.bw.Flush()
	err := a.conn.Close()
	if a.onClose != nil {
		a.onClose()
	}
	return err
}

// quoteMailbox encodes a mailbox name in modified UTF-7 (RFC 3501 5.1.3)
// as an IMAP quoted string.
func quoteMailbox(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	var sb strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		b := make([]byte, 2*len(u))
		for i, c := range u {
			b[2*i], b[2*i+1] = byte(c>>8), byte(c)
		}
		enc := base64.RawStdEncoding.EncodeToString(b)
		sb.WriteString("&" + strings.ReplaceAll(enc, "/", ",") + "-")
		run = run[:0]
	}
	for _, r := range name {
		switch {
		case r == '&':
			flush()
			sb.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			sb.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(sb.String()) + `"`
}
