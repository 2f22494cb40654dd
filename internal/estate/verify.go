package estate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// Account is one IMAP login: Addr is host:port, plain IMAP (loopback).
type Account struct {
	Addr, User, Password string
}

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// MaxMessageSize: source messages larger than this (exact RFC 822 size)
	// are expected to be absent from the target; finding one there is a
	// problem. 0 means no limit.
	MaxMessageSize int64
	// MapFolder maps a source folder name ("/"-delimited, INBOX upper-case)
	// to the target folder name. Nil means identity. Several source folders
	// may map to the same target folder; they are then compared as one.
	// Returning "" excludes the source folder from the comparison (it is
	// not counted in the Report either).
	MapFolder func(src string) string
	// MapFolderFor, for VerifyEstate, gives each mailbox its own MapFolder
	// (e.g. ExchangeFolderMap in the mailbox's language); nil means
	// MapFolder for every mailbox. Verify ignores it.
	MapFolderFor func(mb *Mailbox) func(src string) string
	// Rerendered: the target re-renders MIME and keeps no keywords, like
	// Exchange Online. Messages are then compared by their content as a
	// reader sees it (see ContentIdentity) instead of their bytes, flags
	// without keywords (only \Seen \Answered \Flagged \Deleted \Draft
	// and $MDNSent are kept on both sides) and INTERNALDATE; sizes are not
	// compared (Report.Bytes and MaxMessageSize still use the source's).
	Rerendered bool
}

// Report is the outcome of Verify. Folders, Messages and Bytes count the
// source side (selectable folders; all messages including expected-missing
// ones).
type Report struct {
	Folders         int
	Messages        int
	Bytes           int64
	ExpectedMissing int
	Problems        []string
}

// OK reports whether no problem was found.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Add merges o into r.
func (r *Report) Add(o Report) {
	r.Folders += o.Folders
	r.Messages += o.Messages
	r.Bytes += o.Bytes
	r.ExpectedMissing += o.ExpectedMissing
	r.Problems = append(r.Problems, o.Problems...)
}

func (r Report) String() string {
	s := fmt.Sprintf("%d folders, %d messages, %d bytes, %d expected missing, %d problems",
		r.Folders, r.Messages, r.Bytes, r.ExpectedMissing, len(r.Problems))
	for _, p := range r.Problems {
		s += "\n  " + p
	}
	return s
}

