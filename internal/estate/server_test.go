package estate

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startServer(t *testing.T, opts ServerOptions) *Server {
	t.Helper()
	s, err := StartServer(opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.True(t, strings.HasPrefix(s.Addr(), "127.0.0.1:"))
	require.Equal(t, "imap://"+s.Addr(), s.URL())
	return s
}

// syncBuffer is a goroutine-safe wire capture.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func login(t *testing.T, addr, user, pass string, wire io.Writer) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{DebugWriter: wire})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Login(user, pass).Wait())
	return c
}

func lowerFlags(fl []imap.Flag) []string {
	var out []string
	for _, f := range fl {
		out = append(out, strings.ToLower(string(f)))
	}
	slices.Sort(out)
	return out
}

func TestServerRoundTrip(t *testing.T) {
	e := Generate(smallSpec(11))
	srv := startServer(t, ServerOptions{Name: "source"})
	require.NoError(t, srv.Load(e))

	var checked int
	for _, mb := range e.Mailboxes() {
		wire := &syncBuffer{}
		c := login(t, srv.Addr(), mb.User, mb.Password, wire)

		caps := c.Caps()
		for _, cp := range []imap.Cap{imap.CapIMAP4rev1, imap.CapLiteralPlus, imap.CapSpecialUse, imap.CapUIDPlus, imap.CapMove, imap.CapNamespace} {
			require.True(t, caps.Has(cp), "capability %s", cp)
		}
		require.False(t, caps.Has(imap.CapIMAP4rev2))

		list, err := c.List("", "*", nil).Collect()
		require.NoError(t, err)
		got := map[string]*imap.ListData{}
		var order []string
		for _, d := range list {
			require.Equal(t, '/', d.Delim)
			got[d.Mailbox] = d
			order = append(order, d.Mailbox)
		}
		var want []string
		for _, f := range mb.Folders {
			want = append(want, f.Name)
			d := got[f.Name]
			require.NotNil(t, d, "folder %q listed", f.Name)
			if f.SpecialUse != "" {
				require.Contains(t, d.Attrs, f.SpecialUse, "special-use of %s in plain LIST", f.Name)
			}
		}
		require.ElementsMatch(t, want, order)
		require.Equal(t, "INBOX", order[0])
		require.Contains(t, got["Archive/2023"].Attrs, imap.MailboxAttrHasChildren)
		require.Contains(t, got["Archive/2023/Q1"].Attrs, imap.MailboxAttrHasNoChildren)
		// Modified UTF-7 on the wire in both directions (IMAP4rev1 server).
		require.Contains(t, wire.String(), `"R&AOk-unions/&AMk-t&AOk- 2024"`)
		require.Contains(t, wire.String(), `"&AMQ-rzte"`)
		require.NotContains(t, wire.String(), "Été")

		for fi, f := range mb.Folders {
			sel, err := c.Select(f.Name, &imap.SelectOptions{ReadOnly: true}).Wait()
			require.NoError(t, err, f.Name)
			require.EqualValues(t, len(f.Messages), sel.NumMessages, f.Name)
			// imapmemserver: UIDVALIDITY is a per-user counter 1, 2, 3, ... in
			// creation order, so two servers loaded alike agree on it.
			require.EqualValues(t, fi+1, sel.UIDValidity)
			require.EqualValues(t, len(f.Messages)+1, sel.UIDNext)
			if len(f.Messages) == 0 {
				continue
			}
			msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
				Flags: true, InternalDate: true, RFC822Size: true,
				BodySection: []*imap.FetchItemBodySection{{Peek: true}},
			}).Collect()
			require.NoError(t, err)
			require.Len(t, msgs, len(f.Messages))
			for i, m := range msgs {
				exp := f.Messages[i]
				require.EqualValues(t, i+1, m.UID)
				require.True(t, bytes.Equal(exp.Raw, m.BodySection[0].Bytes), "%s: body of UID %d differs", f.Name, m.UID)
				require.EqualValues(t, len(exp.Raw), m.RFC822Size)
				require.Equal(t, lowerFlags(exp.Flags), lowerFlags(m.Flags), "%s UID %d", f.Name, m.UID)
				require.Equal(t, exp.Date.Unix(), m.InternalDate.Unix())
				_, wantOff := exp.Date.Zone()
				_, gotOff := m.InternalDate.Zone()
				require.Equal(t, wantOff, gotOff, "INTERNALDATE offset kept")
				checked++
			}
		}
		// BODY.PEEK did not set \Seen.
		st, err := c.Status("INBOX", &imap.StatusOptions{NumUnseen: true}).Wait()
		require.NoError(t, err)
		unseen := 0
		for _, m := range mb.Folder("INBOX").Messages {
			if !slices.Contains(m.Flags, imap.FlagSeen) {
				unseen++
			}
		}
		require.EqualValues(t, unseen, *st.NumUnseen)
		require.NoError(t, c.Logout().Wait())
	}
	_, total, _ := e.Totals()
	require.Equal(t, total, checked)
}

