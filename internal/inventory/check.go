package inventory

import (
	"bufio"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

// OrgCount is one organization of a checked inventory.
type OrgCount struct {
	Code      string
	Name      string // the first organization_name given for it
	Wave      string // the wave its rows give, "" if none does
	Mailboxes int
	FirstLine int
}

// Summary is what Check learns about a valid inventory.
type Summary struct {
	Mailboxes int
	Orgs      []OrgCount // in the order of their first row
}

// Check validates an inventory of any size without keeping its rows and
// reports the same problems as Parse, up to 50, each a *LineError naming the
// line, the field and the mailbox; a duplicate names both lines.
//
// Memory is bounded: 8 bytes per mailbox (a hash of its address) and the
// organizations. A hash that repeats is confirmed by reading the rows again
// and comparing the addresses themselves, so two different addresses are
// never reported as one. Check reads r again from where it started when r is
// an io.Seeker that can seek (a regular file, strings.Reader, bytes.Reader);
// otherwise it copies r to a temporary file while reading it the first time,
// which needs as much disk space as the input and is removed before Check
// returns. Use CheckFile for a file.
func Check(r io.Reader) (*Summary, error) {
	return newChecker().check(r)
}

// CheckFile is Check on a file, reading it a second time only if a hash
// repeats.
func CheckFile(path string) (*Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum, err := Check(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sum, nil
}

// checker holds the hash of (lower-cased) addresses, seeded afresh for each
// read, and how many repeated hashes one extra pass confirms (each keeps the
// distinct addresses seen with it: one unless hashes collide). Tests give it
// a weak hash and small batches.
type checker struct {
	hash  func([]byte) uint64
	batch int
}

func newChecker() checker {
	seed := maphash.MakeSeed()
	return checker{hash: func(b []byte) uint64 { return maphash.Bytes(seed, b) }, batch: 1 << 14}
}

func (c checker) check(r io.Reader) (*Summary, error) {
	src, err := rereadable(r)
	if err != nil {
		return nil, err
	}
	defer src.close()
	s := c.newScan(false)
	if err := s.run(src.first); err != nil {
		return nil, err
	}
	err = s.duplicates(func(visit func(*Row) bool) error {
		in, err := src.again()
		if err != nil {
			return err
		}
		rr, err := newRowReader(in)
		if err != nil {
			return err
		}
		var row Row
		for {
			err := rr.next(&row)
			if err == io.EOF {
				return nil
			}
			if le := (*LineError)(nil); errors.As(err, &le) {
				continue // reported by the first pass
			}
			if err != nil {
				return err
			}
			if row.validate() == nil && !visit(&row) {
				return nil
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading the inventory again to confirm duplicates: %w", err)
	}
	if err := s.err(); err != nil {
		return nil, err
	}
	return &Summary{Mailboxes: s.mailboxes, Orgs: s.orgs}, nil
}

// scan is a pass over an inventory that keeps, besides the organizations,
// a hash of each address (and each row when keep is set).
type scan struct {
	checker
	keep     bool
	orgs     []OrgCount
	waveLine []int   // per organization: the line that gave its wave
	rows     [][]Row // per organization, when keep
	byCode   map[string]int
	// hashes holds two 32-bit hashes per valid row (its address, its target
	// user), in file order: 8 bytes a row, so 2 million rows stay within
	// the memory bound. A 32-bit hash repeats by chance about a thousand
	// times in 4 million keys; the extra pass confirms each candidate.
	hashes    []uint32
	errs      []*LineError
	mailboxes int
	lower     []byte
}

func (c checker) newScan(keep bool) *scan {
	return &scan{checker: c, keep: keep, byCode: map[string]int{}}
}

// run reads r once. Problems with rows go to s.errs; the error returned is
// a header or read error that ends the pass.
func (s *scan) run(r io.Reader) error {
	rr, err := newRowReader(r)
	if err != nil {
		return err
	}
	var row Row
	for len(s.errs) < maxErrors {
		err := rr.next(&row)
		if err == io.EOF {
			break
		}
		if le := (*LineError)(nil); errors.As(err, &le) {
			s.errs = append(s.errs, le)
			continue
		}
		if err != nil {
			return err
		}
		s.mailboxes++
		bad := row.validate()
		if bad != nil {
			s.errs = append(s.errs, bad)
		} else {
			s.hashes = append(s.hashes, uint32(s.hash(s.key(keyMailbox, row.Mailbox))), uint32(s.hash(s.key(keyTargetUser, row.TargetUser))))
		}
		if bad == nil || bad.Field != "organization" {
			s.organization(&row)
		}
	}
	if len(s.errs) == 0 && s.mailboxes == 0 {
		return errors.New("no mailbox rows after the header")
	}
	return nil
}

func (s *scan) organization(row *Row) {
	i, ok := s.byCode[row.Organization]
	if !ok {
		i = len(s.orgs)
		code := strings.Clone(row.Organization) // not the whole line's string
		s.byCode[code] = i
		s.orgs = append(s.orgs, OrgCount{Code: code, FirstLine: row.Line})
		s.waveLine = append(s.waveLine, 0)
		if s.keep {
			s.rows = append(s.rows, nil)
		}
	}
	o := &s.orgs[i]
	o.Mailboxes++
	switch {
	case row.Wave == "":
	case o.Wave == "":
		o.Wave, s.waveLine[i] = strings.Clone(row.Wave), row.Line
	case row.Wave != o.Wave:
		s.errs = append(s.errs, &LineError{Line: row.Line, Field: "wave", Mailbox: row.Mailbox, Other: s.waveLine[i],
			Err: fmt.Errorf("organization %s: wave %q conflicts with wave %q on line %d", row.Organization, row.Wave, o.Wave, s.waveLine[i])})
	}
	if o.Name == "" {
		o.Name = strings.Clone(row.OrgName)
	}
	if s.keep {
		s.rows[i] = append(s.rows[i], *row)
	}
}

// Key kinds: a mailbox address, and a target user, are checked for
// repeats each in its own space (one target mailbox, one writer).
const (
	keyMailbox    = 'm'
	keyTargetUser = 't'
)

// key returns kind then the address in lower case, in a buffer reused by
// the next call.
func (s *scan) key(kind byte, addr string) []byte {
	s.lower = append(s.lower[:0], kind)
	for i := 0; i < len(addr); i++ {
		if addr[i] >= utf8.RuneSelf {
			s.lower = append(s.lower, strings.ToLower(addr)...)
			return s.lower
		}
	}
	s.lower = append(s.lower, addr...)
	for i, c := range s.lower[1:] {
		if 'A' <= c && c <= 'Z' {
			s.lower[i+1] = c + 'a' - 'A'
		}
	}
	return s.lower
}

// duplicates reports, within the error budget, the rows whose address an
// earlier row already has. Only hashes that repeat are candidates; again must
// show every valid row, in file order, to visit, stopping if visit returns
// false. It is called once per batch of candidates, usually once, and not at
// all when no hash repeats.
func (s *scan) duplicates(again func(visit func(*Row) bool) error) error {
	if len(s.errs) >= maxErrors {
		return nil
	}
	cands := repeated(s.hashes)
	type first struct {
		addr string
		line int
	}
	for start := 0; start < len(cands) && len(s.errs) < maxErrors; start += s.batch {
		batch := make(map[uint32][]first)
		for _, h := range cands[start:min(start+s.batch, len(cands))] {
			batch[h] = nil
		}
		err := again(func(row *Row) bool {
			for _, kind := range []byte{keyMailbox, keyTargetUser} {
				value := row.Mailbox
				if kind == keyTargetUser {
					value = row.TargetUser
				}
				k := s.key(kind, value)
				h := uint32(s.hash(k))
				seen, ok := batch[h]
				if !ok {
					continue
				}
				dup := false
				for _, f := range seen {
					if f.addr != string(k) {
						continue
					}
					dup = true
					e := &LineError{Line: row.Line, Field: "mailbox", Mailbox: row.Mailbox, Other: f.line,
						Err: fmt.Errorf("mailbox %s is listed twice (first on line %d)", row.Mailbox, f.line)}
					if kind == keyTargetUser {
						e.Field = "target_user"
						e.Err = fmt.Errorf("target user %s is listed twice (first on line %d): one target mailbox gets one writer, so list it once", row.TargetUser, f.line)
					}
					s.errs = append(s.errs, e)
					if len(s.errs) >= maxErrors {
						return false
					}
					break
				}
				if dup {
					break // a repeated row's target user repeats too: say it once
				}
				batch[h] = append(seen, first{string(k), row.Line})
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// repeated sorts hashes and returns, in their place, each value that occurs
// more than once.
func repeated(hashes []uint32) []uint32 {
	slices.Sort(hashes)
	out := hashes[:0]
	for i := 0; i < len(hashes); {
		j := i + 1
		for j < len(hashes) && hashes[j] == hashes[i] {
			j++
		}
		if j-i > 1 {
			out = append(out, hashes[i])
		}
		i = j
	}
	return out
}

// err joins the problems found, in line order.
func (s *scan) err() error {
	if len(s.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(s.errs, func(a, b *LineError) int { return a.Line - b.Line })
	var errs []error
	for _, e := range s.errs[:min(len(s.errs), maxErrors)] {
		errs = append(errs, e)
	}
	if len(s.errs) >= maxErrors {
		errs = append(errs, fmt.Errorf("stopped after %d problems", maxErrors))
	}
	return errors.Join(errs...)
}

// source is an input that can be read twice.
type source struct {
	first io.Reader                 // for the first pass
	again func() (io.Reader, error) // from the start again
	close func()
}

// rereadable makes r readable a second time: from where it started if it
// can seek, otherwise from a temporary copy made as it is first read.
func rereadable(r io.Reader) (*source, error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		if start, err := rs.Seek(0, io.SeekCurrent); err == nil {
			return &source{first: r, close: func() {},
				again: func() (io.Reader, error) {
					_, err := rs.Seek(start, io.SeekStart)
					return rs, err
				}}, nil
		}
	}
	f, err := os.CreateTemp("", "inventory-*.csv")
	if err != nil {
		return nil, fmt.Errorf("a stream is copied to a temporary file to confirm duplicates: %w", err)
	}
	t := &tee{r: r, w: bufio.NewWriterSize(f, 256<<10)}
	return &source{first: t,
		again: func() (io.Reader, error) {
			if err := t.w.Flush(); err != nil {
				return nil, err
			}
			_, err := f.Seek(0, io.SeekStart)
			return f, err
		},
		close: func() {
			f.Close()
			os.Remove(f.Name())
		}}, nil
}

// tee copies what is read from r to w; a failed copy fails the read.
type tee struct {
	r io.Reader
	w *bufio.Writer
}

func (t *tee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			return n, fmt.Errorf("copying the inventory to a temporary file: %w", werr)
		}
	}
	return n, err
}
