// Package inventorytest generates large, deterministic inventory CSV files
// for tests and benchmarks, without holding them in memory.
//
// The estate looks like NHSmail: most organizations are GP practices,
// pharmacies and dental surgeries with 1–20 mailboxes, one in twenty are
// community services with 50–500, and one in 250 is a trust with about
// 5,000–30,000 (the trusts are scaled so the file has exactly the rows asked
// for). Addresses are first.last<n>@nhs.net, some capitalised; some
// organization names contain commas (quoted fields); some rows after an
// organization's first leave the wave empty. Rows are grouped by
// organization in a shuffled order, except that each trust's second half
// comes after every other row, so an organization's rows are not always
// contiguous.
package inventorytest

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Header is the generated file's first line.
const Header = "organization,mailbox,source_user,target_user,wave,organization_name\n"

// Spec describes a generated inventory.
type Spec struct {
	Rows int // mailbox rows after the header
	Orgs int // organizations (at most Rows)
	// Duplicates lists pairs of lines {a, b}, a < b: the row on line b carries
	// line a's address in capitals instead of its own. Lines count from 1
	// (the header), so the first mailbox is on line 2.
	Duplicates [][2]int
}

// Org is one generated organization, in the order of its first row.
type Org struct {
	Code, Name, Wave string
	Mailboxes        int
	FirstLine        int
}

type segment struct{ org, rows int }

// layout is the organizations and the order their rows are written in.
type layout struct {
	orgs     []Org
	segments []segment
}

// Plan returns the organizations a Spec generates, in file order.
func Plan(s Spec) ([]Org, error) {
	l, err := plan(s)
	if err != nil {
		return nil, err
	}
	return l.orgs, nil
}

func plan(s Spec) (*layout, error) {
	if s.Rows < 1 || s.Orgs < 1 || s.Orgs > s.Rows {
		return nil, fmt.Errorf("inventorytest: need 1 <= orgs (%d) <= rows (%d)", s.Orgs, s.Rows)
	}
	for _, d := range s.Duplicates {
		if d[0] < 2 || d[0] >= d[1] || d[1] > s.Rows+1 {
			return nil, fmt.Errorf("inventorytest: duplicate lines %v outside 2..%d or not increasing", d, s.Rows+1)
		}
	}
	rng := splitmix(0x6d61696c7368)
	trusts := max(1, s.Orgs/250)
	if trusts > s.Orgs {
		trusts = s.Orgs
	}
	medium := min(s.Orgs/20, s.Orgs-trusts)
	kind := make([]byte, s.Orgs) // 't', 'm' or 's'
	size := make([]int, s.Orgs)
	for i := range s.Orgs {
		switch {
		case i < trusts:
			kind[i], size[i] = 't', 5000+rng.intn(25001)
		case i < trusts+medium:
			kind[i], size[i] = 'm', 50+rng.intn(451)
		default:
			// Mostly very small: the smaller of two draws from 1..20.
			kind[i], size[i] = 's', 1+min(rng.intn(20), rng.intn(20))
		}
	}
	fixed := 0
	for i := trusts; i < s.Orgs; i++ {
		fixed += size[i]
	}
	if s.Rows-fixed >= trusts {
		scale(size[:trusts], s.Rows-fixed)
	} else {
		scale(size, s.Rows)
	}
	// Shuffle the organizations into file order.
	order := make([]int, s.Orgs)
	for i := range order {
		order[i] = i
	}
	for i := len(order) - 1; i > 0; i-- {
		j := rng.intn(i + 1)
		order[i], order[j] = order[j], order[i]
	}
	l := &layout{orgs: make([]Org, 0, s.Orgs)}
	var tail []segment
	for _, i := range order {
		n := size[i]
		if kind[i] == 't' && n > 1 {
			tail = append(tail, segment{len(l.orgs), n / 2})
			n -= n / 2
		}
		l.orgs = append(l.orgs, org(i, kind[i], size[i]))
		l.segments = append(l.segments, segment{len(l.orgs) - 1, n})
	}
	l.segments = append(l.segments, tail...)
	line := 2
	for _, sg := range l.segments {
		if o := &l.orgs[sg.org]; o.FirstLine == 0 {
			o.FirstLine = line
		}
		line += sg.rows
	}
	return l, nil
}

// scale sets sizes proportional to their current values, each at least 1,
// summing to total (>= len(sizes)).
func scale(sizes []int, total int) {
	sum := 0
	for _, n := range sizes {
		sum += n
	}
	got := 0
	for i, n := range sizes {
		sizes[i] = max(1, int(int64(n)*int64(total)/int64(sum)))
		got += sizes[i]
	}
	for i := 0; got != total; i = (i + 1) % len(sizes) {
		switch {
		case got < total:
			sizes[i]++
			got++
		case sizes[i] > 1:
			sizes[i]--
			got--
		}
	}
}

var (
	places = []string{"Leeds", "Bradford", "Wakefield", "Sheffield", "Hull", "York", "Harrogate", "Barnsley",
		"Doncaster", "Rotherham", "Calderdale", "Kirklees", "Airedale", "Scarborough", "Whitby", "Selby",
		"Manchester", "Salford", "Bolton", "Wigan", "Oldham", "Stockport", "Tameside", "Bury", "Rochdale",
		"Trafford", "Norwich", "Ipswich", "Exeter", "Truro", "Plymouth", "Bristol"}
	given = []string{"olivia", "amelia", "isla", "ava", "mia", "ivy", "lily", "isabella", "sophia", "grace",
		"noah", "oliver", "george", "arthur", "muhammad", "leo", "harry", "oscar", "archie", "henry",
		"priya", "aisha", "fatima", "chen", "wei", "kofi", "ama", "sean", "siobhan", "rhys", "cerys"}
	family = []string{"smith", "jones", "williams", "taylor", "brown", "davies", "evans", "wilson", "thomas",
		"johnson", "roberts", "robinson", "thompson", "wright", "walker", "white", "edwards", "hughes",
		"green", "hall", "patel", "khan", "ahmed", "singh", "begum", "ali", "hussain", "shah", "okafor",
		"nowak", "obrien", "mcdonald", "macleod"}
)

