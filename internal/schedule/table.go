package schedule

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// tableCodes is how many organization codes a table row shows.
const tableCodes = 5

// WriteTable prints the plan as a fixed-width table, one row per day, then
// one line per wave and a summary line:
//
//	date        day  capacity     used   orgs  organizations
//	2025-03-03  Mon     22000        8      8  CH00 CH01 CH02 CH03 CH04 +3 more
//	2025-03-04  Tue         0        0      0  (holiday)
//	2025-03-05  Wed     22000        0      0
//	...
//	2025-03-08  Sat     83000    83000      2  TRUST MEGA
//	2025-03-09  Sun     83000    67010      1  (continues MEGA) GP
//	wave "care"  2025-03-03 .. 2025-03-03  1 days  8 mailboxes  8 organizations
//	wave "trusts"  2025-03-08 .. 2025-03-09  2 days  150010 mailboxes  3 organizations
//	7 days (3 with migrations), 150018 mailboxes, 11 organizations, last day 2025-03-09 Sun
//
// A row lists the organizations starting that day (the first five) after
// the one continuing from an earlier day, if any.
func (p Plan) WriteTable(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-10s  %-3s  %8s  %7s  %5s  %s\n", "date", "day", "capacity", "used", "orgs", "organizations")
	busy := 0
	for i, d := range p.Schedule {
		if d.Used > 0 {
			busy++
		}
		var notes []string
		if d.Continuing != "" {
			notes = append(notes, "(continues "+d.Continuing+")")
		}
		for _, a := range p.OrgsOn(i)[:min(d.Starts, tableCodes)] {
			notes = append(notes, a.Code)
		}
		if d.Starts > tableCodes {
			notes = append(notes, fmt.Sprintf("+%d more", d.Starts-tableCodes))
		}
		if d.Closed != "" {
			notes = append(notes, "("+d.Closed+")")
		}
		line := fmt.Sprintf("%-10s  %-3.3s  %8d  %7d  %5d  %s", d.Date, d.Date.Weekday(), d.Capacity, d.Used, d.Starts, strings.Join(notes, " "))
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteString("\n")
	}
	for _, v := range p.Waves {
		fmt.Fprintf(&b, "wave %q  %s .. %s  %d days  %d mailboxes  %d organizations\n",
			v.Name, v.First, v.Last, v.Last.Sub(v.First)+1, v.Mailboxes, v.Orgs)
	}
	last := "none"
	if d := p.LastDay(); !d.IsZero() {
		last = fmt.Sprintf("%s %.3s", d, d.Weekday())
	}
	fmt.Fprintf(&b, "%d days (%d with migrations), %d mailboxes, %d organizations, last day %s\n",
		p.Days(), busy, p.Mailboxes(), len(p.Orgs), last)
	_, err := w.Write(b.Bytes())
	return err
}
