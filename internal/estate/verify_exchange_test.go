package estate

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"
)

func identity(t *testing.T, raw []byte) [32]byte {
	t.Helper()
	sum, n, err := ContentIdentity(bytes.NewReader(raw))
	require.NoError(t, err)
	require.Equal(t, int64(len(raw)), n)
	return sum
}

// alterBody changes the first lower-case letter of raw's body (after the
// header), or adds one to an empty body, so that the message reads
// differently.
func alterBody(raw []byte) []byte {
	out := slices.Clone(raw)
	i := bytes.Index(out, []byte("\r\n\r\n"))
	for j := i + 4; j < len(out); j++ {
		if c := out[j]; c >= 'a' && c <= 'y' {
			out[j] = c + 1
			return out
		}
	}
	return slices.Insert(out, i+4, 'x')
}

// Every kind of message Generate makes (broken boundaries, no Message-ID,
// raw UTF-8 headers, long lines, empty bodies, attachments, large items)
// has the same content identity before and after Rerender (and a second
// Rerender), while its bytes differ; one changed body letter changes it.
func TestContentIdentitySurvivesRerender(t *testing.T) {
	spec := DefaultSpec(1).Scale(0.2)
	spec.LargeItemSize = MinLargeItemSize
	e := Generate(spec)
	n := 0
	for _, mb := range e.Mailboxes() {
		for _, f := range mb.Folders {
			for i, m := range f.Messages {
				what := fmt.Sprintf("%s %s #%d", mb.User, f.Name, i)
				re := Rerender(m.Raw)
				require.NotEqual(t, m.Raw, re, what)
				id := identity(t, m.Raw)
				require.Equal(t, id, identity(t, re), "%s:\n%s", what, m.Raw[:min(len(m.Raw), 2000)])
				require.Equal(t, id, identity(t, Rerender(re)), what)
				require.NotEqual(t, id, identity(t, alterBody(m.Raw)), what)
				n++
			}
		}
	}
	_, msgs, _ := e.Totals()
	require.Equal(t, msgs, n)
}

func TestContentIdentityEdges(t *testing.T) {
	id := func(s string) [32]byte { return identity(t, []byte(s)) }
	base := "Message-ID: <a@x>\r\nSubject: =?UTF-8?B?w4RyenRl?=  news\r\nContent-Type: text/plain\r\n\r\nHello  \r\nworld\r\n\r\n"
	// Line endings, trailing whitespace and newlines, Subject encoding and
	// folding, other header fields: not part of the identity.
	require.Equal(t, id(base), id("Subject: Ärzte\r\n news\r\nX-Other: 1\r\nMessage-ID:  <a@x> \r\nContent-Type: text/plain\r\n\r\nHello\nworld"))
	require.Equal(t, id(base), id("Message-ID: <a@x>\r\nSubject: Ärzte news\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8NCndvcmxk\r\n"))
	// Message-ID, Subject, content and the media type are.
	require.NotEqual(t, id(base), id(strings.Replace(base, "<a@x>", "<b@x>", 1)))
	require.NotEqual(t, id(base), id(strings.Replace(base, "news", "new", 1)))
	require.NotEqual(t, id(base), id(strings.Replace(base, "world", "World", 1)))
	require.NotEqual(t, id(base), id(strings.Replace(base, "Hello  ", "Hel lo", 1)))
	require.NotEqual(t, id(base), id(strings.Replace(base, "text/plain", "text/html", 1)))
	// Malformed MIME falls back to the raw body; an unparseable header to
	// the whole message; both still tell content apart.
	broken := "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nabc\r\n"
	require.Equal(t, id(broken), id("Content-Type: multipart/mixed; boundary=b\r\nSubject: x\r\n\r\n--b\n\nabc"))
	require.NotEqual(t, id(broken), id(strings.Replace(broken, "abc", "abd", 1)))
	require.NotEqual(t, id(broken), id(strings.Replace(broken, "abc", "--b--\r\nabc", 1)))
	require.NotEqual(t, id(" bad header\r\n\r\nabc"), id(" bad header\r\n\r\nabd"))
	require.Equal(t, id(""), id(""))

	// A charset go-message does not know leaves the content as it is,
	// which a re-rendering keeps.
	odd := "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=x-nonsense\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xfc\xdfe\r\n--b--\r\n"
	re := Rerender([]byte(odd))
	require.NotEqual(t, odd, string(re))
	require.Equal(t, id(odd), identity(t, re))
	require.NotEqual(t, id(odd), id(strings.Replace(odd, "Gr", "Gx", 1)))
}

// exchangeCopy copies every mailbox of e from src into the Exchange server
// tgt the way a naive tool would: each message APPENDed with its system
// flags and INTERNALDATE (keywords left out: Exchange refuses them), into
// the Exchange folder of its special use in lang(mb), other folders
// created as they are named. Messages over maxSize are left out; alter,
// if set, may change a message's bytes first.
func exchangeCopy(t *testing.T, e *Estate, tgt *Server, lang func(*Mailbox) string, maxSize int64, alter func(mb *Mailbox, folder string, i int, raw []byte) []byte) {
	t.Helper()
	for _, mb := range e.Mailboxes() {
		c, err := imapclient.DialInsecure(tgt.Addr(), nil)
		require.NoError(t, err)
		require.NoError(t, c.Login(mb.User, mb.Password).Wait())
		mapFolder := ExchangeFolderMap(mb, lang(mb))
		for _, f := range mb.Folders {
			name := mapFolder(f.Name)
			if err := c.Create(name, nil).Wait(); err != nil {
				require.True(t, isAlreadyExists(err), "CREATE %q: %v", name, err)
			}
			for i, m := range f.Messages {
				if int64(len(m.Raw)) > maxSize {
					continue
				}
				raw := m.Raw
				if alter != nil {
					raw = alter(mb, f.Name, i, raw)
				}
				var flags []imap.Flag
				for _, fl := range m.Flags {
					if keptFlags[strings.ToLower(string(fl))] {
						flags = append(flags, fl)
					}
				}
				cmd := c.Append(name, int64(len(raw)), &imap.AppendOptions{Flags: flags, Time: m.Date})
				_, err := cmd.Write(raw)
				require.NoError(t, err)
				require.NoError(t, cmd.Close())
				_, err = cmd.Wait()
				require.NoError(t, err, "APPEND to %q", name)
			}
		}
		require.NoError(t, c.Logout().Wait())
		c.Close()
	}
}

