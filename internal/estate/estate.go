// Package estate builds a deterministic synthetic mail estate (organisations,
// mailboxes, folders, messages), serves it from in-process IMAP servers and
// verifies independently that a target server holds exactly what a source
// server holds.
//
// It is used by the demo ("starter demo") and by end-to-end tests. Nothing in
// here shares code with the migration engine on purpose: the verifier must be
// an independent witness.
package estate

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// Defaults used when a Spec leaves a field at zero.
const (
	DefaultLargeItemSize int64 = 3 << 20 // 3 MiB
	DefaultLargeItems          = 4

	// MinLargeItemSize is the smallest LargeItemSize Generate accepts; smaller
	// values are raised to it so that ordinary messages (capped at half of
	// LargeItemSize) can never cross the threshold.
	MinLargeItemSize int64 = 64 << 10
)

// Spec describes the estate to generate.
type Spec struct {
	Seed int64
	Orgs []OrgSpec
	// LargeItems is the exact number of messages bigger than LargeItemSize
	// spread over the estate (in different mailboxes of different orgs where
	// possible). They are added on top of the orgs' message totals.
	// 0 means the default (4); a negative value means none.
	LargeItems int
	// LargeItemSize is the size threshold of large items (0 = 3 MiB).
	// Every other message is at most LargeItemSize/2 bytes.
	LargeItemSize int64
}

// OrgSpec describes one organisation. The org gets exactly
// Mailboxes*MeanMessages ordinary messages, spread unevenly over its
// mailboxes (every mailbox gets at least one when possible).
type OrgSpec struct {
	Code, Name   string
	Mailboxes    int
	MeanMessages int
}

// DefaultSpec is the demo estate: an acute trust with 24 mailboxes, a GP
// practice with 7 and a care home with 2; 33 mailboxes, 3,140 ordinary
// messages plus 4 large items of 3–3.8 MiB (about 60 MB in total).
func DefaultSpec(seed int64) Spec {
	return Spec{
		Seed: seed,
		Orgs: []OrgSpec{
			{Code: "RXH", Name: "Brighthelm & Sussex University Hospitals NHS Trust", Mailboxes: 24, MeanMessages: 110},
			{Code: "GP7", Name: "Seven Dials Medical Practice", Mailboxes: 7, MeanMessages: 60},
			{Code: "CH1", Name: "Downsview House Care Home", Mailboxes: 2, MeanMessages: 40},
		},
		LargeItems:    DefaultLargeItems,
		LargeItemSize: DefaultLargeItemSize,
	}
}

// Scale multiplies every org's mailbox count (minimum 1) and its message
// total (minimum 1) by f. The per-mailbox mean therefore stays roughly the
// same. LargeItems and LargeItemSize are unchanged.
func (s Spec) Scale(f float64) Spec {
	out := s
	out.Orgs = make([]OrgSpec, len(s.Orgs))
	for i, o := range s.Orgs {
		total := max(1, int(math.Round(float64(o.Mailboxes*o.MeanMessages)*f)))
		mbs := max(1, int(math.Round(float64(o.Mailboxes)*f)))
		o.Mailboxes = mbs
		o.MeanMessages = max(1, int(math.Round(float64(total)/float64(mbs))))
		out.Orgs[i] = o
	}
	return out
}

// Estate is a generated mail estate.
type Estate struct {
	Orgs []Org
}

// Org is one organisation of the estate.
type Org struct {
	Code, Name string
	Domain     string // e.g. "rxh.nhs.example"
	Mailboxes  []Mailbox
}

// Mailbox is one user account.
type Mailbox struct {
	Address     string // e.g. "alice.smith@rxh.nhs.example"
	DisplayName string
	User        string // login name (the address)
	Password    string // deterministic from the seed
	Folders     []Folder
}

// Folder is one IMAP folder. Name is a UTF-8, "/"-delimited path; parents
// always precede their children in Mailbox.Folders.
type Folder struct {
	Name       string
	SpecialUse imap.MailboxAttr // "" or one of \Sent \Drafts \Trash \Junk \Archive
	Messages   []Message
}

// Message is one message: its exact RFC 822 bytes (CRLF line endings),
// flags (never \Recent or \Deleted) and INTERNALDATE (second precision).
type Message struct {
	Raw   []byte
	Flags []imap.Flag
	Date  time.Time
}

