package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/estate"
)

// corpus describes the deterministic benchmark corpus: every mailbox has
// the same folder tree; message sizes are log-normal (median 40 KB, capped
// at 1.5 MB) plus 2.5% messages with a 2–8 MB attachment. At the defaults
// (20 mailboxes × 500 messages) that is about 2 GB.
type corpus struct {
	seed      int64
	mailboxes int
	messages  int // per mailbox
}

type benchFolder struct {
	name   string
	su     imap.MailboxAttr
	weight float64
}

// The tree: special-use folders with the instances' default names, nesting,
// a non-ASCII name with "&" and a space, an empty folder and an empty parent.
var benchFolders = []benchFolder{
	{"INBOX", "", 40},
	{"Sent", imap.MailboxAttrSent, 20},
	{"Drafts", imap.MailboxAttrDrafts, 2},
	{"Trash", imap.MailboxAttrTrash, 5},
	{"Archive", imap.MailboxAttrArchive, 13},
	{"Archive/2024", "", 10},
	{"Projects", "", 0},
	{"Projects/Alpha", "", 5},
	{"Ünïcode & Co", "", 5},
	{"Empty", "", 0},
}

func (c corpus) user(i int) (name, password string) {
	return fmt.Sprintf("user%02d@bench.example", i+1), fmt.Sprintf("pw-%d-%02d", c.seed, i+1)
}

// mailbox generates mailbox i (independent of the others).
func (c corpus) mailbox(i int) *estate.Mailbox {
	name, pw := c.user(i)
	mb := &estate.Mailbox{Address: name, User: name, Password: pw, DisplayName: fmt.Sprintf("Bench User %d", i+1)}
	r := rand.New(rand.NewPCG(uint64(c.seed), uint64(i)+0x5eed))
	var total float64
	for _, f := range benchFolders {
		total += f.weight
	}
	counts := make([]int, len(benchFolders))
	for range c.messages {
		x := r.Float64() * total
		fi := 0
		for ; fi < len(benchFolders)-1; fi++ {
			if x < benchFolders[fi].weight {
				break
			}
			x -= benchFolders[fi].weight
		}
		for benchFolders[fi].weight == 0 {
			fi = 0
		}
		counts[fi]++
	}
	seq := 0
	for fi, bf := range benchFolders {
		f := estate.Folder{Name: bf.name, SpecialUse: bf.su}
		dates := make([]time.Time, counts[fi])
		for k := range dates {
			dates[k] = benchDate(r)
		}
		slices.SortFunc(dates, func(a, b time.Time) int { return a.Compare(b) })
		for _, d := range dates {
			seq++
			f.Messages = append(f.Messages, benchMessage(r, mb, bf.name, seq, d))
		}
		mb.Folders = append(mb.Folders, f)
	}
	return mb
}

func benchDate(r *rand.Rand) time.Time {
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	t := time.Unix(start+r.Int64N(5*365*86400), 0)
	switch x := r.IntN(10); {
	case x == 0:
		return t.In(time.FixedZone("", 3600))
	case x == 1:
		return t.In(time.FixedZone("", -5*3600))
	default:
		return t.UTC()
	}
}

func benchSize(r *rand.Rand) (size int, attachment bool) {
	if r.Float64() < 0.025 {
		return 2<<20 + r.IntN(6<<20), true
	}
	s := math.Exp(math.Log(40000) + r.NormFloat64()*1.1)
	return int(math.Min(math.Max(s, 800), 1.5e6)), false
}

var benchWords = strings.Fields(`the of and to in is for on with as by at from this that be are was will
migration mailbox folder server message report meeting project budget schedule review update please
thanks regards attached below tomorrow week quarter team client contract invoice delivery release
über naïve café résumé Größe déjà`)

func benchFlags(r *rand.Rand, folder string) []imap.Flag {
	var fl []imap.Flag
	add := func(f imap.Flag, pct int) {
		if r.IntN(100) < pct {
			fl = append(fl, f)
		}
	}
	switch folder {
	case "Sent":
		fl = append(fl, imap.FlagSeen)
	case "Drafts":
		fl = append(fl, imap.FlagDraft)
	default:
		add(imap.FlagSeen, 75)
		add(imap.FlagAnswered, 20)
		add(imap.FlagFlagged, 5)
		add(imap.FlagForwarded, 5)
		add("Project-X", 3)
	}
	return fl
}

func benchMessage(r *rand.Rand, mb *estate.Mailbox, folder string, seq int, date time.Time) estate.Message {
	size, attach := benchSize(r)
	var b bytes.Buffer
	b.Grow(size + 2048)
	peer := fmt.Sprintf("peer%03d@partner.example", r.IntN(500))
	from, to := peer, mb.Address
	if folder == "Sent" || folder == "Drafts" {
		from, to = to, from
	}
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", from)
	fmt.Fprintf(&b, "Received: from mx%d.partner.example (mx.partner.example [192.0.2.%d])\r\n\tby mail.bench.example; %s\r\n", r.IntN(9), r.IntN(250), date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Date: %s\r\n", date.Add(-time.Duration(r.IntN(300))*time.Second).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: <%s>\r\nTo: %s <%s>\r\n", from, mb.DisplayName, to)
	fmt.Fprintf(&b, "Subject: %s %d\r\n", benchWords[r.IntN(len(benchWords))], seq)
	fmt.Fprintf(&b, "Message-ID: <%d.%d.%08x@bench.example>\r\n", seq, date.Unix(), r.Uint32())
	b.WriteString("MIME-Version: 1.0\r\n")
	if !attach && size < 120_000 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		benchText(r, &b, size-b.Len())
	} else {
		bd := fmt.Sprintf("=_bench_%d_%08x", seq, r.Uint32())
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n", bd, bd)
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		benchText(r, &b, 1500)
		fmt.Fprintf(&b, "--%s\r\nContent-Type: application/octet-stream; name=\"file%d.bin\"\r\nContent-Disposition: attachment; filename=\"file%d.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", bd, seq, seq)
		benchBase64(r, &b, size-b.Len()-len(bd)-8)
		fmt.Fprintf(&b, "--%s--\r\n", bd)
	}
	return estate.Message{Raw: b.Bytes(), Flags: benchFlags(r, folder), Date: date}
}

func benchText(r *rand.Rand, w *bytes.Buffer, n int) {
	start := w.Len()
	line := 0
	for w.Len()-start < n {
		word := benchWords[r.IntN(len(benchWords))]
		if line+len(word)+1 > 72 {
			w.WriteString("\r\n")
			line = 0
		} else if line > 0 {
			w.WriteByte(' ')
			line++
		}
		w.WriteString(word)
		line += len(word)
	}
	w.WriteString("\r\n")
}

func benchBase64(r *rand.Rand, w *bytes.Buffer, n int) {
	raw := make([]byte, 57)
	enc := make([]byte, 76)
	for written := 0; written < max(n, 78); written += 78 {
		for i := 0; i+8 <= 56; i += 8 {
			v := r.Uint64()
			for j := 0; j < 8; j++ {
				raw[i+j] = byte(v >> (8 * j))
			}
		}
		raw[56] = byte(r.Uint32())
		base64.StdEncoding.Encode(enc, raw)
		w.Write(enc)
		w.WriteString("\r\n")
	}
}