// Verify proves that tgt holds what src holds. For every selectable source
// folder it EXAMINEs both sides and compares, as multisets, each message's
// (sha256 of the exact BODY[] bytes, flags without \Recent compared
// case-insensitively, INTERNALDATE as Unix seconds); with
// VerifyOptions.Rerendered, the ContentIdentity instead of the bytes' hash
// and the flags without keywords. Missing and extra
// messages, flag and date mismatches, missing folders (including empty
// ones) and non-empty target-only folders are problems; connection and
// protocol failures are errors.
//
// Bodies are streamed into sha256 (one UID FETCH 1:* per folder, read with
// Next() and the literal reader), so memory stays small for big messages;
// the ContentIdentity is computed from the stream too.
func Verify(ctx context.Context, src, tgt Account, opts VerifyOptions) (Report, error) {
	var rep Report
	mapFolder := opts.MapFolder
	if mapFolder == nil {
		mapFolder = func(s string) string { return s }
	}
	prefix := "mailbox " + src.User + ": "

	sc, err := dialLogin(ctx, src)
	if err != nil {
		return rep, fmt.Errorf("verify: source %s: %w", src.User, err)
	}
	defer sc.close()
	tc, err := dialLogin(ctx, tgt)
	if err != nil {
		return rep, fmt.Errorf("verify: target %s: %w", tgt.User, err)
	}
	defer tc.close()

	srcFolders, err := sc.list()
	if err != nil {
		return rep, fmt.Errorf("verify: source %s: %w", src.User, err)
	}
	tgtFolders, err := tc.list()
	if err != nil {
		return rep, fmt.Errorf("verify: target %s: %w", tgt.User, err)
	}
	tgtByNorm := map[string]ListedFolder{}
	for _, f := range tgtFolders {
		tgtByNorm[f.Norm] = f
	}

	// Group selectable source folders by target name (order: first source).
	type group struct {
		target  string
		sources []ListedFolder
	}
	var groups []*group
	byTarget := map[string]*group{}
	for _, f := range srcFolders {
		if f.NoSelect {
			continue
		}
		mf := mapFolder(f.Norm)
		if mf == "" {
			continue
		}
		rep.Folders++
		t := normalize(mf, '/')
		g := byTarget[t]
		if g == nil {
			g = &group{target: t}
			byTarget[t] = g
			groups = append(groups, g)
		}
		g.sources = append(g.sources, f)
	}

	for _, g := range groups {
		var names []string
		for _, f := range g.sources {
			names = append(names, f.Norm)
		}
		label := "folder " + strings.Join(names, " + ")
		if len(names) > 1 || names[0] != g.target {
			label += " (target " + g.target + ")"
		}
		label = prefix + label + ": "

		tf, tgtExists := tgtByNorm[g.target]
		var (
			srcRecs, tgtRecs []msgRec
			srcErr, tgtErr   error
			wg               sync.WaitGroup
		)
		if tgtExists && !tf.NoSelect {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tgtRecs, tgtErr = tc.scan(tf.Name, opts.Rerendered)
			}()
		}
		for _, f := range g.sources {
			recs, err := sc.scan(f.Name, opts.Rerendered)
			if err != nil {
				srcErr = fmt.Errorf("source folder %q: %w", f.Norm, err)
				break
			}
			srcRecs = append(srcRecs, recs...)
		}
		wg.Wait()
		if err := errors.Join(srcErr, tgtErr); err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			return rep, fmt.Errorf("verify: %s%w", label, err)
		}
		for _, r := range srcRecs {
			rep.Messages++
			rep.Bytes += r.size
		}
		switch {
		case !tgtExists:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%sfolder missing on target (%d source messages)", label, len(srcRecs)))
			for _, r := range srcRecs {
				if opts.MaxMessageSize > 0 && r.size > opts.MaxMessageSize {
					rep.ExpectedMissing++
				}
			}
			continue
		case tf.NoSelect:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%sfolder is not selectable on target (%d source messages)", label, len(srcRecs)))
			continue
		}
		compareFolder(label, srcRecs, tgtRecs, opts.MaxMessageSize, &rep)
	}

	// Target-only folders that hold messages.
	mapped := map[string]bool{}
	for _, g := range groups {
		mapped[g.target] = true
	}
	for _, f := range srcFolders { // \Noselect source parents are fine to exist
		if mf := mapFolder(f.Norm); mf != "" {
			mapped[normalize(mf, '/')] = true
		}
	}
	for _, f := range tgtFolders {
		if mapped[f.Norm] || f.NoSelect {
			continue
		}
		st, err := tc.c.Status(f.Name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			return rep, fmt.Errorf("verify: target %s: STATUS %q: %w", tgt.User, f.Norm, err)
		}
		if st.NumMessages != nil && *st.NumMessages > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%sfolder %s exists only on target (%d extra messages)", prefix, f.Norm, *st.NumMessages))
		}
	}
	return rep, nil
}

// VerifyEstate runs Verify for every mailbox of e (same credentials on both
// servers; VerifyOptions.MapFolderFor, if set, maps its folders), up to 4
// mailboxes at a time, and merges the reports in mailbox order.
func VerifyEstate(ctx context.Context, e *Estate, srcAddr, tgtAddr string, opts VerifyOptions) (Report, error) {
	mbs := e.Mailboxes()
	reps := make([]Report, len(mbs))
	errs := make([]error, len(mbs))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, mb := range mbs {
		wg.Add(1)
		sem <- struct{}{}
		o := opts
		if opts.MapFolderFor != nil {
			o.MapFolder = opts.MapFolderFor(mb)
		}
		go func() {
			defer func() { <-sem; wg.Done() }()
			reps[i], errs[i] = Verify(ctx,
				Account{Addr: srcAddr, User: mb.User, Password: mb.Password},
				Account{Addr: tgtAddr, User: mb.User, Password: mb.Password}, o)
		}()
	}
	wg.Wait()
	var total Report
	for i := range reps {
		total.Add(reps[i])
	}
	return total, errors.Join(errs...)
}