var missingRe = regexp.MustCompile(`: (1 message|(\d+) messages) missing \(`)

// missingCount adds up the "N messages missing" problems.
func missingCount(rep Report) int {
	n := 0
	for _, p := range rep.Problems {
		m := missingRe.FindStringSubmatch(p)
		switch {
		case m == nil:
		case m[2] == "":
			n++
		default:
			k, _ := strconv.Atoi(m[2])
			n += k
		}
	}
	return n
}

// A naive copy into an Exchange-like target (re-rendered MIME, keywords
// refused, localised well-known folders, an English and a German
// organization) verifies with Rerendered and ExchangeFolderMap; compared
// byte for byte every message is missing; a message with one body letter
// changed before APPEND is found.
func TestVerifyRerenderedExchangeTarget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := DefaultSpec(5).Scale(0.1)
	spec.LargeItemSize = MinLargeItemSize
	e := Generate(spec)
	german := map[string]bool{}
	for _, mb := range e.Orgs[1].Mailboxes {
		german[mb.User] = true
	}
	langOf := func(user string) string {
		if german[user] {
			return "de"
		}
		return "en"
	}
	lang := func(mb *Mailbox) string { return langOf(mb.User) }
	maxSize := MinLargeItemSize // the large items stay behind

	src := loadedServer(t, "source", e)
	startTarget := func() *Server {
		tgt := startServer(t, ServerOptions{Name: "target", Exchange: true, Language: langOf})
		require.NoError(t, tgt.AddUsers(e))
		return tgt
	}
	tgt := startTarget()
	exchangeCopy(t, e, tgt, lang, maxSize, nil)

	mapFor := func(mb *Mailbox) func(string) string { return ExchangeFolderMap(mb, lang(mb)) }
	opts := VerifyOptions{Rerendered: true, MaxMessageSize: maxSize, MapFolderFor: mapFor}
	rep, err := VerifyEstate(ctx, e, src.Addr(), tgt.Addr(), opts)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	mbs, msgs, size := e.Totals()
	require.Equal(t, msgs, rep.Messages)
	require.Equal(t, size, rep.Bytes, "the source's bytes")
	require.Equal(t, mbs*len(folderDefs()), rep.Folders)
	require.Equal(t, DefaultLargeItems, rep.ExpectedMissing)

	// The German mailboxes really have German folders.
	de := &e.Orgs[1].Mailboxes[0]
	st, err := Count(ctx, tgt.Account(de))
	require.NoError(t, err)
	require.Positive(t, st)
	require.Equal(t, "Gesendete Elemente", mapFor(de)("Sent"))
	require.Equal(t, "Junk Email", mapFor(&e.Orgs[0].Mailboxes[0])("Junk"))
	require.Equal(t, "Archiv/2023/Q1", mapFor(de)("Archive/2023/Q1"))
	require.Equal(t, "Archive/2023", mapFor(&e.Orgs[0].Mailboxes[0])("Archive/2023"))
	require.Equal(t, "Réunions/Été 2024", mapFor(de)("Réunions/Été 2024"))
	require.Equal(t, "INBOX", mapFor(de)("INBOX"))

	// Byte for byte, nothing matches: every copied message is missing.
	plain := opts
	plain.Rerendered = false
	rep, err = VerifyEstate(ctx, e, src.Addr(), tgt.Addr(), plain)
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.Equal(t, msgs-DefaultLargeItems, missingCount(rep))

	// Without the folder map, the special-use folders are not found.
	nomap := opts
	nomap.MapFolderFor = nil
	rep, err = VerifyEstate(ctx, e, src.Addr(), tgt.Addr(), nomap)
	require.NoError(t, err)
	require.False(t, rep.OK())

	// One message altered by one body letter before APPEND.
	victim := &e.Orgs[1].Mailboxes[0]
	inbox := victim.Folder("INBOX")
	require.NotEmpty(t, inbox.Messages)
	vi := slices.IndexFunc(inbox.Messages, func(m Message) bool { return int64(len(m.Raw)) <= maxSize })
	require.GreaterOrEqual(t, vi, 0)
	tgt2 := startTarget()
	exchangeCopy(t, e, tgt2, lang, maxSize, func(mb *Mailbox, folder string, i int, raw []byte) []byte {
		if mb == victim && folder == "INBOX" && i == vi {
			return alterBody(raw)
		}
		return raw
	})
	rep, err = VerifyEstate(ctx, e, src.Addr(), tgt2.Addr(), opts)
	require.NoError(t, err)
	require.Len(t, rep.Problems, 2, rep.String())
	prefix := "mailbox " + victim.User + ": folder INBOX: "
	require.True(t, strings.HasPrefix(rep.Problems[0], prefix+"1 extra message on target ("), rep.Problems[0])
	require.True(t, strings.HasPrefix(rep.Problems[1], prefix+"1 message missing ("), rep.Problems[1])
}
