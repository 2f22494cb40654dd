package imapconn_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/imapconn"
)

// requireTransient checks err is an *imapconn.Error worth a retry with
// exactly the text want.
func requireTransient(t *testing.T, err error, want string) {
	t.Helper()
	require.EqualError(t, err, want)
	var ie *imapconn.Error
	require.ErrorAs(t, err, &ie)
	require.Equal(t, imapconn.KindUnavailable, ie.Kind)
	require.False(t, ie.Permanent, "a timeout is worth a retry")
}

// A server that accepts TCP and never greets fails Dial within the dial
// timeout, naming the greeting (imap://) or the TLS handshake (imaps://).
func TestDialNoGreetingTimesOut(t *testing.T) {
	silent := startQuiet(t, "")
	for _, tc := range []struct {
		tls  bool
		want string
	}{
		{false, "no greeting within 300ms"},
		{true, "no TLS handshake within 300ms"},
	} {
		a := silent
		a.TLS = tc.tls
		start := time.Now()
		_, err := imapconn.Dial(ctxT(t), a, imapconn.Login{Username: "u", Password: "p"}, imapconn.Options{DialTimeout: 300 * time.Millisecond})
		requireTransient(t, err, a.String()+": "+tc.want)
		require.Less(t, time.Since(start), 3*time.Second)

		start = time.Now()
		_, err = imapconn.DialAppender(ctxT(t), a, imapconn.Login{Username: "u", Password: "p"}, imapconn.Options{DialTimeout: 300 * time.Millisecond}, 4)
		requireTransient(t, err, a.String()+": "+tc.want)
		require.Less(t, time.Since(start), 3*time.Second)
	}
}

// startQuiet starts a server that sends greeting (nothing if ""), then
// reads what comes and never answers.
func startQuiet(t *testing.T, greeting string) imapconn.Address {
	t.Helper()
	ln := serveLoopback(t, func(conn net.Conn) {
		conn.SetDeadline(time.Now().Add(guard))
		conn.Write([]byte(greeting))
		io.Copy(io.Discard, conn) // until the client hangs up
	})
	return addr(t, ln.Addr().String())
}

// A server that greets and then never answers LOGIN (or AUTHENTICATE)
// fails Dial within the dial timeout, naming the command.
func TestDialLoginStallsTimesOut(t *testing.T) {
	a := startQuiet(t, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN LITERAL+] mute\r\n")
	opts := imapconn.Options{DialTimeout: 300 * time.Millisecond}
	start := time.Now()
	_, err := imapconn.Dial(ctxT(t), a, imapconn.Login{Username: "u", Password: "secret"}, opts)
	requireTransient(t, err, a.String()+": no answer to LOGIN within 300ms")
	require.Less(t, time.Since(start), 3*time.Second)

	_, err = imapconn.Dial(ctxT(t), a, imapconn.Login{Username: "admin", Password: "secret", AuthzID: "u"}, opts)
	requireTransient(t, err, a.String()+": no answer to AUTHENTICATE within 300ms")

	_, err = imapconn.DialAppender(ctxT(t), a, imapconn.Login{Username: "u", Password: "secret"}, opts, 4)
	requireTransient(t, err, a.String()+": no answer to LOGIN within 300ms")
}

// After login, a command the server never answers fails once nothing has
// moved for the idle timeout; a connection with no command outstanding
// stays up however long it is quiet.
func TestIdleTimeoutEndsStalledCommand(t *testing.T) {
	f := startFake(t, true, "/", func(cmd, _ string) []string {
		if cmd == "EXAMINE" {
			return nil // stuck
		}
		return []string{"TAG OK"}
	})
	idle := 300 * time.Millisecond
	c, err := imapconn.Dial(ctxT(t), addr(t, f.ln.Addr().String()), imapconn.Login{Username: "u", Password: "p"}, imapconn.Options{IdleTimeout: idle})
	require.NoError(t, err)
	defer c.Close()

	<-time.After(3 * idle) // quiet, with nothing outstanding
	require.NoError(t, c.C.Noop().Wait(), "a quiet connection is not timed out")

	start := time.Now()
	_, err = c.Select("INBOX", true)
	t.Log(err)
	require.GreaterOrEqual(t, time.Since(start), idle)
	require.Less(t, time.Since(start), 3*time.Second)
	var ie *imapconn.Error
	require.ErrorAs(t, err, &ie)
	require.Equal(t, imapconn.KindUnavailable, ie.Kind)
	require.False(t, ie.Permanent)
	require.Contains(t, err.Error(), c.Addr.String()+": no data from the server for 300ms while waiting for the answer to EXAMINE")
}

