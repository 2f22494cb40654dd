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
	Field   string // the column at fault, or "" when the row is not CSV
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

// rowReader reads the data rows of an inventory, after its header.
type rowReader struct {
	cr   *csv.Reader
	cols [nFields]int // record index of each field, -1 when the column is absent
}

func newRowReader(r io.Reader) (*rowReader, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, &LineError{Line: 1, Err: fmt.Errorf("reading header: %w", err)}
	}
	names := append(append([]string{}, Required...), Optional...)
	rr := &rowReader{cr: cr}
	for i := range rr.cols {
		rr.cols[i] = -1
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		f := slices.Index(names, h)
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
// after the last, a *LineError for a line that is not CSV (reading can go
// on), and any other error when the input cannot be read.
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
		get := func(f int) string {
			if i := rr.cols[f]; i >= 0 && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		*row = Row{Line: line, Organization: get(fOrganization), Mailbox: get(fMailbox),
			SourceUser: get(fSourceUser), TargetUser: get(fTargetUser), Wave: get(fWave), OrgName: get(fOrgName)}
		return nil
	}
}

func (r *Row) validate() *LineError {
	bad := func(field, format string, args ...any) *LineError {
		return &LineError{Line: r.Line, Field: field, Mailbox: r.Mailbox, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case r.Organization == "":
		return bad("organization", "field organization is empty")
	case strings.ContainsAny(r.Organization, "/ \t"):
		return bad("organization", "field organization %q must not contain '/' or spaces", r.Organization)
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
