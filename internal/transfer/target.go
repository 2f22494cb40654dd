package transfer

import (
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/charset"
)

// Target is what a target server keeps of what is appended to it. The zero
// value is a server that stores the bytes it is given with every flag and
// keyword (Dovecot, Cyrus, most others).
type Target struct {
	// Rerenders is set for a target that does not store MIME (Exchange
	// stores MAPI) and renders a message again when it is fetched: its
	// bytes and RFC822.SIZE then differ from what was appended. Such a
	// target's messages are recognised by Message-ID and INTERNALDATE, never
	// by size, and validated by ContentDigest instead of a hash of bytes.
	Rerenders bool `json:"rerenders,omitempty"`
	// NoKeywords is set for a target that keeps only the system flags and
	// $MDNSent (Exchange answers any other keyword with BAD). Keywords are
	// then not sent; each message that had some is recorded with them (its
	// Digest's Keywords) and counted in FolderState.KeywordsDropped.
	NoKeywords bool `json:"no_keywords,omitempty"`
}

// kept splits a message's flags into those the target keeps and the
// keywords it does not. \Recent is never sent (a server sets it).
func (t Target) kept(flags []imap.Flag) (send []imap.Flag, dropped []string) {
	send = make([]imap.Flag, 0, len(flags))
	for _, f := range flags {
		switch {
		case strings.EqualFold(string(f), flagRecent):
		case t.NoKeywords && !systemFlag(f):
			dropped = append(dropped, string(f))
		default:
			send = append(send, f)
		}
	}
	return send, dropped
}

// keptFlags is kept's first half, for comparisons.
func (t Target) keptFlags(flags []imap.Flag) []imap.Flag {
	send, _ := t.kept(flags)
	return send
}

// systemFlag reports whether a target without keywords keeps f: the
// RFC 9051 system flags and $MDNSent (in Exchange's PERMANENTFLAGS).
func systemFlag(f imap.Flag) bool {
	switch strings.ToLower(string(f)) {
	case `\seen`, `\answered`, `\flagged`, `\deleted`, `\draft`, "$mdnsent":
		return true
	}
	return false
}

// Header fields a re-rendering target's messages are recognised by.
var identityFields = []string{"Message-ID", "Subject", "From", "Date"}

// keys are the names a message is recognised by on the target after a
// crash. A target that keeps bytes: INTERNALDATE, size and Message-ID (one
// key). A re-rendering target changes sizes, so: INTERNALDATE and
// Message-ID; and, for a message without a Message-ID (or a target that
// gave it one), INTERNALDATE with the decoded Subject, the From address and
// the Date header, which Exchange keeps as MAPI properties. The first key is
// the message's own; a target message is also known by the others.
func (t Target) keys(m meta) []string {
	if !t.Rerenders {
		return []string{m.fingerprint()}
	}
	ids := identities(m)
	for i, id := range ids {
		ids[i] = fmt.Sprintf("%d|%s", m.date.Unix(), id)
	}
	return ids
}

// identities are what a message is known by on a re-rendering target apart
// from its INTERNALDATE: its Message-ID, if it has one, first; then its
// fallback identity.
func identities(m meta) []string {
	alt := "alt|" + m.alt
	if m.messageID == "" {
		return []string{alt}
	}
	return []string{"mid|" + m.messageID, alt}
}

// headerIdentity fills in m's Message-ID and, for re-rendering targets,
// its fallback identity, from a HEADER.FIELDS answer.
func headerIdentity(m *meta, header []byte) {
	m.messageID = parseMessageID(header)
	msg, err := mail.ReadMessage(strings.NewReader(strings.TrimRight(string(header), "\r\n") + "\r\n\r\n"))
	if err != nil {
		return
	}
	h := NewHash(DigestHash)
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	from := msg.Header.Get("From")
	if a, err := mail.ParseAddress(from); err == nil {
		from = a.Address
	}
	var date string
	if d, err := mail.ParseDate(msg.Header.Get("Date")); err == nil {
		date = fmt.Sprint(d.Unix())
	}
	for _, s := range []string{strings.Join(strings.Fields(subject), " "), strings.ToLower(strings.TrimSpace(from)), date} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	m.alt = hex.EncodeToString(h.Sum(nil))
}

// pendingSet holds target messages that may be copies of source messages
// but are not recorded as such, by every key they are known by; each is
// taken at most once.
type pendingSet struct {
	byKey map[string][]imap.UID
	taken map[imap.UID]bool
}

func (p *pendingSet) add(keys []string, uid imap.UID) {
	if p.byKey == nil {
		p.byKey, p.taken = map[string][]imap.UID{}, map[imap.UID]bool{}
	}
	for _, k := range keys {
		p.byKey[k] = append(p.byKey[k], uid)
	}
}

func (p *pendingSet) empty() bool { return p == nil || len(p.byKey) == 0 }

// take claims a target message known by the source message's own key
// (keys[0]) and returns its UID.
func (p *pendingSet) take(keys []string) (imap.UID, bool) {
	if p.empty() {
		return 0, false
	}
	for _, uid := range p.byKey[keys[0]] {
		if !p.taken[uid] {
			p.taken[uid] = true
			return uid, true
		}
	}
	return 0, false
}

// takeMeta is take, returning the target message taken.
func (p *pendingSet) takeMeta(keys []string, byUID map[imap.UID]meta) (meta, bool) {
	uid, ok := p.take(keys)
	return byUID[uid], ok
}

// contentTee feeds what a headCapture reads to ContentDigest in its own
// goroutine, so a body streamed to a re-rendering target is digested on the
// way without being held.
type contentTee struct {
	pw   *io.PipeWriter
	done chan struct{}
	sum  string
}

func newContentTee() *contentTee {
	pr, pw := io.Pipe()
	t := &contentTee{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		sum, err := ContentDigest(pr)
		if err == nil {
			t.sum = sum
		}
		// Never leave the writer blocked, whatever the digest did.
		_, _ = io.Copy(io.Discard, pr)
	}()
	return t
}

// finish ends the stream and returns the digest ("" if it was cut short).
func (t *contentTee) finish() string {
	t.pw.Close()
	<-t.done
	return t.sum
}