// keptFlags are the flags (lower-case) a re-rendering target such as
// Exchange Online keeps: the system flags and $MDNSent.
var keptFlags = map[string]bool{
	`\seen`: true, `\answered`: true, `\flagged`: true, `\deleted`: true, `\draft`: true, `$mdnsent`: true,
}

// msgRec is what Verify compares for one message.
type msgRec struct {
	uid   imap.UID
	sum   [32]byte
	size  int64
	flags []string // lower-case, sorted, without \recent
	date  time.Time
}

func (r msgRec) key() string {
	return string(r.sum[:]) + "|" + strings.Join(r.flags, " ") + "|" + fmt.Sprint(r.date.Unix())
}

func (r msgRec) short() string { return hex.EncodeToString(r.sum[:6]) }

func flagList(f []string) string { return "[" + strings.Join(f, " ") + "]" }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// compareFolder compares two multisets of messages and appends problems.
func compareFolder(label string, src, tgt []msgRec, maxSize int64, rep *Report) {
	var problems []string
	oversized := map[[32]byte]bool{}
	var want []msgRec
	for _, r := range src {
		if maxSize > 0 && r.size > maxSize {
			rep.ExpectedMissing++
			oversized[r.sum] = true
			continue
		}
		want = append(want, r)
	}

	// Cancel exact matches.
	count := map[string]int{}
	for _, r := range tgt {
		count[r.key()]++
	}
	var srcLeft []msgRec
	for _, r := range want {
		if k := r.key(); count[k] > 0 {
			count[k]--
		} else {
			srcLeft = append(srcLeft, r)
		}
	}
	var tgtLeft []msgRec
	for _, r := range tgt {
		if k := r.key(); count[k] > 0 {
			count[k]--
			tgtLeft = append(tgtLeft, r)
		}
	}
	// Oversized messages found on the target.
	tgtLeft = slices.DeleteFunc(tgtLeft, func(r msgRec) bool {
		if oversized[r.sum] {
			problems = append(problems, fmt.Sprintf("%soversized message present on target although expected absent (sha256 %s, %d B, limit %d B)",
				label, r.short(), r.size, maxSize))
			return true
		}
		return false
	})

	// Same content, different metadata.
	bySum := func(l []msgRec) map[[32]byte][]msgRec {
		m := map[[32]byte][]msgRec{}
		for _, r := range l {
			m[r.sum] = append(m[r.sum], r)
		}
		return m
	}
	srcBy, tgtBy := bySum(srcLeft), bySum(tgtLeft)
	order := func(l []msgRec) {
		sort.Slice(l, func(i, j int) bool {
			if a, b := strings.Join(l[i].flags, " "), strings.Join(l[j].flags, " "); a != b {
				return a < b
			}
			return l[i].date.Unix() < l[j].date.Unix()
		})
	}
	missing := map[[32]byte][]msgRec{}
	extra := map[[32]byte][]msgRec{}
	for sum, sl := range srcBy {
		tl := tgtBy[sum]
		order(sl)
		order(tl)
		n := min(len(sl), len(tl))
		for i := 0; i < n; i++ {
			s, t := sl[i], tl[i]
			var what []string
			if !slices.Equal(s.flags, t.flags) {
				what = append(what, fmt.Sprintf("flags: source %s target %s", flagList(s.flags), flagList(t.flags)))
			}
			if s.date.Unix() != t.date.Unix() {
				what = append(what, fmt.Sprintf("date: source %s target %s",
					s.date.Format(time.RFC3339), t.date.Format(time.RFC3339)))
			}
			kind := "flag mismatch"
			switch {
			case len(what) == 2:
				kind = "flag and date mismatch"
			case s.date.Unix() != t.date.Unix():
				kind = "date mismatch"
			}
			problems = append(problems, fmt.Sprintf("%s%s (sha256 %s, %d B): %s", label, kind, s.short(), s.size, strings.Join(what, "; ")))
		}
		if len(sl) > n {
			missing[sum] = sl[n:]
		}
		if len(tl) > n {
			extra[sum] = tl[n:]
		}
		delete(tgtBy, sum)
	}
	for sum, tl := range tgtBy {
		extra[sum] = tl
	}
	for _, l := range missing {
		problems = append(problems, fmt.Sprintf("%s%s missing (sha256 %s, %d B)", label, plural(len(l), "message", "messages"), l[0].short(), l[0].size))
	}
	for _, l := range extra {
		problems = append(problems, fmt.Sprintf("%s%s on target (sha256 %s, %d B)", label, plural(len(l), "extra message", "extra messages"), l[0].short(), l[0].size))
	}
	sort.Strings(problems)
	rep.Problems = append(rep.Problems, problems...)
}