// FlagFollowup is the custom keyword used in the estate.
const FlagFollowup imap.Flag = "NHS-Followup"

// Folder returns the folder with the given name, or nil.
func (m *Mailbox) Folder(name string) *Folder {
	for i := range m.Folders {
		if m.Folders[i].Name == name {
			return &m.Folders[i]
		}
	}
	return nil
}

// Mailboxes returns pointers to every mailbox of the estate, org by org.
func (e *Estate) Mailboxes() []*Mailbox {
	var out []*Mailbox
	for oi := range e.Orgs {
		for mi := range e.Orgs[oi].Mailboxes {
			out = append(out, &e.Orgs[oi].Mailboxes[mi])
		}
	}
	return out
}

// Totals counts mailboxes, messages and message bytes.
func (e *Estate) Totals() (mailboxes, messages int, bytes int64) {
	for _, o := range e.Orgs {
		for _, m := range o.Mailboxes {
			mailboxes++
			for _, f := range m.Folders {
				messages += len(f.Messages)
				for _, msg := range f.Messages {
					bytes += int64(len(msg.Raw))
				}
			}
		}
	}
	return
}

// folderDef is the fixed folder tree of every mailbox.
type folderDef struct {
	name       string
	specialUse imap.MailboxAttr
	weight     float64 // share of the mailbox's messages
	from, to   time.Time
}

var (
	estateStart = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	estateEnd   = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
)

