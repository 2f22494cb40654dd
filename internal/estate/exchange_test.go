package estate_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/transfer"
)

func startExchange(t *testing.T, opts estate.ServerOptions) *estate.Server {
	t.Helper()
	opts.Exchange = true
	s, err := estate.StartServer(opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func exchangeLogin(t *testing.T, s *estate.Server, user string, wire *bytes.Buffer) *imapclient.Client {
	t.Helper()
	require.NoError(t, s.AddUser(user, "pw"))
	o := &imapclient.Options{}
	if wire != nil {
		o.DebugWriter = wire
	}
	c, err := imapclient.DialInsecure(s.Addr(), o)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Login(user, "pw").Wait())
	return c
}

func appendMsg(c *imapclient.Client, mailbox string, msg []byte, flags ...imap.Flag) (*imap.AppendData, error) {
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(msg); err != nil {
		return nil, err
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	return cmd.Wait()
}

func requireBAD(t *testing.T, err error, text string) {
	t.Helper()
	var ie *imap.Error
	require.True(t, errors.As(err, &ie), "want an IMAP error, got %v", err)
	require.Equal(t, imap.StatusResponseTypeBad, ie.Type)
	if text != "" {
		require.Equal(t, text, ie.Text)
	}
}

const exchangeTestMsg = "Received: from a.example by b.example; Mon, 1 Dec 2026 10:00:00 +0000\r\n" +
	"From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.com>, Carol <carol@example.com>, Dave <dave@example.com>, Eve <eve@example.com>\r\n" +
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from the\r\n quarterly report\r\n" +
	"Message-ID: <q4-report@example.com>\r\n" +
	"Date: Mon, 1 Dec 2026 10:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Received: from c.example by a.example; Mon, 1 Dec 2026 09:59:00 +0000\r\n" +
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n" +
	"\r\n" +
	"This is a multi-part message in MIME format.\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=inner\r\n" +
	"\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain; charset=iso-8859-1\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"\r\n" +
	"Gr\xfc\xdfe,   \r\n" +
	"the figures are attached.\r\n" +
	"--inner\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"\r\n" +
	"<p>Gr\xc3\xbc\xc3\x9fe,</p><p>the figures are attached.</p>\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: application/octet-stream; name=\"q4.bin\"\r\n" +
	"Content-Disposition: attachment; filename=\"q4.bin\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n" +
	"MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\r\n" +
	"--outer--\r\n" +
	"epilogue\r\n"

func contentDigest(t *testing.T, msg []byte) string {
	t.Helper()
	d, err := transfer.ContentDigest(bytes.NewReader(msg))
	require.NoError(t, err)
	return d
}

func TestExchangeCapabilities(t *testing.T) {
	s := startExchange(t, estate.ServerOptions{Name: "exo"})
	c := exchangeLogin(t, s, "u@contoso.test", nil)
	caps := c.Caps()
	for _, cp := range []imap.Cap{imap.CapIMAP4rev1, imap.CapLiteralPlus, imap.CapUIDPlus, imap.CapMove, imap.CapNamespace, imap.CapChildren} {
		require.True(t, caps.Has(cp), "capability %s", cp)
	}
	for _, cp := range []imap.Cap{imap.CapSpecialUse, imap.CapCreateSpecialUse, imap.CapIMAP4rev2} {
		require.False(t, caps.Has(cp), "capability %s", cp)
	}

	// CREATE with USE fails like on a server without CREATE-SPECIAL-USE;
	// the connection stays usable and a plain CREATE works.
	err := c.Create("Sent2", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}).Wait()
	requireBAD(t, err, "")
	require.NoError(t, c.Noop().Wait())
	require.NoError(t, c.Create("Sent2", nil).Wait())
}

func TestExchangeFolders(t *testing.T) {
	s := startExchange(t, estate.ServerOptions{Name: "exo", Language: func(user string) string {
		if strings.HasSuffix(user, ".de") {
			return "de"
		}
		return ""
	}})
	for _, tc := range []struct{ user, lang, wire, conv string }{
		{"anna@contoso.test", "en", "Sent Items", "Conversation History"},
		{"jonas@contoso.de", "de", "Gel&APY-schte Elemente", "Unterhaltungsverlauf"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			var wire bytes.Buffer
			c := exchangeLogin(t, s, tc.user, &wire)
			list, err := c.List("", "*", nil).Collect()
			require.NoError(t, err)
			var names []string
			for _, l := range list {
				names = append(names, l.Mailbox)
				for _, a := range l.Attrs {
					switch a {
					case imap.MailboxAttrHasChildren, imap.MailboxAttrHasNoChildren:
					default:
						t.Errorf("%s: unexpected attribute %s", l.Mailbox, a)
					}
				}
			}
			want := []string{"INBOX", tc.conv}
			for _, n := range estate.ExchangeFolders(tc.lang) {
				want = append(want, n)
			}
			slices.Sort(want)
			slices.Sort(names)
			require.Equal(t, want, names)
			require.Contains(t, wire.String(), tc.wire) // modified UTF-7 on the wire

			// Every well-known folder can be selected and appended to by the
			// name a client decodes.
			for role, n := range estate.ExchangeFolders(tc.lang) {
				_, err := appendMsg(c, n, []byte("Subject: "+role+"\r\n\r\nbody\r\n"))
				require.NoError(t, err, n)
				st, err := c.Status(n, &imap.StatusOptions{NumMessages: true}).Wait()
				require.NoError(t, err, n)
				require.EqualValues(t, 1, *st.NumMessages, n)
			}
		})
	}
	require.Equal(t, "Gelöschte Elemente", estate.ExchangeFolders("de")[estate.RoleTrash])
	require.Equal(t, "Junk Email", estate.ExchangeFolders("")[estate.RoleJunk])
	require.Len(t, estate.ExchangeFolders("de"), 6)
}

