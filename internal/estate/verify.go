package estate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
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
// case-insensitively, INTERNALDATE as Unix seconds). Missing and extra
// messages, flag and date mismatches, missing folders (including empty
// ones) and non-empty target-only folders are problems; connection and
// protocol failures are errors.
//
// Bodies are streamed into sha256 (one UID FETCH 1:* per folder, read with
// Next() and the literal reader), so memory stays small for big messages.
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
				tgtRecs, tgtErr = tc.scan(tf.Name)
			}()
		}
		for _, f := range g.sources {
			recs, err := sc.scan(f.Name)
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
// servers), up to 4 mailboxes at a time, and merges the reports in mailbox
// order.
func VerifyEstate(ctx context.Context, e *Estate, srcAddr, tgtAddr string, opts VerifyOptions) (Report, error) {
	mbs := e.Mailboxes()
	reps := make([]Report, len(mbs))
	errs := make([]error, len(mbs))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, mb := range mbs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			reps[i], errs[i] = Verify(ctx,
				Account{Addr: srcAddr, User: mb.User, Password: mb.Password},
				Account{Addr: tgtAddr, User: mb.User, Password: mb.Password}, opts)
		}()
	}
	wg.Wait()
	var total Report
	for i := range reps {
		total.Add(reps[i])
	}
	return total, errors.Join(errs...)
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

// scan EXAMINEs name and fetches every message's hash, size, flags and date.
func (vc *verifyClient) scan(name string) ([]msgRec, error) {
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
					if lf == `\recent` {
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
				h := sha256.New()
				n, err := io.Copy(h, item.Literal)
				if err != nil && scanErr == nil {
					scanErr = fmt.Errorf("reading UID %d: %w", r.uid, err)
				}
				r.size = n
				copy(r.sum[:], h.Sum(nil))
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
