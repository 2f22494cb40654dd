package transfer

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// contentDigestVersion starts every content digest's input, so that a later
// change of the recipe cannot be mistaken for this one.
const contentDigestVersion = "mailshift-content-v1"

// maxContentHeaderBytes bounds the top-level header ContentDigest parses (as
// go-message does by default); a larger one counts as unparseable.
const maxContentHeaderBytes = 1 << 20

// maxPendingSpace bounds how many trailing spaces/tabs of a line the text
// normalisation holds back; a longer run is hashed as content.
const maxPendingSpace = 64 << 10

// ContentDigest returns a hex digest (NewHash(DigestHash)) of the content of
// the message read from r that survives a server re-rendering the message's
// MIME, as Exchange Online does: it stores MAPI and renders a new MIME when
// the message is fetched, so the bytes and RFC822.SIZE of a fetched message
// differ from the appended ones, and a digest of the bytes cannot tell a
// faithful copy from a damaged one there.
//
// What it hashes, each field length-prefixed so that no field boundary can be
// shifted:
//   - From the top-level header only the Subject, RFC 2047 words decoded,
//     whitespace runs collapsed to one space and trimmed, and the Message-ID
//     value, trimmed. Every other header field is left out: servers reorder,
//     refold and re-encode fields and add or drop trace fields (Received,
//     X-*), and what matters of the header is migrated as metadata anyway.
//   - Then every leaf MIME part in document order (multiparts are recursed
//     into; a message/rfc822 part is a leaf whose decoded payload counts as
//     bytes, since it is content, not structure): its lower-cased media type
//     and its decoded content (Content-Transfer-Encoding base64 and
//     quoted-printable undone). Boundaries, part headers, preambles and
//     epilogues are left out: a re-rendering chooses new ones. For text/*
//     parts the content is also converted from its charset to UTF-8 where
//     go-message knows the charset (a re-rendering may change the charset;
//     an unknown charset keeps the decoded bytes), line endings are normalised to LF, trailing spaces and tabs are stripped
//     from every line and trailing newlines from the end of the part
//     (encoders differ on all three). A part's content is streamed into a
//     hash of its own, and the part contributes its length and that hash:
//     this frames content of unknown length without holding it, so memory
//     stays bounded whatever the size of an attachment.
//
// Malformed MIME (an unparseable part header or Content-Type, a multipart
// without its boundary or its closing boundary, an unknown transfer
// encoding, a decoding error) is not an error: the part concerned (for a
// multipart, the whole multipart body) contributes its raw bytes instead,
// normalised as text, marked apart from decoded content. A top-level header
// that cannot be parsed makes the whole message count as raw. So every input
// gets a digest, and the same input always gets the same one.
//
// ContentDigest always reads r to EOF, even on malformed input (a caller may
// tee a streaming APPEND into it); the error is only an I/O error of r.
func ContentDigest(r io.Reader) (string, error) {
	src := &trackingReader{r: r}
	whole := newTextHash()
	src.tee = whole // until the top-level header is parsed
	d := &contentDigester{}

	lim := &limitedReader{r: src, n: maxContentHeaderBytes}
	br := bufio.NewReader(lim)
	h, herr := textproto.ReadHeader(br)
	lim.n = -1

	var subject, messageID string
	var recs []contentRecord
	if herr != nil {
		// No header to take Subject and Message-ID from, and no telling
		// where the body starts: the whole message is raw.
		_, _ = io.Copy(io.Discard, br)
		recs = []contentRecord{whole.record(kindRaw, "")}
	} else {
		src.tee = nil
		subject = decodedSubject(h.Get("Subject"))
		messageID = strings.TrimSpace(h.Get("Message-Id"))
		recs = d.entity(h, br, "")
		_, _ = io.Copy(io.Discard, br)
	}
	// Drain r whatever happened above.
	_, _ = io.Copy(io.Discard, src)
	if src.err != nil {
		return "", src.err
	}

	sum := NewHash(DigestHash)
	writeField(sum, []byte(contentDigestVersion))
	writeField(sum, []byte(subject))
	writeField(sum, []byte(messageID))
	for _, rec := range recs {
		rec.writeTo(sum)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// decodedSubject decodes RFC 2047 words (the raw value if it cannot), and
// collapses whitespace.
func decodedSubject(v string) string {
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	if s, err := dec.DecodeHeader(v); err == nil {
		v = s
	}
	return strings.Join(strings.Fields(v), " ")
}

// Record kinds: a decoded leaf part, or raw bytes standing in for a
// malformed entity.
const (
	kindPart byte = 'p'
	kindRaw  byte = 'r'
)

// contentRecord is what one leaf part (or one raw fallback) contributes.
type contentRecord struct {
	kind      byte
	mediaType string
	size      uint64
	sum       []byte
}

func (rec contentRecord) writeTo(h hash.Hash) {
	h.Write([]byte{rec.kind})
	writeField(h, []byte(rec.mediaType))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], rec.size)
	h.Write(b[:])
	writeField(h, rec.sum)
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

type contentDigester struct{}

// entity returns the records of the entity with header h and raw body body,
// reading body to its end. parentType is the enclosing multipart's media
// type ("" at the top).
func (d *contentDigester) entity(h textproto.Header, body io.Reader, parentType string) []contentRecord {
	raw := newTextHash()
	tr := io.TeeReader(body, raw)
	fallback := func(mediaType string) []contentRecord {
		_, _ = io.Copy(io.Discard, tr)
		return []contentRecord{raw.record(kindRaw, mediaType)}
	}

	mediaType, params := "text/plain", map[string]string{} // RFC 2045 5.2
	if parentType == "multipart/digest" {
		mediaType = "message/rfc822" // RFC 2046 5.1.5
	}
	if ct := h.Get("Content-Type"); strings.TrimSpace(ct) != "" {
		var err error
		mediaType, params, err = mime.ParseMediaType(ct)
		if err != nil {
			return fallback(strings.ToLower(mediaType))
		}
	}
	mediaType = strings.ToLower(mediaType)

	if strings.HasPrefix(mediaType, "multipart/") {
		boundary := params["boundary"]
		if boundary == "" {
			return fallback(mediaType)
		}
		mr := textproto.NewMultipartReader(tr, boundary)
		var recs []contentRecord
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fallback(mediaType)
			}
			// A part that ends without a boundary fails to read (it falls
			// back to raw), and then NextPart fails: the whole multipart
			// falls back.
			recs = append(recs, d.entity(p.Header, p, mediaType)...)
		}
		if len(recs) == 0 {
			return fallback(mediaType)
		}
		_, _ = io.Copy(io.Discard, tr) // epilogue
		return recs
	}

	var dec io.Reader = tr
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); enc {
	case "", "7bit", "8bit", "binary":
	case "base64":
		dec = base64.NewDecoder(base64.StdEncoding, &base64Cleaner{r: tr})
	case "quoted-printable":
		dec = quotedprintable.NewReader(tr)
	default:
		return fallback(mediaType)
	}
	text := strings.HasPrefix(mediaType, "text/")
	if cs := strings.ToLower(params["charset"]); text && cs != "" && cs != "utf-8" && cs != "us-ascii" {
		// An unknown charset keeps its decoded bytes: a re-rendering that
		// re-encodes the part keeps them too, and its raw bytes would not.
		if cr, err := charset.Reader(cs, dec); err == nil && cr != nil {
			dec = cr
		}
	}
	var content contentHash
	if text {
		content = newTextHash()
	} else {
		content = &plainHash{h: NewHash(DigestHash)}
	}
	if _, err := io.Copy(content, dec); err != nil {
		return fallback(mediaType)
	}
	// A base64 decoder stops at the padding; what follows is not content.
	_, _ = io.Copy(io.Discard, tr)
	return []contentRecord{content.record(kindPart, mediaType)}
}