// verifyClient is one logged-in connection.
type verifyClient struct {
	c    *imapclient.Client
	stop func() bool
}

func dialLogin(ctx context.Context, a Account) (*verifyClient, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	c := imapclient.New(conn, nil)
	vc := &verifyClient{c: c, stop: context.AfterFunc(ctx, func() { c.Close() })}
	if err := c.WaitGreeting(); err != nil {
		vc.close()
		return nil, ctxErr(ctx, err)
	}
	if err := c.Login(a.User, a.Password).Wait(); err != nil {
		vc.close()
		return nil, ctxErr(ctx, fmt.Errorf("LOGIN: %w", err))
	}
	return vc, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (vc *verifyClient) close() {
	vc.stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-vc.c.Closed():
		default:
			_ = vc.c.Logout().Wait()
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second): // do not hang on a stuck server
	}
	_ = vc.c.Close()
}

// ListedFolder is a folder as LIST shows it, with a name comparable
// across servers whatever their hierarchy delimiter.
type ListedFolder struct {
	Name     string // as the server names it (decoded from UTF-7)
	Norm     string // "/"-delimited, INBOX upper-case
	NoSelect bool
}

// normalize turns a server name into "/"-delimited form with INBOX
// upper-cased.
func normalize(name string, delim rune) string {
	if delim != 0 && delim != '/' {
		name = strings.ReplaceAll(name, string(delim), "/")
	}
	first, rest, hasRest := strings.Cut(name, "/")
	if strings.EqualFold(first, "INBOX") {
		first = "INBOX"
	}
	if hasRest {
		return first + "/" + rest
	}
	return first
}

func (vc *verifyClient) list() ([]ListedFolder, error) { return ListFolders(vc.c) }

// ListFolders lists every folder, sorted by normalized name.
func ListFolders(c *imapclient.Client) ([]ListedFolder, error) {
	data, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("LIST: %w", err)
	}
	var out []ListedFolder
	for _, d := range data {
		f := ListedFolder{Name: d.Mailbox, Norm: normalize(d.Mailbox, d.Delim)}
		for _, a := range d.Attrs {
			if a == imap.MailboxAttrNoSelect || a == imap.MailboxAttrNonExistent {
				f.NoSelect = true
			}
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Norm < out[j].Norm })
	return out, nil
}

// scan EXAMINEs name and fetches every message's hash, size, flags and date:
// with rerendered, its ContentIdentity and its flags without keywords.
func (vc *verifyClient) scan(name string, rerendered bool) ([]msgRec, error) {
	sel, err := vc.c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("EXAMINE: %w", err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	cmd := vc.c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID:          true,
		Flags:        true,
		InternalDate: true,
		BodySection:  []*imap.FetchItemBodySection{{Peek: true}},
	})
	recs := make([]msgRec, 0, sel.NumMessages)
	var scanErr error
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var (
			r       msgRec
			gotBody bool
		)
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch item := item.(type) {
			case imapclient.FetchItemDataUID:
				r.uid = item.UID
			case imapclient.FetchItemDataFlags:
				for _, f := range item.Flags {
					lf := strings.ToLower(string(f))
					if lf == `\recent` || rerendered && !keptFlags[lf] {
						continue
					}
					r.flags = append(r.flags, lf)
				}
			case imapclient.FetchItemDataInternalDate:
				r.date = item.Time
			case imapclient.FetchItemDataBodySection:
				gotBody = true
				if item.Literal == nil { // BODY[] NIL
					r.sum = sha256.Sum256(nil)
					break
				}
				var (
					n   int64
					err error
				)
				if rerendered {
					r.sum, n, err = ContentIdentity(item.Literal)
				} else {
					h := sha256.New()
					n, err = io.Copy(h, item.Literal)
					copy(r.sum[:], h.Sum(nil))
				}
				if err != nil && scanErr == nil {
					scanErr = fmt.Errorf("reading UID %d: %w", r.uid, err)
				}
				r.size = n
			}
		}
		if !gotBody {
			r.sum = sha256.Sum256(nil)
		}
		sort.Strings(r.flags)
		r.flags = slices.Compact(r.flags)
		recs = append(recs, r)
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("UID FETCH: %w", err)
	}
	if scanErr != nil {
		return nil, scanErr
	}
	if len(recs) != int(sel.NumMessages) {
		return nil, fmt.Errorf("UID FETCH 1:* returned %d of %d messages", len(recs), sel.NumMessages)
	}
	return recs, nil
}

