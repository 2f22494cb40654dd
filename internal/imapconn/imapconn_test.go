package imapconn_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/imapconn"
)

// guard bounds every wait for something that must happen promptly.
const guard = 10 * time.Second

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want imapconn.Address
		str  string
		err  string
	}{
		{in: "imap://mail.example", want: imapconn.Address{Host: "mail.example", Port: 143}, str: "imap://mail.example:143"},
		{in: "imaps://mail.example", want: imapconn.Address{Host: "mail.example", Port: 993, TLS: true}, str: "imaps://mail.example:993"},
		{in: "imap://127.0.0.1:1143", want: imapconn.Address{Host: "127.0.0.1", Port: 1143}, str: "imap://127.0.0.1:1143"},
		{in: "IMAPS://Mail.Example:9993", want: imapconn.Address{Host: "Mail.Example", Port: 9993, TLS: true}, str: "imaps://Mail.Example:9993"},
		{in: "imaps://[::1]:993", want: imapconn.Address{Host: "::1", Port: 993, TLS: true}, str: "imaps://[::1]:993"},
		{in: "http://mail.example", err: "scheme must be imap or imaps"},
		{in: "mail.example:143", err: "scheme must be imap or imaps"},
		{in: "imap://user:hunter2@mail.example", err: "credentials must not be embedded"},
		{in: "imaps://user@mail.example", err: "credentials must not be embedded"},
		{in: "imap://", err: "no host"},
		{in: "imap://mail.example:0", err: "bad port"},
		{in: "imap://mail.example:65536", err: "bad port"},
		{in: "imap://mail.example:x", err: "not a URL"},
		{in: "imap://mail example", err: "not a URL"},
		{in: "imap://user:hunter2@mail example", err: "not a URL"},
		{in: "ftp://user:hunter2@mail.example", err: "credentials must not be embedded"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			a, err := imapconn.ParseAddress(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.NotContains(t, err.Error(), "hunter2", "a password in the URL is never echoed")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, a)
			require.Equal(t, tc.str, a.String())
			require.Equal(t, strings.TrimPrefix(strings.TrimPrefix(tc.str, "imaps://"), "imap://"), a.HostPort())
		})
	}
}

func TestClassify(t *testing.T) {
	require.NoError(t, imapconn.Classify("op", nil))
	for _, tc := range []struct {
		err       error
		kind      string
		permanent bool
	}{
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed}, imapconn.KindAuth, true},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed}, imapconn.KindAuth, true},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent}, imapconn.KindNonExistent, true},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig}, imapconn.KindTooBig, true},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota}, imapconn.KindOverQuota, true},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable}, imapconn.KindUnavailable, false},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeInUse}, imapconn.KindUnavailable, false},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Text: "no"}, imapconn.KindRejected, true},
		{&imap.Error{Type: imap.StatusResponseTypeBad, Text: "bad"}, imapconn.KindRejected, true},
		{fmt.Errorf("wrapped: %w", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota}), imapconn.KindOverQuota, true},
		{errors.New("connection reset by peer"), imapconn.KindUnavailable, false},
	} {
		err := imapconn.Classify("op", tc.err)
		var ie *imapconn.Error
		require.ErrorAs(t, err, &ie)
		require.Equal(t, tc.kind, ie.Kind, "%v", tc.err)
		require.Equal(t, tc.permanent, ie.Permanent, "%v", tc.err)
		require.ErrorIs(t, err, tc.err, "the cause stays reachable")
		require.True(t, strings.HasPrefix(err.Error(), "op: "))
	}
	// Already classified errors pass through unchanged.
	orig := &imapconn.Error{Kind: imapconn.KindTooBig, Op: "first", Permanent: true, Err: errors.New("x")}
	require.Same(t, orig, imapconn.Classify("second", orig))
}

// --- against an estate server ---------------------------------------------

