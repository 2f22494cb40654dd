package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mailshift/mailshift/internal/estate"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// checkResult compares target with source for every mailbox, as multisets
// per folder. Messages are paired by the sha256 of their bytes with X-TUID
// header lines removed (mbsync adds one), then compared byte-exact, by
// flags (without \Recent, case-insensitive) and by INTERNALDATE.
type checkResult struct {
	Messages       int
	Missing        int
	Duplicates     int
	BytesDiffer    int // paired, but not byte-identical (X-TUID and the like)
	FlagsDiffer    int
	DatesDiffer    int
	FoldersMissing int
	Examples       []string
}

func (c *checkResult) add(o checkResult) {
	c.Messages += o.Messages
	c.Missing += o.Missing
	c.Duplicates += o.Duplicates
	c.BytesDiffer += o.BytesDiffer
	c.FlagsDiffer += o.FlagsDiffer
	c.DatesDiffer += o.DatesDiffer
	c.FoldersMissing += o.FoldersMissing
	for _, e := range o.Examples {
		if len(c.Examples) < 6 {
			c.Examples = append(c.Examples, e)
		}
	}
}

func (c checkResult) ok() bool {
	return c.Missing == 0 && c.Duplicates == 0 && c.BytesDiffer == 0 && c.FlagsDiffer == 0 && c.DatesDiffer == 0 && c.FoldersMissing == 0
}

func (c checkResult) summary() string {
	if c.ok() {
		return "OK"
	}
	var parts []string
	for _, x := range []struct {
		n    int
		what string
	}{{c.FoldersMissing, "folders missing"}, {c.Missing, "missing"}, {c.Duplicates, "duplicates"}, {c.BytesDiffer, "bytes differ"}, {c.FlagsDiffer, "flags differ"}, {c.DatesDiffer, "dates differ"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	return strings.Join(parts, ", ")
}

type rec struct {
	exact, norm [32]byte
	flags       string
	date        int64
}

type account struct {
	addr, user, pw string
}

func login(ctx context.Context, a account) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(a.addr, nil)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { c.Close() })
	if err := c.Login(a.user, a.pw).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("LOGIN %s: %w", a.user, err)
	}
	return c, nil
}

// stripTUID removes "X-TUID:" header lines from the header section.
func stripTUID(b []byte) []byte {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(b)
	}
	if !bytes.Contains(bytes.ToLower(b[:end]), []byte("x-tuid:")) {
		return b
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b[:end+2]))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(scanCRLF)
	for sc.Scan() {
		if line := sc.Bytes(); !bytes.HasPrefix(bytes.ToLower(line), []byte("x-tuid:")) {
			out.Write(line)
		}
	}
	out.Write(b[end+2:])
	return out.Bytes()
}

func scanCRLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.Index(data, []byte("\r\n")); i >= 0 {
		return i + 2, data[:i+2], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// scan reads every message of a folder (one UID FETCH 1:*). Bodies are
// read into memory one at a time (to strip X-TUID), never all at once.
func scan(c *imapclient.Client, name string) ([]rec, error) {
	sel, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("EXAMINE %q: %w", name, err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	var out []rec
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var r rec
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataFlags:
				var fs []string
				for _, f := range it.Flags {
					if lf := strings.ToLower(string(f)); lf != `\recent` {
						fs = append(fs, lf)
					}
				}
				sort.Strings(fs)
				r.flags = strings.Join(slices.Compact(fs), " ")
			case imapclient.FetchItemDataInternalDate:
				r.date = it.Time.Unix()
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					b, err := io.ReadAll(it.Literal)
					if err != nil {
						cmd.Close()
						return nil, err
					}
					r.exact = sha256.Sum256(b)
					r.norm = sha256.Sum256(stripTUID(b))
				}
			}
		}
		out = append(out, r)
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("FETCH %q: %w", name, err)
	}
	return out, nil
}