// Count is how many messages a's mailbox holds over all its folders, from
// STATUS alone: a cheap, independent progress gauge for tests that watch a
// copy advance.
func Count(ctx context.Context, a Account) (int, error) {
	vc, err := dialLogin(ctx, a)
	if err != nil {
		return 0, err
	}
	defer vc.close()
	folders, err := vc.list()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range folders {
		if f.NoSelect {
			continue
		}
		st, err := vc.c.Status(f.Name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return 0, ctxErr(ctx, fmt.Errorf("STATUS %s: %w", f.Name, err))
		}
		if st.NumMessages != nil {
			n += int(*st.NumMessages)
		}
	}
	return n, nil
}

// identityVersion starts every ContentIdentity's input.
const identityVersion = "estate-content-identity-v1"

// maxIdentityHeader bounds the top-level header ContentIdentity parses (as
// go-message does); a larger one makes the whole message count as raw.
const maxIdentityHeader = 1 << 20

// ContentIdentity returns a message's identity as a reader sees its content,
// which survives a target re-rendering its MIME (Exchange Online), the
// number of bytes read from r, and r's read error if any. It is the
// verifier's own recipe, deliberately not shared with the migration engine.
//
// It is the SHA-256 of, each field length-prefixed:
//   - the Message-ID value, trimmed;
//   - the Subject, RFC 2047 words decoded (any charset go-message knows),
//     whitespace runs collapsed to one space and trimmed;
//   - every leaf MIME part in order (multiparts walked with go-message;
//     boundaries, part headers, preambles and epilogues left out): its
//     lower-cased media type and the SHA-256 of its content, transfer
//     encoding undone (and, for text/*, its charset converted to UTF-8 when
//     go-message knows it, else left as it is); text/* content is also
//     normalised: CRLF to LF, trailing whitespace stripped from every line
//     and trailing newlines from the end.
//
// If the walk fails anywhere (an unparseable Content-Type, a multipart
// without boundary or closing boundary, an unknown transfer encoding,
// undecodable content), the leaf parts are replaced by the raw
// body after the header, normalised like text. A header that cannot be
// parsed makes the whole message raw. Every other header field is left
// out. r is read to its end and streamed: memory does not grow with the
// message.
func ContentIdentity(r io.Reader) (sum [32]byte, n int64, err error) {
	cr := &countingReader{r: r}
	whole := newTextHash()
	sw := &switchWriter{w: whole}
	lim := &headerLimit{r: io.TeeReader(cr, sw), n: maxIdentityHeader}
	br := bufio.NewReader(lim)
	h, herr := textproto.ReadHeader(br)
	lim.n = -1

	out := sha256.New()
	writeField(out, []byte(identityVersion))
	if herr != nil {
		// Everything read from lim went through whole, buffered or not.
		_, _ = io.Copy(io.Discard, lim)
		writeField(out, nil)
		writeField(out, nil)
		out.Write([]byte{'r'})
		writeField(out, whole.sum())
	} else {
		sw.w = nil // the header parsed: the body is hashed from br
		writeField(out, []byte(strings.TrimSpace(h.Get("Message-Id"))))
		writeField(out, []byte(decodeSubject(h.Get("Subject"))))
		raw := newTextHash()
		body := io.TeeReader(br, raw)
		parts, ok := walkLeaves(h, body)
		_, _ = io.Copy(io.Discard, body) // the rest, for raw
		if ok {
			out.Write(parts)
		} else {
			out.Write([]byte{'r'})
			writeField(out, raw.sum())
		}
	}
	_, _ = io.Copy(io.Discard, cr)
	copy(sum[:], out.Sum(nil))
	return sum, cr.n, cr.err
}