func startServer(t *testing.T) (*estate.Server, *estate.Mailbox) {
	t.Helper()
	e := estate.Generate(estate.Spec{Seed: 5, Orgs: []estate.OrgSpec{{Code: "IC", Name: "Imapconn", Mailboxes: 1, MeanMessages: 20}}, LargeItems: -1})
	s, err := estate.StartServer(estate.ServerOptions{Name: "source"})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.Load(e))
	return s, e.Mailboxes()[0]
}

func addr(t *testing.T, hostport string) imapconn.Address {
	t.Helper()
	a, err := imapconn.ParseAddress("imap://" + hostport)
	require.NoError(t, err)
	return a
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestDialAuthFailed(t *testing.T) {
	s, mb := startServer(t)
	for name, login := range map[string]imapconn.Login{
		"wrong password":   {Username: mb.User, Password: mb.Password + "x"},
		"unknown user":     {Username: "nobody@example.invalid", Password: "x"},
		"foreign authzid":  {Username: mb.User, Password: mb.Password, AuthzID: "someone.else@example.invalid"},
		"authzid, bad pwd": {Username: mb.User, Password: "x", AuthzID: mb.User},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := imapconn.Dial(ctxT(t), addr(t, s.Addr()), login, imapconn.Options{})
			require.Nil(t, c)
			var ie *imapconn.Error
			require.ErrorAs(t, err, &ie)
			require.Equal(t, imapconn.KindAuth, ie.Kind)
			require.Equal(t, "AuthFailed", ie.Kind)
			require.True(t, ie.Permanent)
			require.NotContains(t, err.Error(), mb.Password, "the password is never echoed")
		})
	}
}

func TestDialUnavailable(t *testing.T) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hp := ln.Addr().String()
	ln.Close()
	_, err = imapconn.Dial(ctxT(t), addr(t, hp), imapconn.Login{Username: "u", Password: "p"}, imapconn.Options{DialTimeout: 5 * time.Second})
	var ie *imapconn.Error
	require.ErrorAs(t, err, &ie)
	require.Equal(t, imapconn.KindUnavailable, ie.Kind)
	require.False(t, ie.Permanent, "worth a retry")

	// TLS to a plain-text server fails the handshake, also transiently.
	s, mb := startServer(t)
	a := addr(t, s.Addr())
	a.TLS = true
	_, err = imapconn.Dial(ctxT(t), a, imapconn.Login{Username: mb.User, Password: mb.Password}, imapconn.Options{TLSInsecureSkipVerify: true})
	require.ErrorAs(t, err, &ie)
	require.Equal(t, imapconn.KindUnavailable, ie.Kind)
}

