package estate

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"
)

var (
	defaultOnce   sync.Once
	defaultEstate *Estate
)

// defaultEstate1 is Generate(DefaultSpec(1)), shared by tests (read-only).
func defaultEstate1() *Estate {
	defaultOnce.Do(func() { defaultEstate = Generate(DefaultSpec(1)) })
	return defaultEstate
}

// smallSpec is a scaled-down estate that still has every content variant,
// with large items of just over 128 KiB (so they stay cheap).
func smallSpec(seed int64) Spec {
	s := DefaultSpec(seed).Scale(0.1)
	s.LargeItemSize = 128 << 10
	return s
}

// digest hashes everything observable in an estate.
func digest(e *Estate) [32]byte {
	h := sha256.New()
	w := func(s string) { fmt.Fprintf(h, "%d:%s", len(s), s) }
	for _, o := range e.Orgs {
		w(o.Code)
		w(o.Name)
		w(o.Domain)
		for _, m := range o.Mailboxes {
			w(m.Address)
			w(m.User)
			w(m.Password)
			w(m.DisplayName)
			for _, f := range m.Folders {
				w(f.Name)
				w(string(f.SpecialUse))
				for _, msg := range f.Messages {
					w(string(msg.Raw))
					for _, fl := range msg.Flags {
						w(string(fl))
					}
					_, off := msg.Date.Zone()
					binary.Write(h, binary.BigEndian, [2]int64{msg.Date.UnixNano(), int64(off)})
				}
			}
		}
	}
	return [32]byte(h.Sum(nil))
}

func cloneEstate(e *Estate) *Estate {
	out := &Estate{Orgs: slices.Clone(e.Orgs)}
	for oi := range out.Orgs {
		o := &out.Orgs[oi]
		o.Mailboxes = slices.Clone(o.Mailboxes)
		for mi := range o.Mailboxes {
			m := &o.Mailboxes[mi]
			m.Folders = slices.Clone(m.Folders)
			for fi := range m.Folders {
				f := &m.Folders[fi]
				f.Messages = slices.Clone(f.Messages)
				for i := range f.Messages {
					f.Messages[i].Flags = slices.Clone(f.Messages[i].Flags)
				}
			}
		}
	}
	return out
}

func TestGenerateDeterministic(t *testing.T) {
	a := digest(defaultEstate1())
	b := digest(Generate(DefaultSpec(1)))
	require.Equal(t, a, b, "same seed must give identical bytes")

	s1, s2 := digest(Generate(smallSpec(7))), digest(Generate(smallSpec(7)))
	require.Equal(t, s1, s2)
	require.NotEqual(t, s1, digest(Generate(smallSpec(8))), "different seed must differ")
}

func TestDefaultSpecMinimums(t *testing.T) {
	spec := DefaultSpec(1)
	e := defaultEstate1()
	mailboxes, messages, size := e.Totals()
	t.Logf("default estate: %d orgs, %d mailboxes, %d messages, %.1f MB", len(e.Orgs), mailboxes, messages, float64(size)/1e6)
	require.GreaterOrEqual(t, len(e.Orgs), 3)
	require.GreaterOrEqual(t, mailboxes, 30)
	require.GreaterOrEqual(t, messages, 3000)
	require.Equal(t, 4, spec.LargeItems)
	require.Equal(t, int64(3<<20), spec.LargeItemSize)
	sizes := map[string]int{}
	for _, o := range e.Orgs {
		sizes[o.Code] = len(o.Mailboxes)
	}
	require.Equal(t, map[string]int{"RXH": 24, "GP7": 7, "CH1": 2}, sizes)

	checkEstate(t, e, spec)
}

func TestSmallSpecHasEveryVariant(t *testing.T) {
	spec := smallSpec(3)
	e := Generate(spec)
	mailboxes, messages, _ := e.Totals()
	t.Logf("small estate: %d mailboxes, %d messages", mailboxes, messages)
	checkEstate(t, e, spec)
}