// throttle is a TCP proxy to target that passes the server's bytes on in
// chunks of step bytes, one chunk per tick, and stops passing them (while
// keeping the connection open) after stallAfter bytes if that is > 0.
func throttle(t *testing.T, target string, step int, tick time.Duration, stallAfter int) string {
	t.Helper()
	ln := serveLoopback(t, func(client net.Conn) {
		server, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			tk := time.NewTicker(tick)
			defer tk.Stop()
			buf := make([]byte, step)
			sent := 0
			for stallAfter <= 0 || sent < stallAfter {
				n, err := server.Read(buf)
				if n > 0 {
					if _, werr := client.Write(buf[:n]); werr != nil {
						return
					}
					sent += n
				}
				if err != nil {
					return
				}
				<-tk.C
			}
			io.Copy(io.Discard, server) // stalled: hold on until closed
		}()
		io.Copy(server, client) // until the client hangs up or the test ends
		server.Close()
		<-done
	})
	return ln.Addr().String()
}

// fetchBody fetches the whole message uid of INBOX.
func fetchBody(c *imapconn.Conn, uid imap.UID) ([]byte, error) {
	if _, err := c.Select("INBOX", true); err != nil {
		return nil, err
	}
	msgs, err := c.C.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		return nil, imapconn.Classify("fetch", err)
	}
	if len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
		return nil, io.ErrUnexpectedEOF
	}
	return msgs[0].BodySection[0].Bytes, nil
}

// A large message that streams slowly but steadily is not cut by an idle
// timeout shorter than the whole transfer; one that stops streaming is.
func TestIdleTimeoutLetsSteadyStreamThrough(t *testing.T) {
	s, mb := startServer(t)
	login := imapconn.Login{Username: mb.User, Password: mb.Password}
	var msg bytes.Buffer
	msg.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\n\r\n")
	for msg.Len() < 256<<10 {
		msg.WriteString(strings.Repeat("slow and steady ", 4) + "\r\n")
	}
	direct, err := imapconn.Dial(ctxT(t), addr(t, s.Addr()), login, imapconn.Options{})
	require.NoError(t, err)
	app := direct.C.Append("INBOX", int64(msg.Len()), nil)
	_, err = app.Write(msg.Bytes())
	require.NoError(t, err)
	require.NoError(t, app.Close())
	ad, err := app.Wait()
	require.NoError(t, err)
	direct.Close()

	idle := 300 * time.Millisecond
	opts := imapconn.Options{IdleTimeout: idle}

	// 4 KiB every 20ms: the 256 KiB message takes about 1.3s, over 4 idle timeouts.
	c, err := imapconn.Dial(ctxT(t), addr(t, throttle(t, s.Addr(), 4<<10, 20*time.Millisecond, 0)), login, opts)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	body, err := fetchBody(c, ad.UID)
	require.NoError(t, err)
	require.Greater(t, time.Since(start), idle, "the transfer outlasted the idle timeout")
	require.Equal(t, msg.Bytes(), body)

	// The same, stalling after 64 KiB of the server's bytes: the FETCH fails.
	c2, err := imapconn.Dial(ctxT(t), addr(t, throttle(t, s.Addr(), 4<<10, time.Millisecond, 64<<10)), login, opts)
	require.NoError(t, err)
	defer c2.Close()
	done := make(chan error, 1)
	go func() { _, err := fetchBody(c2, ad.UID); done <- err }()
	select {
	case err := <-done:
		t.Log(err)
		var ie *imapconn.Error
		require.ErrorAs(t, err, &ie)
		require.Equal(t, imapconn.KindUnavailable, ie.Kind)
		require.False(t, ie.Permanent)
		require.Contains(t, err.Error(), c2.Addr.String()+": no data from the server for 300ms while waiting for the answer to UID FETCH")
	case <-time.After(guard):
		t.Fatal("a stalled FETCH was not timed out")
	}
}