func TestServerLoadDefaultSpeed(t *testing.T) {
	e := defaultEstate1()
	srv := startServer(t, ServerOptions{Name: "source"})
	_, msgs, size := e.Totals()
	start := time.Now()
	require.NoError(t, srv.Load(e))
	d := time.Since(start)
	t.Logf("Load(DefaultSpec): %d messages, %.1f MB in %v = %.0f msg/s, %.0f MB/s",
		msgs, float64(size)/1e6, d.Round(time.Millisecond), float64(msgs)/d.Seconds(), float64(size)/1e6/d.Seconds())

	// Every message of the demo estate survives the server byte-exact
	// (imapmemserver re-serialises the header for BODY[]; this proves the
	// generator only emits headers that round-trip).
	start = time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, mb := range e.Mailboxes() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c := login(t, srv.Addr(), mb.User, mb.Password, nil)
			defer c.Close()
			for _, f := range mb.Folders {
				if len(f.Messages) == 0 {
					continue
				}
				if _, err := c.Select(f.Name, &imap.SelectOptions{ReadOnly: true}).Wait(); !assert.NoError(t, err) {
					return
				}
				cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
				for i := 0; ; i++ {
					msg := cmd.Next()
					if msg == nil {
						break
					}
					for item := msg.Next(); item != nil; item = msg.Next() {
						if body, ok := item.(imapclient.FetchItemDataBodySection); ok {
							h := sha256.New()
							_, err := io.Copy(h, body.Literal)
							assert.NoError(t, err)
							assert.Equal(t, sha256.Sum256(f.Messages[i].Raw), [32]byte(h.Sum(nil)), "%s %s #%d", mb.User, f.Name, i)
						}
					}
				}
				assert.NoError(t, cmd.Close())
			}
		}()
	}
	wg.Wait()
	t.Logf("fetched and checked every body in %v", time.Since(start).Round(time.Millisecond))

	mb := e.Orgs[0].Mailboxes[3]
	c := login(t, srv.Addr(), mb.User, mb.Password, nil)
	for _, f := range mb.Folders {
		st, err := c.Status(f.Name, &imap.StatusOptions{NumMessages: true, Size: false}).Wait()
		require.NoError(t, err)
		require.EqualValues(t, len(f.Messages), *st.NumMessages)
	}
	// Wrong password fails.
	c2, err := imapclient.DialInsecure(srv.Addr(), nil)
	require.NoError(t, err)
	defer c2.Close()
	require.Error(t, c2.Login(mb.User, "wrong").Wait())
}

func TestServerSpecialUseAndHierarchy(t *testing.T) {
	srv := startServer(t, ServerOptions{Name: "target"})
	require.NoError(t, srv.AddUser("bob@gp7.nhs.example", "pw"))
	require.NoError(t, srv.AddUser("bob@gp7.nhs.example", "other")) // idempotent, keeps password
	c := login(t, srv.Addr(), "bob@gp7.nhs.example", "pw", nil)

	list, err := c.List("", "*", nil).Collect()
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "INBOX", list[0].Mailbox)

	require.True(t, c.Caps().Has(imap.CapCreateSpecialUse))
	require.NoError(t, c.Create("Sent Items", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}).Wait())
	require.NoError(t, c.Create("Ärzte/Überweisungen/2024", nil).Wait()) // creates superiors
	err = c.Create("Ärzte", nil).Wait()
	require.Error(t, err)
	var ie *imap.Error
	require.True(t, errors.As(err, &ie))
	require.Equal(t, imap.ResponseCodeAlreadyExists, ie.Code)

	list, err = c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	require.NoError(t, err)
	names := map[string][]imap.MailboxAttr{}
	for _, d := range list {
		names[d.Mailbox] = d.Attrs
	}
	require.Contains(t, names["Sent Items"], imap.MailboxAttrSent)
	require.Contains(t, names, "Ärzte")
	require.Contains(t, names, "Ärzte/Überweisungen")
	require.Contains(t, names["Ärzte"], imap.MailboxAttrHasChildren)

	only, err := c.List("", "*", &imap.ListOptions{SelectSpecialUse: true}).Collect()
	require.NoError(t, err)
	require.Len(t, only, 1)
	require.Equal(t, "Sent Items", only[0].Mailbox)

	pct, err := c.List("", "%", nil).Collect()
	require.NoError(t, err)
	require.Len(t, pct, 3) // INBOX, Sent Items, Ärzte

	// DELETE with children is refused; RENAME moves inferiors.
	require.Error(t, c.Delete("Ärzte").Wait())
	require.NoError(t, c.Rename("Ärzte", "Archiv/Ärzte alt", nil).Wait())
	list, err = c.List("", "Archiv/*", nil).Collect()
	require.NoError(t, err)
	var got []string
	for _, d := range list {
		got = append(got, d.Mailbox)
	}
	require.Equal(t, []string{"Archiv/Ärzte alt", "Archiv/Ärzte alt/Überweisungen", "Archiv/Ärzte alt/Überweisungen/2024"}, got)
	_, err = c.Select("Ärzte", nil).Wait()
	require.Error(t, err)

	// LSUB / subscriptions.
	require.NoError(t, c.Subscribe("Sent Items").Wait())
	sub, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	require.NoError(t, err)
	require.Len(t, sub, 2) // INBOX + Sent Items

	// NAMESPACE.
	ns, err := c.Namespace().Wait()
	require.NoError(t, err)
	require.Equal(t, '/', ns.Personal[0].Delim)
}