func compareFolder(label string, src, tgt []rec, res *checkResult) {
	res.Messages += len(src)
	group := func(l []rec) map[[32]byte][]rec {
		m := map[[32]byte][]rec{}
		for _, r := range l {
			m[r.norm] = append(m[r.norm], r)
		}
		return m
	}
	sg, tg := group(src), group(tgt)
	example := func(s string) {
		if len(res.Examples) < 6 {
			res.Examples = append(res.Examples, label+": "+s)
		}
	}
	for k, sl := range sg {
		tl := tg[k]
		if len(tl) < len(sl) {
			res.Missing += len(sl) - len(tl)
			example(fmt.Sprintf("%d missing", len(sl)-len(tl)))
		}
		if len(tl) > len(sl) {
			res.Duplicates += len(tl) - len(sl)
		}
		paired := min(len(sl), len(tl))
		res.BytesDiffer += paired - matches(sl, tl, func(r rec) string { return string(r.exact[:]) })
		if n := paired - matches(sl, tl, func(r rec) string { return r.flags }); n > 0 {
			res.FlagsDiffer += n
			example(fmt.Sprintf("flags: source [%s] target [%s]", sl[0].flags, tl[0].flags))
		}
		if n := paired - matches(sl, tl, func(r rec) string { return fmt.Sprint(r.date) }); n > 0 {
			res.DatesDiffer += n
			example(fmt.Sprintf("date: source %d target %d", sl[0].date, tl[0].date))
		}
	}
	for k, tl := range tg {
		if _, ok := sg[k]; !ok {
			res.Duplicates += len(tl) // not from the source at all: counted as extra
		}
	}
}

// matches is the size of the multiset intersection of key(src) and key(tgt).
func matches(src, tgt []rec, key func(rec) string) int {
	count := map[string]int{}
	for _, r := range tgt {
		count[key(r)]++
	}
	n := 0
	for _, r := range src {
		if k := key(r); count[k] > 0 {
			count[k]--
			n++
		}
	}
	return n
}

func checkMailbox(ctx context.Context, src, tgt account) (checkResult, error) {
	var res checkResult
	sc, err := login(ctx, src)
	if err != nil {
		return res, err
	}
	defer sc.Close()
	tc, err := login(ctx, tgt)
	if err != nil {
		return res, err
	}
	defer tc.Close()
	sf, err := estate.ListFolders(sc)
	if err != nil {
		return res, err
	}
	tf, err := estate.ListFolders(tc)
	if err != nil {
		return res, err
	}
	tby := map[string]estate.ListedFolder{}
	for _, f := range tf {
		tby[f.Norm] = f
	}
	for _, f := range sf {
		if f.NoSelect {
			continue
		}
		label := src.user + " " + f.Norm
		t, ok := tby[f.Norm]
		var wg sync.WaitGroup
		var srecs, trecs []rec
		var terr error
		if ok && !t.NoSelect {
			wg.Add(1)
			go func() { defer wg.Done(); trecs, terr = scan(tc, t.Name) }()
		}
		srecs, err := scan(sc, f.Name)
		wg.Wait()
		if err != nil {
			return res, err
		}
		if terr != nil {
			return res, terr
		}
		if !ok || t.NoSelect {
			res.FoldersMissing++
			res.Messages += len(srecs)
			res.Missing += len(srecs)
			if len(res.Examples) < 6 {
				res.Examples = append(res.Examples, label+": folder missing on target")
			}
			continue
		}
		compareFolder(label, srecs, trecs, &res)
	}
	return res, nil
}

// countMailbox returns, per normalised folder name, the message count.
func countMailbox(ctx context.Context, a account) (map[string]int, error) {
	c, err := login(ctx, a)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	fs, err := estate.ListFolders(c)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, f := range fs {
		if f.NoSelect {
			continue
		}
		st, err := c.Status(f.Name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return nil, err
		}
		out[f.Norm] = int(*st.NumMessages)
	}
	return out, nil
}

// parallel runs f for 0..n-1 with at most p at a time.
func parallel(n, p int, f func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, p)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