func TestExchangeKeywords(t *testing.T) {
	s := startExchange(t, estate.ServerOptions{Name: "exo"})
	c := exchangeLogin(t, s, "u@contoso.test", nil)
	msg := []byte("Subject: hi\r\nMessage-ID: <k@x>\r\n\r\nbody\r\n")

	_, err := appendMsg(c, "INBOX", msg, imap.FlagSeen, "$label1")
	requireBAD(t, err, "Command Argument Error. 11")
	require.NoError(t, c.Noop().Wait())

	_, err = appendMsg(c, "INBOX", msg, imap.FlagSeen, imap.FlagMDNSent, imap.FlagFlagged, imap.FlagAnswered, imap.FlagDraft)
	require.NoError(t, err)
	sel, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	require.EqualValues(t, 1, sel.NumMessages)

	one := imap.SeqSetNum(1)
	err = c.Store(one, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"$label1"}}, nil).Close()
	requireBAD(t, err, "Command Argument Error. 11")
	err = c.Store(one, &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: []imap.Flag{imap.FlagSeen, "Junk"}}, nil).Close()
	requireBAD(t, err, "Command Argument Error. 11")
	require.NoError(t, c.Store(one, &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{"$label1", imap.FlagFlagged}}, nil).Close())
	require.NoError(t, c.Store(one, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"$mdnsent", imap.FlagDeleted}}, nil).Close())

	msgs, err := c.Fetch(one, &imap.FetchOptions{Flags: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	var got []string
	for _, f := range msgs[0].Flags {
		got = append(got, strings.ToLower(string(f)))
	}
	slices.Sort(got)
	require.Equal(t, []string{"$mdnsent", `\answered`, `\deleted`, `\draft`, `\seen`}, got)
}

func TestExchangePermanentFlags(t *testing.T) {
	s := startExchange(t, estate.ServerOptions{Name: "exo"})
	c := exchangeLogin(t, s, "u@contoso.test", nil)
	want := []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, imap.FlagMDNSent}
	for _, ro := range []bool{false, true} {
		sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: ro}).Wait()
		require.NoError(t, err)
		require.Equal(t, want, sel.PermanentFlags, "read-only %v", ro)
		require.NotContains(t, sel.PermanentFlags, imap.FlagWildcard)
	}
}

