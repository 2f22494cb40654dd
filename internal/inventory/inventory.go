// Package inventory reads the migration inventory: a CSV file with one
// mailbox per row, grouped into organizations.
//
// Parse and Load keep every row (the starter needs them). Check and CheckFile
// validate a file of any size in bounded memory and report per-organization
// counts; they find the same problems as Parse.
package inventory

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Required and optional columns.
var (
	Required = []string{"organization", "mailbox", "source_user", "target_user"}
	Optional = []string{"wave", "organization_name"}
)

// maxErrors is how many problems one read reports before it stops.
const maxErrors = 50

// Row is one mailbox.
type Row struct {
	Line         int
	Organization string
	Mailbox      string
	SourceUser   string
	TargetUser   string
	Wave         string
	OrgName      string
}

// Organization groups rows in file order.
type Organization struct {
	Code      string
	Name      string
	Wave      string
	FirstLine int
	Rows      []Row
}

// Inventory is a parsed file.
type Inventory struct {
	Orgs []*Organization
}

// Mailboxes counts every row.
func (inv *Inventory) Mailboxes() int {
	n := 0
	for _, o := range inv.Orgs {
		n += len(o.Rows)
	}
	return n
}

// A LineError is one problem with the inventory. Errors from Parse, Load,
// Check and CheckFile join one or more of them (errors.As finds the first).
type LineError struct {
	Line    int    // line of the file; the header is line 1
	Field   string // the column at fault, or "" when the row as a whole is (not CSV, wrong number of fields)
	Mailbox string // the row's mailbox when it has one
	Other   int    // the other line involved (duplicate, wave conflict), or 0
	Err     error  // what is wrong
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// Load reads a file.
func Load(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	inv, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return inv, nil
}

// Parse reads CSV, reporting every bad row (up to 50) with its line and field.
func Parse(r io.Reader) (*Inventory, error) {
	return newChecker().parse(r)
}

func (c checker) parse(r io.Reader) (*Inventory, error) {
	s := c.newScan(true)
	if err := s.run(r); err != nil {
		return nil, err
	}
	err := s.duplicates(func(visit func(*Row) bool) error {
		var all []*Row
		for _, rows := range s.rows {
			for i := range rows {
				all = append(all, &rows[i])
			}
		}
		slices.SortFunc(all, func(a, b *Row) int { return a.Line - b.Line })
		for _, row := range all {
			if row.validate() == nil && !visit(row) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.err(); err != nil {
		return nil, err
	}
	inv := &Inventory{Orgs: make([]*Organization, len(s.orgs))}
	for i, o := range s.orgs {
		inv.Orgs[i] = &Organization{Code: o.Code, Name: o.Name, Wave: o.Wave, FirstLine: o.FirstLine, Rows: s.rows[i]}
	}
	return inv, nil
}

// Fields of a row, in the order of Required then Optional; rowReader.cols
// indexes them.
const (
	fOrganization = iota
	fMailbox
	fSourceUser
	fTargetUser
	fWave
	fOrgName
	nFields
)

// fieldNames are the columns, indexed like rowReader.cols.
var fieldNames = [nFields]string{"organization", "mailbox", "source_user", "target_user", "wave", "organization_name"}

// Field lengths, in bytes of UTF-8 after leading and trailing white space
// is trimmed. Every value ends up in a workflow input, a workflow id or a
// search attribute, so none may be large enough to matter there.
const (
	// MaxAddressBytes bounds mailbox, source_user and target_user (a login
	// is often the address itself): RFC 5321 allows a local part of 64
	// octets and a domain of 255, so no deliverable address is longer than
	// 64+1+255 = 320.
	MaxAddressBytes = 320
	// MaxNameBytes bounds organization, wave and organization_name. A code
	// is part of a workflow id ("org/<code>", well under Temporal's default
	// limit of 1,000 for an id; runs started before opaque Mailbox ids also
	// had "mailbox/<code>/<address>", at most 8+256+1+320 = 585 bytes) and
	// a code or wave is a Keyword search attribute; 256 bytes is far more
	// than any real code, wave label or organization name needs.
	MaxNameBytes = 256
)

// maxFieldBytes is the limit of each field, indexed like fieldNames. A
// mailbox's three values are at most 960 bytes, so the inline list of an
// organization of 1,000 mailboxes (the starter's --inline-max) is about
// 1 MB, under Temporal's 2 MB payload limit.
var maxFieldBytes = [nFields]int{MaxNameBytes, MaxAddressBytes, MaxAddressBytes, MaxAddressBytes, MaxNameBytes, MaxNameBytes}

// rowReader reads the data rows of an inventory, after its header.
type rowReader struct {
	cr      *csv.Reader
	cols    [nFields]int // record index of each field, -1 when the column is absent
	nHeader int          // fields in the header: every row must have as many
}

func newRowReader(r io.Reader) (*rowReader, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, &LineError{Line: 1, Err: fmt.Errorf("reading header: %w", err)}
	}
	rr := &rowReader{cr: cr, nHeader: len(header)}
	for i := range rr.cols {
		rr.cols[i] = -1
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		f := slices.Index(fieldNames[:], h)
		switch {
		case f < 0:
			return nil, &LineError{Line: 1, Field: h, Err: fmt.Errorf("unknown column %q (columns: %s; optional: %s)", h, strings.Join(Required, ","), strings.Join(Optional, ","))}
		case rr.cols[f] >= 0:
			return nil, &LineError{Line: 1, Field: h, Err: fmt.Errorf("column %q appears twice", h)}
		}
		rr.cols[f] = i
	}
	for f, req := range Required {
		if rr.cols[f] < 0 {
			return nil, &LineError{Line: 1, Field: req, Err: fmt.Errorf("missing column %q (header must include %s)", req, strings.Join(Required, ","))}
		}
	}
	return rr, nil
}

// next reads the next row that is not blank into row. It returns io.EOF
// after the last, a *LineError for a row that is unusable as a whole (not
// CSV, a number of fields other than the header's, a field too long, not
// UTF-8 or with a control character; reading can go on), and any other
// error when the input cannot be read. Rows it refuses are neither counted
// nor grouped, by Parse and Check alike.
func (rr *rowReader) next(row *Row) error {
	for {
		rec, err := rr.cr.Read()
		if err == io.EOF {
			return io.EOF
		}
		if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
			return &LineError{Line: pe.StartLine, Err: err}
		}
		if err != nil {
			return fmt.Errorf("reading the inventory: %w", err)
		}
		line, _ := rr.cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != rr.nHeader {
			return &LineError{Line: line, Err: fmt.Errorf("the row has %d fields, the header has %d", len(rec), rr.nHeader)}
		}
		get := func(f int) string {
			if i := rr.cols[f]; i >= 0 {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		*row = Row{Line: line, Organization: get(fOrganization), Mailbox: get(fMailbox),
			SourceUser: get(fSourceUser), TargetUser: get(fTargetUser), Wave: get(fWave), OrgName: get(fOrgName)}
		return row.checkFields()
	}
}

// checkFields refuses a row with a field over its length limit, not valid
// UTF-8 (nothing downstream may turn a Latin-1 byte into U+FFFD, as JSON
// encoding would) or holding a control character: C0 (U+0000-U+001F, tab
// and line breaks included), DEL (U+007F) or C1 (U+0080-U+009F). It
// returns nil, without allocating, for a good row.
func (r *Row) checkFields() error {
	vals := [nFields]string{r.Organization, r.Mailbox, r.SourceUser, r.TargetUser, r.Wave, r.OrgName}
	for f, v := range vals {
		p := fieldProblem(v, maxFieldBytes[f])
		if p.kind == fieldOK {
			continue
		}
		le := &LineError{Line: r.Line, Field: fieldNames[f]}
		if fieldProblem(r.Mailbox, MaxAddressBytes).kind == fieldOK {
			le.Mailbox = strings.Clone(r.Mailbox) // not the whole line, however long
		}
		switch p.kind {
		case fieldTooLong:
			le.Err = fmt.Errorf("field %s is %d bytes long, over the limit of %d bytes", fieldNames[f], len(v), maxFieldBytes[f])
		case fieldNotUTF8:
			le.Err = fmt.Errorf("field %s is not valid UTF-8 (byte 0x%02X at byte %d of the field); save the inventory as UTF-8", fieldNames[f], v[p.at], p.at+1)
		case fieldControl:
			le.Err = fmt.Errorf("field %s has the control character %U at byte %d of the field", fieldNames[f], p.r, p.at+1)
		}
		return le
	}
	return nil
}

type fieldKind uint8

const (
	fieldOK fieldKind = iota
	fieldTooLong
	fieldNotUTF8
	fieldControl
)

// A problem is what fieldProblem finds: its kind, the byte offset in the
// field and, for a control character, the character.
type problem struct {
	kind fieldKind
	at   int
	r    rune
}

func fieldProblem(v string, limit int) problem {
	if len(v) > limit {
		return problem{kind: fieldTooLong}
	}
	for i := 0; i < len(v); {
		c := v[i]
		if c-' ' <= '~'-' ' { // printable ASCII, in one comparison
			i++
			continue
		}
		if c < utf8.RuneSelf {
			return problem{kind: fieldControl, at: i, r: rune(c)}
		}
		r, n := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return problem{kind: fieldNotUTF8, at: i}
		case r <= 0x9f:
			return problem{kind: fieldControl, at: i, r: r}
		}
		i += n
	}
	return problem{}
}

func (r *Row) validate() *LineError {
	bad := func(field, format string, args ...any) *LineError {
		return &LineError{Line: r.Line, Field: field, Mailbox: r.Mailbox, Err: fmt.Errorf(format, args...)}
	}
	c, at := codeProblem(r.Organization)
	switch {
	case r.Organization == "":
		return bad("organization", "field organization is empty")
	case at >= 0:
		return bad("organization", "field organization %q has %q (%U) at byte %d: a code is part of workflow ids, so '/', white space and invisible characters are not allowed", r.Organization, c, c, at+1)
	case r.Mailbox == "":
		return bad("mailbox", "field mailbox is empty")
	case r.SourceUser == "":
		return bad("source_user", "mailbox %s: field source_user is empty", r.Mailbox)
	case r.TargetUser == "":
		return bad("target_user", "mailbox %s: field target_user is empty", r.Mailbox)
	case !bareAddress(r.Mailbox):
		return bad("mailbox", "field mailbox %q is not a bare e-mail address", r.Mailbox)
	}
	return nil
}

// codeProblem returns the first character an organization code may not
// have and its byte offset, or -1. A code, already valid UTF-8 without
// control characters, may use only graphic characters other than '/' and
// space: letters, marks, digits, punctuation and symbols. White space of
// any kind and invisible format characters (zero-width space, bidi
// controls, byte order mark) are refused: they would make workflow ids
// ("org/<code>") that look alike but differ, or that cannot be typed.
func codeProblem(code string) (rune, int) {
	for i := 0; i < len(code); {
		c := code[i]
		if c-'!' <= '~'-'!' && c != '/' { // printable ASCII but space and '/'
			i++
			continue
		}
		if c < utf8.RuneSelf {
			return rune(c), i
		}
		r, n := utf8.DecodeRuneInString(code[i:])
		if !unicode.IsPrint(r) {
			return r, i
		}
		i += n
	}
	return 0, -1
}