var (
	boundaryRe = regexp.MustCompile(`(?i)boundary="([^"]+)"`)
	msgIDRe    = regexp.MustCompile(`(?m)^Message-ID: (.*)\r$`)
)

// checkEstate asserts every structural and content promise of Generate.
func checkEstate(t *testing.T, e *Estate, spec Spec) {
	t.Helper()
	largeSize := spec.LargeItemSize
	var (
		large, noID, repeatedID, utf8Hdr, longLine, broken, empty, dups, attach, inRange, nonUTC, total int
		largeOrgs                                                                                       = map[string]bool{}
		largeMailboxes                                                                                  = map[string]bool{}
		flagsSeen                                                                                       = map[imap.Flag]int{}
		addresses                                                                                       = map[string]bool{}
	)
	for _, o := range e.Orgs {
		for _, m := range o.Mailboxes {
			require.False(t, addresses[m.Address], "duplicate address %s", m.Address)
			addresses[m.Address] = true
			require.Equal(t, m.Address, m.User)
			require.True(t, strings.HasSuffix(m.Address, "@"+strings.ToLower(o.Code)+".nhs.example"), m.Address)
			require.NotEmpty(t, m.Password)

			var names []string
			for _, f := range m.Folders {
				names = append(names, f.Name)
			}
			for _, want := range []string{"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive", "Archive/2023",
				"Archive/2023/Q1", "Réunions", "Réunions/Été 2024", "Ärzte", "Clinical & Admin", "Projects"} {
				require.Contains(t, names, want)
			}
			require.Equal(t, imap.MailboxAttrSent, m.Folder("Sent").SpecialUse)
			require.Equal(t, imap.MailboxAttrDrafts, m.Folder("Drafts").SpecialUse)
			require.Equal(t, imap.MailboxAttrArchive, m.Folder("Archive").SpecialUse)
			require.Empty(t, m.Folder("Projects").Messages, "Projects is always empty")
			require.Empty(t, m.Folder("Réunions").Messages, "Réunions is always empty")

			ids := map[string]int{}
			for _, f := range m.Folders {
				for i, msg := range f.Messages {
					total++
					raw := msg.Raw
					require.True(t, bytes.HasSuffix(raw, []byte("\r\n")), "message must end in CRLF")
					require.Equal(t, bytes.Count(raw, []byte("\n")), bytes.Count(raw, []byte("\r\n")), "bare LF")
					require.Equal(t, bytes.Count(raw, []byte("\r")), bytes.Count(raw, []byte("\r\n")), "bare CR")
					require.True(t, utf8.Valid(raw), "raw must be valid UTF-8 (or ASCII)")
					hdr, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
					require.True(t, ok, "header/body separator")

					if int64(len(raw)) > largeSize {
						large++
						largeOrgs[o.Code] = true
						largeMailboxes[m.Address] = true
					} else {
						require.LessOrEqual(t, int64(len(raw)), largeSize/2+largeSize/20, "ordinary message too big")
					}
					if len(raw) >= 2000 && len(raw) <= 40000 {
						inRange++
					}
					if bytes.Contains(hdr, []byte("Content-Transfer-Encoding: base64")) || bytes.Contains(body, []byte("Content-Transfer-Encoding: base64")) {
						attach++
					}
					if mm := msgIDRe.FindSubmatch(hdr); mm == nil {
						noID++
					} else {
						ids[string(mm[1])]++
					}
					for _, c := range hdr {
						if c >= 0x80 {
							utf8Hdr++
							break
						}
					}
					for _, l := range bytes.Split(raw, []byte("\r\n")) {
						if len(l) > 2000 {
							longLine++
							break
						}
					}
					if bm := boundaryRe.FindSubmatch(hdr); bm != nil && !bytes.Contains(body, []byte("--"+string(bm[1])+"--")) {
						broken++
					}
					if len(body) == 0 {
						empty++
					}
					if i > 0 && bytes.Equal(raw, f.Messages[i-1].Raw) {
						dups++
					}

					require.Zero(t, msg.Date.Nanosecond(), "second precision")
					require.False(t, msg.Date.Before(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)))
					require.True(t, msg.Date.Before(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
					if _, off := msg.Date.Zone(); off != 0 {
						nonUTC++
					}
					require.True(t, slices.IsSortedFunc(f.Messages, func(a, b Message) int { return a.Date.Compare(b.Date) }), "dates ascend in %s", f.Name)
					for _, fl := range msg.Flags {
						flagsSeen[fl]++
						require.NotEqual(t, imap.Flag(`\Recent`), fl)
						require.NotEqual(t, imap.FlagDeleted, fl)
						if fl == imap.FlagDraft {
							require.Equal(t, "Drafts", f.Name, "\\Draft only in Drafts")
						}
					}
				}
			}
			for _, n := range ids {
				if n > 1 {
					repeatedID++
				}
			}
		}
	}
	t.Logf("large=%d noID=%d repeatedID=%d utf8Hdr=%d longLine=%d broken=%d empty=%d dups=%d base64=%d in2-40KB=%d/%d nonUTC=%d flags=%v",
		large, noID, repeatedID, utf8Hdr, longLine, broken, empty, dups, attach, inRange, total, nonUTC, flagsSeen)
	require.Equal(t, spec.LargeItems, large, "exactly LargeItems large messages")
	require.Len(t, largeMailboxes, large, "large items in different mailboxes")
	require.Len(t, largeOrgs, min(large, len(e.Orgs)), "large items spread over orgs")
	require.Positive(t, noID)
	require.Positive(t, repeatedID)
	require.Positive(t, utf8Hdr)
	require.Positive(t, longLine)
	require.Positive(t, broken)
	require.Positive(t, empty)
	require.GreaterOrEqual(t, dups, 2)
	require.Greater(t, attach, large)
	require.Greater(t, float64(inRange)/float64(total), 0.7, "mostly 2–40 KB")
	require.Positive(t, nonUTC)
	for _, f := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft, imap.FlagForwarded, FlagFollowup} {
		require.Positive(t, flagsSeen[f], "flag %s", f)
	}
}