func TestExchangeAppendLimit(t *testing.T) {
	s := startExchange(t, estate.ServerOptions{Name: "exo"})
	c := exchangeLogin(t, s, "u@contoso.test", nil)
	head := "Subject: big\r\n\r\n"
	big := make([]byte, estate.ExchangeAppendLimit+1)
	copy(big, head)
	for i := len(head); i < len(big); i++ {
		big[i] = 'a'
		if i%78 == 77 {
			big[i] = '\n'
		}
	}
	_, err := appendMsg(c, "INBOX", big)
	var ie *imap.Error
	require.True(t, errors.As(err, &ie), "got %v", err)
	require.Equal(t, imap.StatusResponseTypeNo, ie.Type)
	require.Equal(t, imap.ResponseCodeTooBig, ie.Code)
	require.NoError(t, c.Noop().Wait())

	// An explicit limit wins.
	s2 := startExchange(t, estate.ServerOptions{Name: "exo2", AppendLimit: 1000})
	c2 := exchangeLogin(t, s2, "u@contoso.test", nil)
	_, err = appendMsg(c2, "INBOX", big[:1001])
	require.True(t, errors.As(err, &ie), "got %v", err)
	require.Equal(t, imap.ResponseCodeTooBig, ie.Code)
}

func TestExchangeThrottle(t *testing.T) {
	n := 0
	s := startExchange(t, estate.ServerOptions{Name: "exo", Throttle: func() (time.Duration, bool) {
		n++
		return 1500 * time.Millisecond, n == 2
	}})
	c := exchangeLogin(t, s, "u@contoso.test", nil)
	msg := []byte("Subject: t\r\n\r\nbody\r\n")
	_, err := appendMsg(c, "INBOX", msg)
	require.NoError(t, err)
	_, err = appendMsg(c, "INBOX", msg)
	requireBAD(t, err, "Request is throttled. Suggested Backoff Time: 1500 milliseconds")
}

func TestExchangeRerenderOnAppend(t *testing.T) {
	s := startExchange(t, estate.ServerOptions{Name: "exo"})
	c := exchangeLogin(t, s, "u@contoso.test", nil)
	in := []byte(exchangeTestMsg)
	ad, err := appendMsg(c, "INBOX", in, imap.FlagSeen)
	require.NoError(t, err)
	_, err = c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(ad.UID), &imap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{body},
		Envelope: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	out := msgs[0].FindBodySection(body)
	require.NotEqual(t, in, out)
	require.NotEqual(t, int64(len(in)), msgs[0].RFC822Size)
	require.Equal(t, int64(len(out)), msgs[0].RFC822Size)
	require.Contains(t, string(out), "X-MS-Exchange-Organization-AuthAs: Internal\r\n")
	require.Equal(t, "q4-report@example.com", msgs[0].Envelope.MessageID)
	require.Equal(t, "Grüße from the quarterly report", msgs[0].Envelope.Subject)
	require.Equal(t, contentDigest(t, in), contentDigest(t, out))
}