// contentHash hashes a stream and counts what it hashed.
type contentHash interface {
	io.Writer
	record(kind byte, mediaType string) contentRecord
}

// plainHash hashes what is written to it, through a buffer (the text
// normalisation writes in small pieces).
type plainHash struct {
	h   hash.Hash
	n   uint64
	buf []byte
}

const plainHashBuffer = 32 << 10

func (p *plainHash) Write(b []byte) (int, error) {
	p.n += uint64(len(b))
	if len(p.buf)+len(b) > plainHashBuffer {
		p.flush()
		if len(b) >= plainHashBuffer {
			return p.h.Write(b)
		}
	}
	p.buf = append(p.buf, b...)
	return len(b), nil
}

func (p *plainHash) flush() {
	if len(p.buf) > 0 {
		p.h.Write(p.buf)
		p.buf = p.buf[:0]
	}
}

func (p *plainHash) record(kind byte, mediaType string) contentRecord {
	p.flush()
	return contentRecord{kind: kind, mediaType: mediaType, size: p.n, sum: p.h.Sum(nil)}
}

// textHash hashes text normalised: CRLF and lone CR become LF, trailing
// spaces and tabs of every line and trailing newlines at the end are
// dropped. It holds back only the pending whitespace and a count of pending
// newlines.
type textHash struct {
	out       plainHash
	pendingNL int
	pendingWS []byte
	afterCR   bool
}