func folderDefs() []folderDef {
	all := func(name string, su imap.MailboxAttr, w float64) folderDef {
		return folderDef{name, su, w, estateStart, estateEnd}
	}
	return []folderDef{
		all("INBOX", "", 38),
		all("Sent", imap.MailboxAttrSent, 20),
		all("Drafts", imap.MailboxAttrDrafts, 2),
		all("Trash", imap.MailboxAttrTrash, 3),
		all("Junk", imap.MailboxAttrJunk, 2),
		all("Archive", imap.MailboxAttrArchive, 9),
		{"Archive/2023", "", 10, time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Archive/2023/Q1", "", 6, time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2023, 4, 1, 0, 0, 0, 0, time.UTC)},
		all("Réunions", "", 0), // always empty parent
		{"Réunions/Été 2024", "", 3, time.Date(2024, 6, 21, 0, 0, 0, 0, time.UTC), time.Date(2024, 9, 23, 0, 0, 0, 0, time.UTC)},
		all("Ärzte", "", 3),
		all("Clinical & Admin", "", 4),
		all("Projects", "", 0), // always empty
	}
}

// message kinds (content variants)
type kind uint8

const (
	kindNormal kind = iota
	kindAttachment
	kindNoMsgID
	kindRepeatMsgID
	kindUTF8Header
	kindLongLine
	kindBrokenBoundary
	kindEmptyBody
	kindDuplicate
	kindLarge
)

type mailboxPlan struct {
	org     int
	index   int // global mailbox index
	counts  []int
	kinds   [][]kind // per folder, per message
	mailbox *Mailbox
	domain  string
	peers   []person // colleagues in the same org
}

type person struct{ display, addr string }

// Generate builds the estate described by spec. It is fully deterministic:
// the same spec always yields byte-identical output.
func Generate(spec Spec) *Estate {
	largeSize := spec.LargeItemSize
	if largeSize <= 0 {
		largeSize = DefaultLargeItemSize
	}
	largeSize = max(largeSize, MinLargeItemSize)
	largeItems := spec.LargeItems
	if largeItems == 0 {
		largeItems = DefaultLargeItems
	}

	g := rand.New(rand.NewPCG(uint64(spec.Seed), 0x6573746174652d67)) // planning stream
	defs := folderDefs()
	e := &Estate{Orgs: make([]Org, len(spec.Orgs))}
	var plans []*mailboxPlan

	// Identities and per-folder message counts.
	for oi, os := range spec.Orgs {
		code := os.Code
		if code == "" {
			code = fmt.Sprintf("ORG%d", oi+1)
		}
		org := &e.Orgs[oi]
		org.Code, org.Name = code, os.Name
		org.Domain = strings.ToLower(code) + ".nhs.example"
		n := max(os.Mailboxes, 0)
		org.Mailboxes = make([]Mailbox, n)
		used := map[string]bool{}
		var peers []person
		for mi := range n {
			mb := &org.Mailboxes[mi]
			var local, display string
			if mi == 0 && n > 1 {
				role := roles[oi%len(roles)]
				local, display = role.local, role.display+" – "+os.Name
			} else {
				fn := firstNames[g.IntN(len(firstNames))]
				ln := lastNames[g.IntN(len(lastNames))]
				local = fn.ascii + "." + ln.ascii
				display = fn.display + " " + ln.display
			}
			base := local
			for k := 2; used[local]; k++ {
				local = fmt.Sprintf("%s%d", base, k)
			}
			used[local] = true
			mb.Address = local + "@" + org.Domain
			mb.User = mb.Address
			mb.DisplayName = display
			mb.Password = password(g)
			peers = append(peers, person{display, mb.Address})
		}

		// Message totals per mailbox: log-normal weights, exact org total.
		total := n * max(os.MeanMessages, 0)
		weights := make([]float64, n)
		var sum float64
		for i := range weights {
			weights[i] = math.Exp(g.NormFloat64() * 0.8)
			sum += weights[i]
		}
		per := make([]int, n)
		if total >= n {
			for i := range per {
				per[i] = 1
			}
			rest := total - n
			assigned := 0
			for i := range per {
				k := int(float64(rest) * weights[i] / sum)
				per[i] += k
				assigned += k
			}
			for i := 0; assigned < rest; i = (i + 1) % n {
				per[i]++
				assigned++
			}
		} else {
			for i := range total {
				per[i]++
			}
		}

		for mi := range n {
			p := &mailboxPlan{org: oi, index: len(plans), mailbox: &org.Mailboxes[mi], domain: org.Domain, peers: peers}
			p.counts = make([]int, len(defs))
			junkEmpty := g.IntN(2) == 0
			trashEmpty := g.IntN(3) == 0
			var fw []float64
			var fsum float64
			for _, d := range defs {
				w := d.weight
				if (d.name == "Junk" && junkEmpty) || (d.name == "Trash" && trashEmpty) {
					w = 0
				}
				fw = append(fw, w)
				fsum += w
			}
			for range per[mi] {
				x := g.Float64() * fsum
				fi := 0
				for ; fi < len(fw)-1; fi++ {
					if x < fw[fi] {
						break
					}
					x -= fw[fi]
				}
				for fw[fi] == 0 { // float edge case: fall back to INBOX
					fi = 0
				}
				p.counts[fi]++
			}
			p.kinds = make([][]kind, len(defs))
			for fi := range defs {
				p.kinds[fi] = make([]kind, p.counts[fi])
			}
			plans = append(plans, p)
		}
	}

	// Large items: item k goes to org k mod len(orgs), each to a different
	// mailbox of that org while there are mailboxes left.
	orgPlans := make([][]*mailboxPlan, len(e.Orgs))
	for _, p := range plans {
		orgPlans[p.org] = append(orgPlans[p.org], p)
	}
	var nonEmptyOrgs []int
	for oi := range orgPlans {
		if len(orgPlans[oi]) > 0 {
			nonEmptyOrgs = append(nonEmptyOrgs, oi)
		}
	}
	perms := make([][]int, len(orgPlans))
	for _, oi := range nonEmptyOrgs {
		perms[oi] = g.Perm(len(orgPlans[oi]))
	}
	if len(nonEmptyOrgs) > 0 {
		for k := 0; k < largeItems; k++ {
			oi := nonEmptyOrgs[k%len(nonEmptyOrgs)]
			round := k / len(nonEmptyOrgs)
			p := orgPlans[oi][perms[oi][round%len(perms[oi])]]
			fi := 0 // INBOX
			if k%2 == 1 {
				fi = 5 // Archive
			}
			pos := g.IntN(p.counts[fi] + 1)
			p.counts[fi]++
			p.kinds[fi] = slices.Insert(p.kinds[fi], pos, kindLarge)
		}
	}

	// Special content kinds on distinct slots chosen over the whole estate.
	type slot struct {
		p         *mailboxPlan
		fi, mi    int
		ordinal   int // position in the mailbox's generation order
		prevLarge bool
	}
	var slots []slot
	for _, p := range plans {
		ord := 0
		for fi := range p.kinds {
			for mi := range p.kinds[fi] {
				if p.kinds[fi][mi] != kindLarge {
					slots = append(slots, slot{p, fi, mi, ord, mi > 0 && p.kinds[fi][mi-1] == kindLarge})
				}
				ord++
			}
		}
	}
	n := len(slots)
	quota := []struct {
		k kind
		n int
	}{
		{kindEmptyBody, max(1, n/1000)},
		{kindLongLine, max(1, n/1000)},
		{kindBrokenBoundary, max(1, n/1000)},
		{kindDuplicate, max(2, n/1000)},
		{kindRepeatMsgID, max(2, n/200)},
		{kindUTF8Header, max(2, n/100)},
		{kindNoMsgID, max(1, n/50)},
		{kindAttachment, max(1, n/100)},
	}
	perm := g.Perm(n)
	taken := make([]bool, n)
	for _, q := range quota {
		got := 0
		for _, si := range perm {
			if got == q.n {
				break
			}
			s := slots[si]
			if taken[si] {
				continue
			}
			switch q.k {
			case kindDuplicate:
				if s.mi == 0 || s.prevLarge {
					continue
				}
			case kindRepeatMsgID, kindNoMsgID:
				if s.ordinal == 0 {
					continue
				}
			}
			taken[si] = true
			s.p.kinds[s.fi][s.mi] = q.k
			got++
		}
	}

	// Content, one independent random stream per mailbox, in parallel.
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, p := range plans {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			genMailbox(spec.Seed, p, defs, largeSize)
		}()
	}
	wg.Wait()
	return e
}