func TestServerAppendUIDPlusAndLimit(t *testing.T) {
	srv := startServer(t, ServerOptions{Name: "target", AppendLimit: 64 << 10})
	require.NoError(t, srv.AddUser("carol@ch1.nhs.example", "pw"))
	c := login(t, srv.Addr(), "carol@ch1.nhs.example", "pw", nil)

	raw := []byte("From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n")
	date := time.Date(2024, 3, 31, 1, 30, 0, 0, time.FixedZone("", 3600))
	var uidValidity uint32
	for i := 1; i <= 3; i++ {
		cmd := c.Append("INBOX", int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, FlagFollowup}, Time: date})
		_, err := cmd.Write(raw)
		require.NoError(t, err)
		require.NoError(t, cmd.Close())
		data, err := cmd.Wait()
		require.NoError(t, err)
		require.EqualValues(t, i, data.UID, "APPENDUID gives consecutive UIDs")
		require.NotZero(t, data.UIDValidity)
		uidValidity = data.UIDValidity
	}

	// Too big: NO [TOOBIG], and the LITERAL+ literal is consumed (the
	// connection keeps working).
	big := bytes.Repeat([]byte("x"), 100<<10)
	cmd := c.Append("INBOX", int64(len(big)), nil)
	_, err := cmd.Write(big)
	require.NoError(t, err)
	require.NoError(t, cmd.Close())
	_, err = cmd.Wait()
	var ie *imap.Error
	require.True(t, errors.As(err, &ie), "%v", err)
	require.Equal(t, imap.ResponseCodeTooBig, ie.Code)
	require.NoError(t, c.Noop().Wait())

	sel, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	require.EqualValues(t, 3, sel.NumMessages)
	require.Equal(t, uidValidity, sel.UIDValidity)
	msgs, err := c.Fetch(imap.UIDSetNum(2), &imap.FetchOptions{Flags: true, InternalDate: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	// imapmemserver lower-cases keywords; system flags come back canonical.
	require.ElementsMatch(t, []imap.Flag{imap.FlagSeen, "nhs-followup"}, msgs[0].Flags)
	require.True(t, msgs[0].InternalDate.Equal(date))
}

func TestServerIMAP4rev2UTF8Names(t *testing.T) {
	srv := startServer(t, ServerOptions{Name: "rev2", IMAP4rev2: true})
	require.NoError(t, srv.AddUser("dan@rxh.nhs.example", "pw"))
	wire := &syncBuffer{}
	c := login(t, srv.Addr(), "dan@rxh.nhs.example", "pw", wire)
	require.True(t, c.Caps().Has(imap.CapIMAP4rev2))
	require.NoError(t, c.Create("Réunions/Été 2024", nil).Wait())
	list, err := c.List("", "*", nil).Collect()
	require.NoError(t, err)
	var names []string
	for _, d := range list {
		names = append(names, d.Mailbox)
	}
	require.Equal(t, []string{"INBOX", "Réunions", "Réunions/Été 2024"}, names)
	// The client sends raw UTF-8 because the server advertises IMAP4rev2;
	// the server still answers in modified UTF-7 (nothing was ENABLEd).
	require.Contains(t, wire.String(), `CREATE "Réunions/Été 2024"`)
	require.Contains(t, wire.String(), `"R&AOk-unions/&AMk-t&AOk- 2024"`)
}