func org(i int, kind byte, n int) Org {
	p := places[i%len(places)]
	o := Org{Mailboxes: n}
	switch kind {
	case 't':
		o.Code = "R" + base36(i, 3)
		o.Name = p + " Teaching Hospitals NHS Foundation Trust"
		o.Wave = strconv.Itoa(13 + i%4)
	case 'm':
		o.Code = "M" + base36(i, 4)
		o.Name = p + " Community Health Services"
		o.Wave = strconv.Itoa(1 + i%12)
	default:
		o.Code = "Y" + base36(i, 5)
		if i%3 == 0 {
			f := family[i%len(family)]
			o.Name = "Drs " + title(f) + ", " + title(family[(i/7)%len(family)]) + " & Partners"
		} else {
			o.Name = p + " Surgery"
		}
		o.Wave = strconv.Itoa(1 + i%12)
	}
	return o
}

func base36(i, width int) string {
	s := strconv.FormatInt(int64(i), 36)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

func title(s string) string { return string(s[0]-'a'+'A') + s[1:] }

// Reader generates a Spec's CSV as it is read.
type Reader struct {
	l    *layout
	dup  map[int]int // line -> line whose address it repeats
	seg  int         // current segment
	left int         // rows left in it
	row  int         // rows written so far
	buf  []byte
	off  int   // read offset in buf
	pos  int64 // bytes returned so far
}

// NewReader returns a Reader at the start of the file.
func NewReader(s Spec) (*Reader, error) {
	l, err := plan(s)
	if err != nil {
		return nil, err
	}
	r := &Reader{l: l, dup: map[int]int{}, buf: make([]byte, 0, 64<<10)}
	for _, d := range s.Duplicates {
		r.dup[d[1]] = d[0]
	}
	r.rewind()
	return r, nil
}

func (r *Reader) rewind() {
	r.seg, r.left, r.row, r.off, r.pos = 0, r.l.segments[0].rows, 0, 0, 0
	r.buf = append(r.buf[:0], Header...)
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.off == len(r.buf) {
		r.fill()
		if len(r.buf) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	r.pos += int64(n)
	return n, nil
}

// Seek supports what a reader needs to be read again: asking for the current
// offset (0, io.SeekCurrent) and going back to the start (0, io.SeekStart).
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch {
	case offset == 0 && whence == io.SeekCurrent:
		return r.pos, nil
	case offset == 0 && whence == io.SeekStart:
		r.rewind()
		return 0, nil
	}
	return 0, errors.New("inventorytest: Reader seeks only to the start")
}

func (r *Reader) fill() {
	r.buf, r.off = r.buf[:0], 0
	for len(r.buf) < 60<<10 && r.seg < len(r.l.segments) {
		if r.left == 0 {
			r.seg++
			if r.seg < len(r.l.segments) {
				r.left = r.l.segments[r.seg].rows
			}
			continue
		}
		r.buf = r.appendRow(r.buf, &r.l.orgs[r.l.segments[r.seg].org])
		r.left--
		r.row++
	}
}

func (r *Reader) appendRow(b []byte, o *Org) []byte {
	i := r.row
	line := i + 2
	b = append(b, o.Code...)
	b = append(b, ',')
	start := len(b)
	if a, ok := r.dup[line]; ok {
		b = appendAddress(b, a-2)
		for k := start; k < len(b); k++ {
			if c := b[k]; 'a' <= c && c <= 'z' {
				b[k] = c - 'a' + 'A'
			}
		}
	} else {
		b = appendAddress(b, i)
		if i%7 == 3 { // Capitalised, as some directories export them.
			b[start] -= 'a' - 'A'
			dot := start + len(given[i%len(given)]) + 1
			b[dot] -= 'a' - 'A'
		}
	}
	addr := b[start:]
	b = append(b, ",NHS\\"...)
	b = append(b, given[i%len(given)][0])
	b = append(b, family[(i/len(given))%len(family)]...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ',')
	for _, c := range addr {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = append(b, ',')
	if i%9 != 4 || r.left == r.l.segments[r.seg].rows { // a segment's first row gives the wave
		b = append(b, o.Wave...)
	}
	b = append(b, ',')
	if needsQuotes(o.Name) {
		b = append(b, '"')
		b = append(b, o.Name...)
		b = append(b, '"')
	} else {
		b = append(b, o.Name...)
	}
	return append(b, '\n')
}

// appendAddress appends row i's own address, in lower case.
func appendAddress(b []byte, i int) []byte {
	b = append(b, given[i%len(given)]...)
	b = append(b, '.')
	b = append(b, family[(i/len(given))%len(family)]...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, "@nhs.net"...)
}

func needsQuotes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' || s[i] == '"' {
			return true
		}
	}
	return false
}

// Write writes a Spec's CSV to w, returning the bytes written.
func Write(w io.Writer, s Spec) (int64, error) {
	r, err := NewReader(s)
	if err != nil {
		return 0, err
	}
	return io.Copy(w, struct{ io.Reader }{r})
}

// splitmix is a small deterministic generator (SplitMix64), so generated
// files do not change with the Go release.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *splitmix) intn(n int) int { return int(s.next() % uint64(n)) }