func newTextHash() *textHash {
	return &textHash{out: plainHash{h: NewHash(DigestHash)}}
}

// textSpecial marks the bytes textHash does not pass straight through.
var textSpecial = [256]bool{'\r': true, '\n': true, ' ': true, '\t': true}

var newlines = []byte(strings.Repeat("\n", 64))

func (t *textHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := 0
		for i < len(p) && !textSpecial[p[i]] {
			i++
		}
		if i > 0 {
			t.afterCR = false
			t.flushPending()
			t.out.Write(p[:i])
			p = p[i:]
			continue
		}
		c := p[0]
		p = p[1:]
		switch c {
		case '\n':
			if t.afterCR {
				t.afterCR = false
				continue
			}
			t.pendingWS = t.pendingWS[:0]
			t.pendingNL++
		case '\r':
			t.afterCR = true
			t.pendingWS = t.pendingWS[:0]
			t.pendingNL++
		default: // space, tab
			t.afterCR = false
			if len(t.pendingWS) >= maxPendingSpace {
				t.flushPending()
			}
			t.pendingWS = append(t.pendingWS, c)
		}
	}
	return n, nil
}

// flushPending hashes the newlines and whitespace held back, now that
// content follows them.
func (t *textHash) flushPending() {
	for t.pendingNL > 0 {
		k := min(t.pendingNL, len(newlines))
		t.out.Write(newlines[:k])
		t.pendingNL -= k
	}
	if len(t.pendingWS) > 0 {
		t.out.Write(t.pendingWS)
		t.pendingWS = t.pendingWS[:0]
	}
}

func (t *textHash) record(kind byte, mediaType string) contentRecord {
	return t.out.record(kind, mediaType)
}

// base64Cleaner drops whitespace from a base64 body, which the decoder
// would otherwise refuse in the middle of a line (continuation indents).
type base64Cleaner struct{ r io.Reader }

func (c *base64Cleaner) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		j := 0
		for _, b := range p[:n] {
			switch b {
			case ' ', '\t', '\r', '\n':
			default:
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// trackingReader reads r, remembers its first error other than EOF and
// copies what it reads to tee when set.
type trackingReader struct {
	r   io.Reader
	err error
	tee io.Writer
}

func (t *trackingReader) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.r.Read(p)
	if n > 0 && t.tee != nil {
		t.tee.Write(p[:n])
	}
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// limitedReader fails once n bytes were read (n < 0: no limit).
type limitedReader struct {
	r io.Reader
	n int64
}

var errHeaderTooBig = errors.New("header too big")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errHeaderTooBig
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