func password(g *rand.Rand) string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	for i := range b {
		b[i] = alphabet[g.IntN(len(alphabet))]
	}
	return string(b)
}

// generator holds the per-mailbox state.
type generator struct {
	r         *rand.Rand
	p         *mailboxPlan
	largeSize int64
	msgIDs    []string
	seq       int
}

func genMailbox(seed int64, p *mailboxPlan, defs []folderDef, largeSize int64) {
	h := fnv.New64a()
	fmt.Fprintf(h, "mailbox/%d/%s", p.index, p.mailbox.Address)
	gen := &generator{
		r:         rand.New(rand.NewPCG(uint64(seed)^0x9e3779b97f4a7c15, h.Sum64())),
		p:         p,
		largeSize: largeSize,
	}
	mb := p.mailbox
	mb.Folders = make([]Folder, len(defs))
	for fi, d := range defs {
		f := &mb.Folders[fi]
		f.Name, f.SpecialUse = d.name, d.specialUse
		kinds := p.kinds[fi]
		if len(kinds) == 0 {
			continue
		}
		dates := make([]time.Time, len(kinds))
		span := d.to.Unix() - d.from.Unix()
		for i := range dates {
			dates[i] = gen.date(d.from.Unix() + gen.r.Int64N(span))
		}
		slices.SortFunc(dates, func(a, b time.Time) int { return a.Compare(b) })
		f.Messages = make([]Message, len(kinds))
		for i, k := range kinds {
			if k == kindDuplicate {
				prev := f.Messages[i-1]
				f.Messages[i] = Message{Raw: prev.Raw, Flags: slices.Clone(prev.Flags), Date: prev.Date}
				continue
			}
			f.Messages[i] = gen.message(d, k, dates[i])
		}
	}
}

// date returns an INTERNALDATE at second precision, mostly UTC, a few with
// +01:00 or +05:30 offsets.
func (gen *generator) date(unix int64) time.Time {
	t := time.Unix(unix, 0)
	switch x := gen.r.IntN(100); {
	case x < 8:
		return t.In(time.FixedZone("+0100", 3600))
	case x < 10:
		return t.In(time.FixedZone("+0530", 5*3600+1800))
	default:
		return t.UTC()
	}
}

func (gen *generator) chance(pct int) bool { return gen.r.IntN(100) < pct }