func TestConnOperations(t *testing.T) {
	s, mb := startServer(t)
	ctx := ctxT(t)

	t.Run("SASL PLAIN with authzid", func(t *testing.T) {
		c, err := imapconn.Dial(ctx, addr(t, s.Addr()), imapconn.Login{Username: mb.User, Password: mb.Password, AuthzID: mb.User}, imapconn.Options{})
		require.NoError(t, err)
		require.Equal(t, mb.User, c.User)
		require.NoError(t, c.Close())
	})

	c, err := imapconn.Dial(ctx, addr(t, s.Addr()), imapconn.Login{Username: mb.User, Password: mb.Password}, imapconn.Options{})
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, estate.Delimiter, c.Delim)
	require.Equal(t, mb.User, c.User)
	require.True(t, c.Has(imap.CapSpecialUse))
	require.True(t, c.Has(imap.CapUIDPlus))

	t.Run("folders with special use", func(t *testing.T) {
		folders, err := c.Folders()
		require.NoError(t, err)
		got := map[string]imapconn.Folder{}
		for _, f := range folders {
			got[f.Name] = f
		}
		require.Len(t, got, len(mb.Folders))
		for _, f := range mb.Folders {
			g, ok := got[f.Name]
			require.True(t, ok, "folder %q listed", f.Name)
			require.Equal(t, f.SpecialUse, g.SpecialUse, f.Name)
			require.Equal(t, strings.Split(f.Name, "/"), g.Path, f.Name)
			require.False(t, g.NoSelect, f.Name)
		}
		require.Equal(t, imap.MailboxAttrSent, got["Sent"].SpecialUse)
		require.Contains(t, got["Sent"].Attrs, imap.MailboxAttrSent)
		require.Equal(t, []string{"Réunions", "Été 2024"}, got["Réunions/Été 2024"].Path)
		require.Empty(t, got["INBOX"].SpecialUse)
	})

	t.Run("select", func(t *testing.T) {
		d, err := c.Select("Clinical & Admin", true)
		require.NoError(t, err)
		require.Equal(t, uint32(len(mb.Folder("Clinical & Admin").Messages)), d.NumMessages)
		require.NotZero(t, d.UIDValidity)

		_, err = c.Select("No Such Folder", true)
		var ie *imapconn.Error
		require.ErrorAs(t, err, &ie)
		require.Equal(t, imapconn.KindNonExistent, ie.Kind)
		require.True(t, ie.Permanent)
		require.Contains(t, err.Error(), "No Such Folder")
	})

	t.Run("create", func(t *testing.T) {
		require.NoError(t, c.Create("Sent"), "an existing folder is not an error")
		require.NoError(t, c.Create("INBOX"))
		require.NoError(t, c.Create("Réunions/Été 2024"))
		require.NoError(t, c.Create("Neu/Über & mehr"))
		require.NoError(t, c.Create("Neu/Über & mehr"), "idempotent")
		folders, err := c.Folders()
		require.NoError(t, err)
		var names []string
		for _, f := range folders {
			names = append(names, f.Name)
		}
		require.Contains(t, names, "Neu/Über & mehr")
		require.Equal(t, len(mb.Folders)+2, len(names), "Neu and its child, nothing doubled")
	})
}

// Cancelling the dial context closes a live connection.
func TestCancelClosesConnection(t *testing.T) {
	s, mb := startServer(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	c, err := imapconn.Dial(ctx, addr(t, s.Addr()), imapconn.Login{Username: mb.User, Password: mb.Password}, imapconn.Options{})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Select("INBOX", true)
	require.NoError(t, err)
	cancel()
	select {
	case <-c.C.Closed():
	case <-time.After(guard):
		t.Fatal("cancelling the context did not close the connection")
	}
	_, err = c.Select("INBOX", true)
	require.Error(t, err)
}

// --- against a scripted server --------------------------------------------

// fakeServer speaks just enough IMAP for Dial and answers every other command
// with what reply returns; a nil reply never answers (a stuck server).
type fakeServer struct {
	ln       net.Listener
	greet    bool
	delim    string
	reply    func(cmd, args string) []string
	received chan string // every command name, as it arrives
}

func startFake(t *testing.T, greet bool, delim string, reply func(cmd, args string) []string) *fakeServer {
	t.Helper()
	f := &fakeServer{greet: greet, delim: delim, reply: reply, received: make(chan string, 64)}
	f.ln = serveLoopback(t, f.serve)
	return f
}

func (f *fakeServer) serve(conn net.Conn) {
	if !f.greet {
		f.received <- "(connected)"
		_, _ = bufio.NewReader(conn).ReadString('\n') // until the client goes away
		return
	}
	w := bufio.NewWriter(conn)
	send := func(lines ...string) bool {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		return w.Flush() == nil
	}
	if !send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready") {
		return
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		cmd, args, _ := strings.Cut(rest, " ")
		cmd = strings.ToUpper(cmd)
		select {
		case f.received <- cmd:
		default:
		}
		var out []string
		switch {
		case cmd == "LOGIN":
			out = []string{tag + " OK logged in"}
		case cmd == "CAPABILITY":
			out = []string{"* CAPABILITY IMAP4rev1", tag + " OK done"}
		case cmd == "LIST" && args == `"" ""`:
			out = []string{`* LIST (\Noselect) "` + f.delim + `" ""`, tag + " OK done"}
		case cmd == "LOGOUT":
			send("* BYE", tag+" OK bye")
			return
		default:
			out = f.reply(cmd, args)
			if out == nil {
				continue // never answer
			}
			for i := range out {
				out[i] = strings.ReplaceAll(out[i], "TAG", tag)
			}
		}
		if !send(out...) {
			return
		}
	}
}