// decodeSubject decodes RFC 2047 words (keeping the raw value if it
// cannot) and collapses whitespace.
func decodeSubject(v string) string {
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	if s, err := dec.DecodeHeader(v); err == nil {
		v = s
	}
	return strings.Join(strings.Fields(v), " ")
}

// errWalk aborts a walk over a malformed message.
var errWalk = errors.New("malformed MIME")

// walkLeaves hashes the leaf parts of the entity with header h and raw body
// body into a record stream; ok is false if the MIME walk failed anywhere.
func walkLeaves(h textproto.Header, body io.Reader) (records []byte, ok bool) {
	var out bytes.Buffer
	ent, err := message.New(message.Header{Header: h}, body)
	if err != nil && !message.IsUnknownCharset(err) {
		return nil, false
	}
	err = ent.Walk(func(_ []int, e *message.Entity, err error) error {
		// An unknown charset leaves the content as it is (transfer
		// encoding undone): a re-rendering keeps those bytes too.
		if err != nil && !message.IsUnknownCharset(err) {
			return errWalk
		}
		mediaType, params := "text/plain", map[string]string{}
		if ct := e.Header.Get("Content-Type"); strings.TrimSpace(ct) != "" {
			if mediaType, params, err = mime.ParseMediaType(ct); err != nil {
				return errWalk
			}
		}
		mediaType = strings.ToLower(mediaType)
		if strings.HasPrefix(mediaType, "multipart/") {
			if params["boundary"] == "" {
				return errWalk
			}
			return nil // Walk goes into its parts
		}
		var sum []byte
		if strings.HasPrefix(mediaType, "text/") {
			th := newTextHash()
			if _, err := io.Copy(th, e.Body); err != nil {
				return errWalk
			}
			sum = th.sum()
		} else {
			hh := sha256.New()
			if _, err := io.Copy(hh, e.Body); err != nil {
				return errWalk
			}
			sum = hh.Sum(nil)
		}
		out.WriteByte('p')
		writeField(&out, []byte(mediaType))
		writeField(&out, sum)
		return nil
	})
	if err != nil {
		return nil, false
	}
	return out.Bytes(), true
}

func writeField(w io.Writer, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	w.Write(n[:])
	w.Write(b)
}

// textHash is a SHA-256 of text normalised as ContentIdentity says: CR
// before LF dropped, trailing spaces and tabs of every line dropped, and
// trailing newlines at the end dropped. Held-back whitespace is bounded:
// a run longer than maxHeldSpace is hashed as content.
type textHash struct {
	h    hash.Hash
	ws   []byte // spaces, tabs and CRs since the last content byte
	nl   int    // newlines since the last content byte
	line []byte // scratch
}

const maxHeldSpace = 64 << 10

func newTextHash() *textHash { return &textHash{h: sha256.New()} }

func (t *textHash) Write(p []byte) (int, error) {
	buf := t.line[:0]
	for _, c := range p {
		switch c {
		case ' ', '\t', '\r':
			t.ws = append(t.ws, c)
			if len(t.ws) > maxHeldSpace {
				buf = t.flush(buf)
			}
		case '\n':
			t.ws = t.ws[:0]
			t.nl++
		default:
			buf = t.flush(buf)
			buf = append(buf, c)
		}
		if len(buf) >= 32<<10 {
			t.h.Write(buf)
			buf = buf[:0]
		}
	}
	t.h.Write(buf)
	t.line = buf[:0]
	return len(p), nil
}

// flush appends the held newlines and whitespace to buf: content follows.
func (t *textHash) flush(buf []byte) []byte {
	for ; t.nl > 0; t.nl-- {
		buf = append(buf, '\n')
	}
	buf = append(buf, t.ws...)
	t.ws = t.ws[:0]
	return buf
}

// sum is the hash of what was written, without what is still held back.
func (t *textHash) sum() []byte { return t.h.Sum(nil) }

type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// switchWriter writes to w until w is set to nil.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) {
	if s.w != nil {
		s.w.Write(p)
	}
	return len(p), nil
}

// headerLimit ends r after n bytes (while n >= 0) with an error.
type headerLimit struct {
	r io.Reader
	n int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errors.New("header too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