func (gen *generator) flags(folder string, k kind) []imap.Flag {
	var fl []imap.Flag
	add := func(f imap.Flag, pct int) {
		if gen.chance(pct) {
			fl = append(fl, f)
		}
	}
	switch folder {
	case "Sent":
		fl = append(fl, imap.FlagSeen)
		add(imap.FlagFlagged, 2)
	case "Drafts":
		add(imap.FlagSeen, 50)
		fl = append(fl, imap.FlagDraft)
	case "Trash":
		add(imap.FlagSeen, 90)
		add(imap.FlagAnswered, 10)
	case "Junk":
		add(imap.FlagSeen, 30)
	case "Archive", "Archive/2023", "Archive/2023/Q1":
		add(imap.FlagSeen, 98)
		add(imap.FlagAnswered, 30)
		add(imap.FlagFlagged, 3)
		add(imap.FlagForwarded, 10)
		add(FlagFollowup, 2)
	default: // INBOX and user folders
		add(imap.FlagSeen, 80)
		add(imap.FlagAnswered, 20)
		add(imap.FlagFlagged, 6)
		add(imap.FlagForwarded, 5)
		add(FlagFollowup, 4)
	}
	if k == kindLarge && !slices.Contains(fl, imap.FlagFlagged) {
		fl = append(fl, imap.FlagFlagged) // large items are usually important
	}
	return fl
}

func (gen *generator) pick(l []string) string { return l[gen.r.IntN(len(l))] }

func (gen *generator) external() person {
	fn := firstNames[gen.r.IntN(len(firstNames))]
	ln := lastNames[gen.r.IntN(len(lastNames))]
	dom := externalDomains[gen.r.IntN(len(externalDomains))]
	return person{fn.display + " " + ln.display, fn.ascii + "." + ln.ascii + "@" + dom}
}

func (gen *generator) correspondent() person {
	if len(gen.p.peers) > 1 && gen.chance(60) {
		for {
			q := gen.p.peers[gen.r.IntN(len(gen.p.peers))]
			if q.addr != gen.p.mailbox.Address {
				return q
			}
		}
	}
	return gen.external()
}

func (gen *generator) newMsgID(t time.Time) string {
	gen.seq++
	id := fmt.Sprintf("<%d.%08x.%d@%s>", t.Unix(), gen.r.Uint32(), gen.seq, gen.p.domain)
	gen.msgIDs = append(gen.msgIDs, id)
	return id
}

// targetSize draws an ordinary message size: log-normal, median ~9 KB,
// mostly 2–40 KB, capped at 90 KB and at largeSize/2.
func (gen *generator) targetSize() int {
	s := math.Exp(math.Log(9000) + gen.r.NormFloat64()*0.75)
	s = math.Min(math.Max(s, 1200), 90_000)
	return int(min(int64(s), gen.largeSize/2))
}

func addrHeader(p person) string {
	if needsQuoting(p.display) {
		return fmt.Sprintf("%q <%s>", p.display, p.addr)
	}
	return fmt.Sprintf("%s <%s>", p.display, p.addr)
}