func (f *fakeServer) wait(t *testing.T, cmd string) {
	t.Helper()
	timeout := time.After(guard)
	for {
		select {
		case got := <-f.received:
			if got == cmd {
				return
			}
		case <-timeout:
			t.Fatalf("the server never received %s", cmd)
		}
	}
}

func TestDialLearnsDelimiter(t *testing.T) {
	f := startFake(t, true, ".", func(string, string) []string { return []string{"TAG NO what"} })
	c, err := imapconn.Dial(ctxT(t), addr(t, f.ln.Addr().String()), imapconn.Login{Username: "u", Password: "p"}, imapconn.Options{})
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, '.', c.Delim)
}

func TestCreateAnswers(t *testing.T) {
	answers := map[string]string{
		"Exists":     "TAG NO [ALREADYEXISTS] Mailbox exists",
		"ExistsText": "TAG NO Mailbox already exists",
		"Parentless": "TAG NO [NONEXISTENT] Parent mailbox does not exist",
		"NoParent":   "TAG NO Parent folder doesn't exist",
		"Cannot":     "TAG NO [CANNOT] Invalid mailbox name",
		"Fine":       "TAG OK created",
	}
	f := startFake(t, true, "/", func(cmd, args string) []string {
		if cmd != "CREATE" {
			return []string{"TAG BAD unexpected"}
		}
		return []string{answers[strings.Trim(args, `"`)]}
	})
	c, err := imapconn.Dial(ctxT(t), addr(t, f.ln.Addr().String()), imapconn.Login{Username: "u", Password: "p"}, imapconn.Options{})
	require.NoError(t, err)
	defer c.Close()

	require.NoError(t, c.Create("Fine"))
	require.NoError(t, c.Create("Exists"))
	require.NoError(t, c.Create("ExistsText"))
	for _, name := range []string{"Parentless", "NoParent", "Cannot"} {
		err := c.Create(name)
		var ie *imapconn.Error
		require.ErrorAs(t, err, &ie, "CREATE %s answered %q is a failure", name, answers[name])
		require.True(t, ie.Permanent)
		require.Contains(t, err.Error(), name)
	}
}

// A server that accepts but never greets: cancelling the context unblocks Dial.
func TestCancelUnblocksDial(t *testing.T) {
	f := startFake(t, false, "/", nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() {
		_, err := imapconn.Dial(ctx, addr(t, f.ln.Addr().String()), imapconn.Login{Username: "u", Password: "p"}, imapconn.Options{})
		done <- err
	}()
	f.wait(t, "(connected)")
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(guard):
		t.Fatal("Dial did not return after cancel")
	}
}

// A server that stops answering mid-session: cancelling unblocks the command.
func TestCancelUnblocksCommand(t *testing.T) {
	f := startFake(t, true, "/", func(cmd, _ string) []string {
		if cmd == "SELECT" || cmd == "EXAMINE" {
			return nil // stuck
		}
		return []string{"TAG OK"}
	})
	ctx, cancel := context.WithCancel(ctxT(t))
	c, err := imapconn.Dial(ctx, addr(t, f.ln.Addr().String()), imapconn.Login{Username: "u", Password: "p"}, imapconn.Options{})
	require.NoError(t, err)
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.Select("INBOX", true)
		done <- err
	}()
	f.wait(t, "EXAMINE")
	cancel()
	select {
	case err := <-done:
		var ie *imapconn.Error
		require.ErrorAs(t, err, &ie)
		require.False(t, ie.Permanent)
	case <-time.After(guard):
		t.Fatal("the stuck command did not return after cancel")
	}
}
