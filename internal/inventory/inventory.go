// Package inventory reads the migration inventory: a CSV file with one
// mailbox per row, grouped into organizations.
package inventory

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"
)

// Required and optional columns.
var (
	Required = []string{"organization", "mailbox", "source_user", "target_user"}
	Optional = []string{"wave", "organization_name"}
)

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
	Code  string
	Name  string
	Wave  string
	Rows  []Row
	first int
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
	inv, _, err := parse(r, true)
	return inv, err
}

// Check validates a file of any size without keeping its rows, returning
// the number of organizations and mailboxes.
func Check(r io.Reader) (orgs, mailboxes int, err error) {
	inv, n, err := parse(r, false)
	if err != nil {
		return 0, 0, err
	}
	return len(inv.Orgs), n, nil
}

func parse(r io.Reader, keep bool) (*Inventory, int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, 0, fmt.Errorf("line 1: reading header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; dup {
			return nil, 0, fmt.Errorf("line 1: column %q appears twice", h)
		}
		known := false
		for _, k := range append(append([]string{}, Required...), Optional...) {
			known = known || k == h
		}
		if !known {
			return nil, 0, fmt.Errorf("line 1: unknown column %q (columns: %s; optional: %s)", h, strings.Join(Required, ","), strings.Join(Optional, ","))
		}
		col[h] = i
	}
	for _, req := range Required {
		if _, ok := col[req]; !ok {
			return nil, 0, fmt.Errorf("line 1: missing column %q (header must include %s)", req, strings.Join(Required, ","))
		}
	}
	get := func(rec []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	inv := &Inventory{}
	byCode := map[string]*Organization{}
	// Addresses are kept as a set to find duplicates across the whole file;
	// at 2.1 M rows that is the one structure that grows with the file.
	seen := make(map[string]struct{})
	var errs []error
	rows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			if len(errs) >= 50 {
				break
			}
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		row := Row{Line: line, Organization: get(rec, "organization"), Mailbox: get(rec, "mailbox"),
			SourceUser: get(rec, "source_user"), TargetUser: get(rec, "target_user"),
			Wave: get(rec, "wave"), OrgName: get(rec, "organization_name")}
		if err := row.validate(); err != nil {
			errs = append(errs, err)
		} else {
			key := strings.ToLower(row.Mailbox)
			if _, dup := seen[key]; dup {
				errs = append(errs, fmt.Errorf("line %d: mailbox %s is listed twice", line, row.Mailbox))
			}
			seen[key] = struct{}{}
		}
		if len(errs) >= 50 {
			break
		}
		rows++
		o := byCode[row.Organization]
		if o == nil {
			o = &Organization{Code: row.Organization, Name: row.OrgName, Wave: row.Wave, first: line}
			byCode[row.Organization] = o
			inv.Orgs = append(inv.Orgs, o)
		} else if row.Wave != "" && o.Wave != "" && row.Wave != o.Wave {
			errs = append(errs, fmt.Errorf("line %d: organization %s: wave %q conflicts with wave %q on line %d", line, row.Organization, row.Wave, o.Wave, o.first))
		}
		if o.Wave == "" {
			o.Wave = row.Wave
		}
		if o.Name == "" {
			o.Name = row.OrgName
		}
		if keep {
			o.Rows = append(o.Rows, row)
		}
	}
	if len(errs) > 0 {
		return nil, 0, errors.Join(errs...)
	}
	if rows == 0 {
		return nil, 0, errors.New("no mailbox rows after the header")
	}
	return inv, rows, nil
}

func (r Row) validate() error {
	switch {
	case r.Organization == "":
		return fmt.Errorf("line %d: field organization is empty", r.Line)
	case strings.ContainsAny(r.Organization, "/ \t"):
		return fmt.Errorf("line %d: field organization %q must not contain '/' or spaces", r.Line, r.Organization)
	case r.Mailbox == "":
		return fmt.Errorf("line %d: field mailbox is empty", r.Line)
	case r.SourceUser == "":
		return fmt.Errorf("line %d: mailbox %s: field source_user is empty", r.Line, r.Mailbox)
	case r.TargetUser == "":
		return fmt.Errorf("line %d: mailbox %s: field target_user is empty", r.Line, r.Mailbox)
	}
	if a, err := mail.ParseAddress(r.Mailbox); err != nil || a.Address != r.Mailbox {
		return fmt.Errorf("line %d: field mailbox %q is not a bare e-mail address", r.Line, r.Mailbox)
	}
	return nil
}