func TestScale(t *testing.T) {
	s := DefaultSpec(5).Scale(0.1)
	require.Equal(t, []OrgSpec{
		{Code: "RXH", Name: s.Orgs[0].Name, Mailboxes: 2, MeanMessages: 132},
		{Code: "GP7", Name: s.Orgs[1].Name, Mailboxes: 1, MeanMessages: 42},
		{Code: "CH1", Name: s.Orgs[2].Name, Mailboxes: 1, MeanMessages: 8},
	}, s.Orgs)
	tiny := DefaultSpec(5).Scale(0.001)
	want := 0
	for _, o := range tiny.Orgs {
		require.Equal(t, 1, o.Mailboxes)
		require.GreaterOrEqual(t, o.MeanMessages, 1)
		want += o.MeanMessages
	}
	// The original is not modified.
	require.Equal(t, 24, DefaultSpec(5).Orgs[0].Mailboxes)

	none := tiny
	none.LargeItems = -1
	_, msgsNone, _ := Generate(none).Totals()
	e := Generate(tiny)
	mb, msgs, _ := e.Totals()
	require.Equal(t, 3, mb)
	require.Equal(t, want+tiny.LargeItems, msgs)
	require.Equal(t, want, msgsNone)
	zero := tiny
	zero.LargeItems = 0 // default
	_, msgsZero, _ := Generate(zero).Totals()
	require.Equal(t, want+DefaultLargeItems, msgsZero)
}

func TestNormalize(t *testing.T) {
	require.Equal(t, "INBOX", normalize("inbox", '/'))
	require.Equal(t, "INBOX/Ward 5", normalize("Inbox.Ward 5", '.'))
	require.Equal(t, "Archive/2023/Q1", normalize("Archive.2023.Q1", '.'))
	require.Equal(t, "Réunions/Été 2024", normalize("Réunions/Été 2024", '/'))
	require.Equal(t, "Clinical & Admin", normalize("Clinical & Admin", 0))
}