func TestRerender(t *testing.T) {
	in := []byte(exchangeTestMsg)
	out := estate.Rerender(in)
	s := string(out)
	t.Logf("%s", s)

	require.NotEqual(t, in, out)
	require.Equal(t, contentDigest(t, in), contentDigest(t, out))
	// Rendering again changes bytes (new boundaries), never content.
	again := estate.Rerender(out)
	require.NotEqual(t, out, again)
	require.Equal(t, contentDigest(t, in), contentDigest(t, again))

	// CRLF everywhere, lines within 76 columns (header fields fold at 70).
	require.NotContains(t, strings.ReplaceAll(s, "\r\n", ""), "\n")
	require.NotContains(t, strings.ReplaceAll(s, "\r\n", ""), "\r")
	hdr, _, ok := strings.Cut(s, "\r\n\r\n")
	require.True(t, ok)
	for _, l := range strings.Split(s, "\r\n") {
		require.LessOrEqual(t, len(l), 76, l)
	}

	// Header: sorted by name, Received kept in order, unfolded and folded
	// again, the Exchange field added.
	var names []string
	var received []string
	for _, l := range strings.Split(hdr, "\r\n") {
		if l[0] == ' ' || l[0] == '\t' {
			received[len(received)-1] += l
			continue
		}
		k, _, _ := strings.Cut(l, ":")
		names = append(names, strings.ToLower(k))
		received = append(received, l)
	}
	require.True(t, slices.IsSorted(names), "%v", names)
	require.Contains(t, names, "x-ms-exchange-organization-authas")
	var rcv []string
	for _, l := range received {
		if strings.HasPrefix(l, "Received:") {
			rcv = append(rcv, l)
		}
	}
	require.Len(t, rcv, 2)
	require.Contains(t, rcv[0], "from a.example")
	require.Contains(t, rcv[1], "from c.example")
	require.Contains(t, hdr, "\r\nMessage-ID: <q4-report@example.com>\r\n")
	require.Contains(t, hdr, "\r\nTo: Bob <bob@example.com>, Carol <carol@example.com>, Dave\r\n <dave@example.com>, Eve <eve@example.com>\r\n")

	// Boundaries, encodings.
	require.NotContains(t, s, "--outer")
	require.NotContains(t, s, "--inner")
	require.NotContains(t, s, "epilogue")
	require.NotContains(t, s, "multipart message in MIME format")
	require.Equal(t, 2, strings.Count(s, "Content-Transfer-Encoding: quoted-printable"))
	require.Contains(t, s, "Gr=FC=DFe,  =20\r\n")
	require.Contains(t, s, "Content-Transfer-Encoding: base64\r\nContent-Type: application/octet-stream; name=\"q4.bin\"\r\n\r\n"+
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\nOTo7")

	// Without Message-ID none is invented; a non-MIME message becomes
	// quoted-printable text.
	plain := []byte("Subject: plain\nFrom: a@b\n\nline one \nline two\n")
	p := estate.Rerender(plain)
	require.NotContains(t, strings.ToLower(string(p)), "message-id")
	require.Contains(t, string(p), "Content-Transfer-Encoding: quoted-printable\r\n")
	require.Contains(t, string(p), "line one=20\r\nline two\r\n")
	require.Equal(t, contentDigest(t, plain), contentDigest(t, p))

	// Odd MIME: header re-rendered, body kept as is.
	broken := []byte("Subject: broken\r\nContent-Type: multipart/mixed; boundary=b\r\nMessage-ID: <b@x>\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nno end\r\n")
	b := estate.Rerender(broken)
	bh, bb, _ := strings.Cut(string(b), "\r\n\r\n")
	require.Equal(t, "--b\r\nContent-Type: text/plain\r\n\r\nno end\r\n", bb)
	require.Equal(t, "Content-Type: multipart/mixed; boundary=b\r\nMessage-ID: <b@x>\r\nSubject: broken\r\nX-MS-Exchange-Organization-AuthAs: Internal", bh)
	require.Equal(t, contentDigest(t, broken), contentDigest(t, b))

	unknownEnc := []byte("Subject: x\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n")
	u := estate.Rerender(unknownEnc)
	require.True(t, bytes.HasSuffix(u, []byte("\r\n\r\nbegin 644 f\r\n")), "%q", u)

	// An unparseable header: unchanged.
	bad := []byte(" leading space\r\nSubject: x\r\n\r\nbody")
	require.Equal(t, bad, estate.Rerender(bad))
}

// TestExchangeLoad: a loaded estate holds what Exchange would: no
// special-use attributes and no keywords, re-rendered bodies.
func TestExchangeLoad(t *testing.T) {
	e := estate.Generate(estate.Spec{Seed: 3, Orgs: []estate.OrgSpec{{Code: "T", Name: "Test", Mailboxes: 1, MeanMessages: 40}},
		LargeItems: -1})
	s := startExchange(t, estate.ServerOptions{Name: "exo"})
	require.NoError(t, s.Load(e))
	mb := e.Mailboxes()[0]
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(mb.User, mb.Password).Wait())
	list, err := c.List("", "*", nil).Collect()
	require.NoError(t, err)
	for _, l := range list {
		for _, a := range l.Attrs {
			require.Contains(t, []imap.MailboxAttr{imap.MailboxAttrHasChildren, imap.MailboxAttrHasNoChildren}, a, l.Mailbox)
		}
	}
	checked := 0
	for _, f := range mb.Folders {
		if len(f.Messages) == 0 {
			continue
		}
		_, err := c.Select(f.Name, nil).Wait()
		require.NoError(t, err, f.Name)
		body := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		for _, fl := range msgs[0].Flags {
			require.True(t, strings.HasPrefix(string(fl), `\`) || strings.EqualFold(string(fl), "$MDNSent"), fmt.Sprint(fl))
		}
		out := msgs[0].FindBodySection(body)
		require.Equal(t, contentDigest(t, f.Messages[0].Raw), contentDigest(t, out), f.Name)
		checked++
	}
	require.NotZero(t, checked)
}