func needsQuoting(s string) bool {
	return strings.ContainsAny(s, "&,.:;()<>@[]\\\"")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// encodeHeaderWord returns s as-is if ASCII, else as an RFC 2047 encoded word.
func encodeHeaderWord(s string) string {
	if isASCII(s) {
		return s
	}
	return "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

type msgBuf struct{ bytes.Buffer }

func (b *msgBuf) h(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
func (b *msgBuf) line(s string) { b.WriteString(s + "\r\n") }

func (gen *generator) message(d folderDef, k kind, t time.Time) Message {
	me := person{gen.p.mailbox.DisplayName, gen.p.mailbox.Address}
	other := gen.correspondent()
	from, to := other, me
	outgoing := d.name == "Sent" || d.name == "Drafts"
	if outgoing {
		from, to = me, other
	}
	sent := t.Add(-time.Duration(gen.r.IntN(600)) * time.Second)
	subject := gen.subject()
	reply := gen.chance(25) && len(gen.msgIDs) > 0

	size := gen.targetSize()
	var b msgBuf
	b.Grow(size + 4096)
	if !outgoing {
		b.h("Return-Path", "<"+from.addr+">")
		// A folded header: continuation lines must survive byte-exact.
		b.WriteString(fmt.Sprintf("Received: from mx%d.relay.nhs.example (mx%d.relay.nhs.example [10.%d.%d.%d])\r\n\tby mail.%s with ESMTPS id %08x\r\n\tfor <%s>; %s\r\n",
			gen.r.IntN(4)+1, gen.r.IntN(4)+1, gen.r.IntN(256), gen.r.IntN(256), gen.r.IntN(256),
			gen.p.domain, gen.r.Uint32(), to.addr, t.Format(time.RFC1123Z)))
	}
	b.h("Date", sent.Format(time.RFC1123Z))
	if k == kindUTF8Header {
		// Raw 8-bit UTF-8 in headers (RFC 6532 style), kept byte-exact.
		b.h("From", fmt.Sprintf("%s <%s>", gen.pick(utf8Names), from.addr))
	} else {
		b.h("From", addrHeader(person{encodeHeaderWord(from.display), from.addr}))
	}
	b.h("To", addrHeader(person{encodeHeaderWord(to.display), to.addr}))
	if gen.chance(20) {
		cc := gen.correspondent()
		b.h("Cc", addrHeader(person{encodeHeaderWord(cc.display), cc.addr}))
	}
	switch {
	case k == kindUTF8Header:
		b.h("Subject", gen.pick(utf8Subjects))
	case reply:
		b.h("Subject", "Re: "+encodeHeaderWord(subject))
	default:
		b.h("Subject", encodeHeaderWord(subject))
	}
	switch k {
	case kindNoMsgID:
	case kindRepeatMsgID:
		b.h("Message-ID", gen.msgIDs[gen.r.IntN(len(gen.msgIDs))])
	default:
		b.h("Message-ID", gen.newMsgID(t))
	}
	if reply {
		ref := gen.msgIDs[gen.r.IntN(len(gen.msgIDs))]
		b.h("In-Reply-To", ref)
		b.h("References", ref)
	}
	if gen.chance(30) {
		b.h("X-Mailer", gen.pick(mailers))
	}
	b.h("MIME-Version", "1.0")

	switch k {
	case kindEmptyBody:
		b.h("Content-Type", "text/plain; charset=us-ascii")
		b.line("")
	case kindLongLine:
		b.h("Content-Type", "text/plain; charset=utf-8")
		b.h("Content-Transfer-Encoding", "8bit")
		b.line("")
		b.line("The export is pasted below without wrapping:")
		b.line("")
		var sb strings.Builder
		n := 2100 + gen.r.IntN(3000)
		for sb.Len() < n {
			sb.WriteString(words[gen.r.IntN(len(words))])
			sb.WriteByte(' ')
		}
		b.line(strings.TrimSpace(sb.String()))
		b.line("")
		gen.text(&b.Buffer, 600)
	case kindBrokenBoundary:
		bd := fmt.Sprintf("=_mailshift_%08x", gen.r.Uint32())
		b.h("Content-Type", `multipart/mixed; boundary="`+bd+`"`)
		b.line("")
		b.line("This is a multi-part message in MIME format.")
		b.line("")
		b.line("--" + bd + "X") // does not match the declared boundary
		b.h("Content-Type", "text/plain; charset=utf-8")
		b.line("")
		gen.text(&b.Buffer, min(size, 4000))
		b.line("--" + bd) // a real part, then no closing boundary
		b.h("Content-Type", "text/plain; charset=utf-8")
		b.line("")
		gen.text(&b.Buffer, 500)
	case kindAttachment, kindLarge:
		total := 100_000 + gen.r.IntN(400_000)
		if int64(total) > gen.largeSize/2 {
			total = int(gen.largeSize / 2)
		}
		if k == kindLarge {
			total = int(gen.largeSize) + 16<<10 + gen.r.IntN(int(gen.largeSize/4))
		}
		bd := fmt.Sprintf("----=_Part_%d_%08x", gen.seq, gen.r.Uint32())
		b.h("Content-Type", `multipart/mixed; boundary="`+bd+`"`)
		b.line("")
		b.line("--" + bd)
		b.h("Content-Type", "text/plain; charset=utf-8")
		b.h("Content-Transfer-Encoding", "8bit")
		b.line("")
		gen.text(&b.Buffer, 800+gen.r.IntN(2000))
		b.line("--" + bd)
		name, ctype := gen.attachmentName()
		b.h("Content-Type", ctype+`; name="`+name+`"`)
		b.h("Content-Disposition", `attachment; filename="`+name+`"`)
		b.h("Content-Transfer-Encoding", "base64")
		b.line("")
		need := total - b.Len() - len(bd) - 8
		b.Grow(need + need/20 + 256)
		gen.base64Body(&b.Buffer, max(need, 1024))
		b.line("--" + bd + "--")
	default:
		if gen.chance(25) {
			bd := fmt.Sprintf("----=_Alt_%d_%08x", gen.seq, gen.r.Uint32())
			b.h("Content-Type", `multipart/alternative; boundary="`+bd+`"`)
			b.line("")
			b.line("--" + bd)
			b.h("Content-Type", "text/plain; charset=utf-8")
			b.h("Content-Transfer-Encoding", "8bit")
			b.line("")
			start := b.Len()
			gen.text(&b.Buffer, size/3)
			plain := b.Bytes()[start:]
			b.line("--" + bd)
			b.h("Content-Type", "text/html; charset=utf-8")
			b.h("Content-Transfer-Encoding", "8bit")
			b.line("")
			html := "<html><body>\r\n<p>" + strings.ReplaceAll(string(plain), "\r\n\r\n", "</p>\r\n<p>") + "</p>\r\n</body></html>"
			b.line(html)
			b.line("--" + bd + "--")
		} else {
			b.h("Content-Type", "text/plain; charset=utf-8")
			b.h("Content-Transfer-Encoding", "8bit")
			b.line("")
			gen.text(&b.Buffer, max(size-b.Len(), 200))
		}
	}
	return Message{Raw: b.Bytes(), Flags: gen.flags(d.name, k), Date: t}
}

func (gen *generator) subject() string {
	s := gen.pick(subjects)
	if strings.Contains(s, "%d") {
		s = fmt.Sprintf(s, 1+gen.r.IntN(40))
	}
	return s
}

func (gen *generator) attachmentName() (string, string) {
	switch gen.r.IntN(3) {
	case 0:
		return fmt.Sprintf("discharge-summary-%04d.pdf", gen.r.IntN(10000)), "application/pdf"
	case 1:
		return fmt.Sprintf("rota-week-%02d.xlsx", 1+gen.r.IntN(52)), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	default:
		return fmt.Sprintf("wound-photo-%03d.jpg", gen.r.IntN(1000)), "image/jpeg"
	}
}

// text writes wrapped paragraphs of at least n bytes (CRLF line endings).
func (gen *generator) text(w *bytes.Buffer, n int) {
	start := w.Len()
	line := make([]byte, 0, 80)
	for w.Len()-start < n {
		sentences := 2 + gen.r.IntN(5)
		for s := 0; s < sentences; s++ {
			nw := 5 + gen.r.IntN(14)
			for i := 0; i < nw; i++ {
				word := words[gen.r.IntN(len(words))]
				if i == 0 {
					r, n := utf8.DecodeRuneInString(word)
					word = string(unicode.ToUpper(r)) + word[n:]
				}
				if i == nw-1 {
					word += "."
				}
				if len(line)+1+len(word) > 72 && len(line) > 0 {
					w.Write(line)
					w.WriteString("\r\n")
					line = line[:0]
				}
				if len(line) > 0 {
					line = append(line, ' ')
				}
				line = append(line, word...)
			}
		}
		if len(line) > 0 {
			w.Write(line)
			w.WriteString("\r\n")
			line = line[:0]
		}
		w.WriteString("\r\n")
	}
}

// base64Body writes n bytes (roughly) of base64 of random data, 76-char lines.
func (gen *generator) base64Body(w *bytes.Buffer, n int) {
	raw := make([]byte, n*3/4/57*57+57)
	for i := 0; i+8 <= len(raw); i += 8 {
		v := gen.r.Uint64()
		for j := 0; j < 8; j++ {
			raw[i+j] = byte(v >> (8 * j))
		}
	}
	enc := make([]byte, 76)
	for i := 0; i < len(raw); i += 57 {
		base64.StdEncoding.Encode(enc, raw[i:i+57])
		w.Write(enc)
		w.WriteString("\r\n")
	}
}

type name struct{ display, ascii string }

var roles = []struct{ local, display string }{
	{"pals", "Patient Advice and Liaison"},
	{"reception", "Reception"},
	{"manager", "Home Manager"},
	{"referrals", "Referrals"},
}

var firstNames = []name{
	{"Alice", "alice"}, {"Ben", "ben"}, {"Chloé", "chloe"}, {"David", "david"}, {"Emma", "emma"},
	{"Farah", "farah"}, {"George", "george"}, {"Hannah", "hannah"}, {"Isaac", "isaac"}, {"Jasmine", "jasmine"},
	{"Kwame", "kwame"}, {"Laura", "laura"}, {"Mohammed", "mohammed"}, {"Niamh", "niamh"}, {"Oliver", "oliver"},
	{"Priya", "priya"}, {"Quentin", "quentin"}, {"Rosa", "rosa"}, {"Siobhán", "siobhan"}, {"Tom", "tom"},
	{"Uma", "uma"}, {"Victor", "victor"}, {"Wiktoria", "wiktoria"}, {"Xavier", "xavier"}, {"Yusuf", "yusuf"},
	{"Zoë", "zoe"}, {"José", "jose"}, {"Ingrid", "ingrid"}, {"Aaliyah", "aaliyah"}, {"Rhys", "rhys"},
}

var lastNames = []name{
	{"Smith", "smith"}, {"Jones", "jones"}, {"Patel", "patel"}, {"O'Brien", "obrien"}, {"Müller", "muller"},
	{"Williams", "williams"}, {"Brown", "brown"}, {"Taylor", "taylor"}, {"Khan", "khan"}, {"Davies", "davies"},
	{"Evans", "evans"}, {"Nowak", "nowak"}, {"Okafor", "okafor"}, {"Green", "green"}, {"Hughes", "hughes"},
	{"Ahmed", "ahmed"}, {"Wood", "wood"}, {"Johansson", "johansson"}, {"Clarke", "clarke"}, {"Fernández", "fernandez"},
}

var externalDomains = []string{
	"sussex-ics.nhs.example", "labs.pathology.example", "council.example.gov", "supplies.example.com", "nhs.example",
}

var utf8Names = []string{
	"Zoë Müller", "José Fernández", "Siobhán Ó Súilleabháin", "Łukasz Wiśniewski", "Ærøskøbing Pharmacy",
}

var utf8Subjects = []string{
	"Réunion d'équipe – Übergabe für Station 5",
	"Ärztliche Stellungnahme zur Überweisung ✓",
	"Café rota für die nächste Woche – bitte prüfen",
	"Résumé of the São Paulo exchange visit",
	"Naïve Bayes triage pilot – résultats ☕",
}

var subjects = []string{
	"Ward %d staffing rota", "Clinic list for tomorrow", "Referral update", "Discharge summary attached",
	"Bed state at 08:00", "Infection control audit", "Mandatory training reminder", "Theatre list changes",
	"Pharmacy query for bay %d", "Safeguarding meeting minutes", "Annual leave request", "Outpatient letters batch %d",
	"Equipment fault on ward %d", "Incident report follow-up", "Visiting hours update", "Care plan review",
	"Medication round times", "GP practice newsletter", "Flu vaccination clinic", "Patient transport booking",
	"Lab results available", "Estates: heating in block %d", "Agenda for Thursday", "Réunion de service",
	"Überweisung Kardiologie", "Supplies order #%d",
}

var words = strings.Fields(`patient ward clinic referral discharge summary appointment nurse doctor
consultant registrar pharmacy medication dose review plan care team shift rota handover bed bay
theatre list results bloods observations follow-up letter GP practice surgery triage assessment
admission transfer community therapy physiotherapy occupational dietitian safeguarding audit
governance incident report meeting minutes agenda action owner deadline please confirm thanks
regards update attached below above morning afternoon evening tomorrow today week month urgent
routine capacity escalation policy procedure training compliance records system portal access
password reset booking cancellation waiting time target outpatient inpatient day case supplies
order delivery equipment fault estates heating cleaning infection control visiting family carer
consent capacity assessment frailty falls pressure ulcer wound dressing catheter cannula fluid
balance chart nutrition hydration mobility hoist sling wheelchair transport ambulance pathway
and the of to for with on at by from as is was be will can should would could may might
café résumé naïve über Ärzte élève`)

var mailers = []string{
	"Microsoft Outlook 16.0", "Apple Mail (2.3774)", "Mozilla Thunderbird 115.6", "NHSmail Web Client", "EMIS Web Docman",
}
