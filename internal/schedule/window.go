package schedule

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Window is a weekly set of cutover hours in a time zone, such as
// "Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London". The zero Window
// is "no window": it contains no instant.
//
// Each clause opens the window on each listed day at its start time and
// closes it at its end time, the next day when the end is not after the
// start. Openings that overlap or touch form one window, so the example's
// weekend is one window from Saturday 00:00 to Monday 00:00.
//
// Local times map to instants this way: a time that happens twice (the hour
// repeated when clocks go back) is its first occurrence; a time that never
// happens (the hour skipped when clocks go forward) is the instant the clocks
// change, the first valid instant after it. So a window opening at 01:30 on
// the day London skips 01:00-02:00 opens at 02:00 BST, and a window from
// 00:30 to 02:30 lasts one hour that day and three hours on the day the
// clocks go back.
//
// Window values are immutable; copy them freely.
type Window struct {
	spans  []span // canonical order (see newWindow)
	loc    *time.Location
	byDay  [7][]span // spans opening on each time.Weekday, by start then end
	always bool      // every minute of the week is covered
}

// span is one clause: a set of weekdays and minutes from the start day's
// midnight. start < end < start+1440, so end > 1440 is an overnight clause.
type span struct {
	days       uint8 // bit i: time.Weekday(i) listed
	start, end int
}

const minutesPerDay = 24 * 60

// WindowError reports a window spec that does not parse. Token is the part
// of the spec at fault (empty when the spec as a whole is).
type WindowError struct {
	Spec  string
	Token string
	Msg   string // what is wrong, naming Token
	Err   error  // the cause, when there is one (time zone loading)
}

// Error names the spec and says what is wrong with it.
func (e *WindowError) Error() string { return "window " + strconv.Quote(e.Spec) + ": " + e.Msg }

// Unwrap returns the cause.
func (e *WindowError) Unwrap() error { return e.Err }

// ParseWindow reads a window spec:
//
//	spec   = clause { ";" clause } [ zone ]
//	clause = days range
//	days   = item { "," item }           Mon,Wed  Mon-Fri  Fri-Mon (wraps)
//	item   = day | day "-" day
//	day    = Mon | Tue | Wed | Thu | Fri | Sat | Sun   (any case; full names too)
//	range  = HH:MM "-" HH:MM             24:00 only as an end; an end at or
//	                                     before the start is on the next day
//	zone   = an IANA name such as Europe/London; UTC when absent
//
// Tokens are separated by spaces; days and ranges contain none. The zone
// follows the last clause and applies to all of them. The zone is loaded
// with time.LoadLocation; ParseWindowIn takes an already loaded one.
func ParseWindow(spec string) (Window, error) { return parseWindow(spec, nil) }

// ParseWindowIn is ParseWindow in a location the caller already holds, so
// no time zone data is read. A zone named in spec must be loc's name.
func ParseWindowIn(spec string, loc *time.Location) (Window, error) {
	if loc == nil {
		return Window{}, &WindowError{Spec: spec, Msg: "no location"}
	}
	return parseWindow(spec, loc)
}

// MustParseWindow is ParseWindow for constants; it panics on a bad spec.
func MustParseWindow(spec string) Window {
	w, err := ParseWindow(spec)
	if err != nil {
		panic(err)
	}
	return w
}

func parseWindow(spec string, loc *time.Location) (Window, error) {
	fail := func(token, format string, args ...any) (Window, error) {
		return Window{}, &WindowError{Spec: spec, Token: token, Msg: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(spec) == "" {
		return fail("", "empty spec")
	}
	clauses := strings.Split(spec, ";")
	var spans []span
	zone := ""
	for i, c := range clauses {
		f := strings.Fields(c)
		last := i == len(clauses)-1
		switch {
		case len(f) == 0:
			return fail("", "clause %d is empty", i+1)
		case strings.Contains(f[0], ":"):
			return fail(f[0], "clause %q has no days (want DAYS HH:MM-HH:MM)", strings.Join(f, " "))
		case len(f) == 1:
			return fail(f[0], "clause %q has no time range (want DAYS HH:MM-HH:MM)", f[0])
		case len(f) == 3 && !last:
			return fail(f[2], "unexpected %q after %q (only the last clause may name a time zone)", f[2], f[1])
		case len(f) > 3:
			return fail(f[3], "unexpected %q after time zone %q", f[3], f[2])
		}
		days, bad, ok := parseDays(f[0])
		switch {
		case !ok && bad == "":
			return fail(f[0], "missing day in %q", f[0])
		case !ok:
			return fail(bad, "bad day %q in %q (want Mon, Tue, Wed, Thu, Fri, Sat or Sun)", bad, f[0])
		}
		start, end, msg := parseRange(f[1])
		if msg != "" {
			return fail(f[1], "%s", msg)
		}
		spans = append(spans, span{days: days, start: start, end: end})
		if len(f) == 3 {
			zone = f[2]
		}
	}
	switch {
	case loc != nil && zone != "" && zone != loc.String():
		return fail(zone, "time zone %q differs from location %q", zone, loc.String())
	case loc != nil:
	case zone == "":
		loc = time.UTC
	case zone == "Local":
		return fail(zone, "time zone %q is not allowed (name the zone, e.g. Europe/London)", zone)
	default:
		l, err := time.LoadLocation(zone)
		if err != nil {
			return Window{}, &WindowError{Spec: spec, Token: zone, Msg: fmt.Sprintf("unknown time zone %q", zone), Err: err}
		}
		loc = l
	}
	return newWindow(spans, loc), nil
}

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// mondayFirst lists time.Weekday values in the order a spec reads them.
var mondayFirst = [7]time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

func parseDay(s string) (time.Weekday, bool) {
	for i, n := range dayNames {
		full := time.Weekday(i).String()
		if strings.EqualFold(s, n) || strings.EqualFold(s, full) {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// parseDays returns the set of days or, when !ok, the bad day name.
func parseDays(s string) (days uint8, bad string, ok bool) {
	for _, item := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(item, "-")
		a, ok := parseDay(from)
		if !ok {
			return 0, from, false
		}
		b := a
		if isRange {
			if b, ok = parseDay(to); !ok {
				return 0, to, false
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days |= 1 << d
			if d == b {
				break
			}
		}
	}
	return days, "", true
}

// parseRange reads HH:MM-HH:MM, or says what is wrong with it.
func parseRange(s string) (start, end int, msg string) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Sprintf("bad time range %q (want HH:MM-HH:MM)", s)
	}
	start, ok = parseClock(a)
	if !ok {
		return 0, 0, fmt.Sprintf("bad time %q in %q", a, s)
	}
	if start == minutesPerDay {
		return 0, 0, fmt.Sprintf("bad start %q in %q (24:00 may only end a range)", a, s)
	}
	end, ok = parseClock(b)
	if !ok {
		return 0, 0, fmt.Sprintf("bad time %q in %q", b, s)
	}
	if end == start {
		return 0, 0, fmt.Sprintf("empty time range %q", s)
	}
	if end < start {
		end += minutesPerDay
	}
	return start, end, ""
}

// parseClock reads HH:MM, 00:00 to 24:00, into minutes.
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, m := 0, 0
	for i, c := range []byte(s) {
		if i == 2 {
			continue
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		if i < 2 {
			h = h*10 + int(c-'0')
		} else {
			m = m*10 + int(c-'0')
		}
	}
	if m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, false
	}
	return h*60 + m, true
}

// newWindow puts spans in canonical form: clauses with the same hours share
// one day set, ordered by their first day (Monday first), then start, end.
func newWindow(in []span, loc *time.Location) Window {
	var spans []span
	for _, s := range in {
		i := slices.IndexFunc(spans, func(t span) bool { return t.start == s.start && t.end == s.end })
		if i < 0 {
			spans = append(spans, s)
		} else {
			spans[i].days |= s.days
		}
	}
	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(firstDay(a.days), firstDay(b.days)), cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
	})
	w := Window{spans: spans, loc: loc}
	var covered [7 * minutesPerDay]bool
	for _, s := range spans {
		for d := range 7 {
			if s.days&(1<<d) == 0 {
				continue
			}
			w.byDay[d] = append(w.byDay[d], s)
			for m := s.start; m < s.end; m++ {
				covered[(d*minutesPerDay+m)%len(covered)] = true
			}
		}
	}
	for d := range w.byDay {
		slices.SortFunc(w.byDay[d], func(a, b span) int {
			return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
		})
	}
	w.always = !slices.Contains(covered[:], false)
	return w
}

// firstDay is the position of the first listed day, Monday first.
func firstDay(days uint8) int {
	for i, d := range mondayFirst {
		if days&(1<<d) != 0 {
			return i
		}
	}
	return len(mondayFirst)
}

// String returns the canonical spec, which ParseWindow reads back to an
// equal Window when the location was loaded by name. The zero Window is "".
func (w Window) String() string {
	if w.loc == nil {
		return ""
	}
	var b strings.Builder
	for i, s := range w.spans {
		if i > 0 {
			b.WriteString("; ")
		}
		writeDays(&b, s.days)
		end := s.end
		if end > minutesPerDay {
			end -= minutesPerDay
		}
		fmt.Fprintf(&b, " %02d:%02d-%02d:%02d", s.start/60, s.start%60, end/60, end%60)
	}
	b.WriteString(" ")
	b.WriteString(w.loc.String())
	return b.String()
}

// writeDays writes runs of three or more days as ranges: Mon-Fri,Sun.
func writeDays(b *strings.Builder, days uint8) {
	first := true
	for i := 0; i < len(mondayFirst); {
		if days&(1<<mondayFirst[i]) == 0 {
			i++
			continue
		}
		j := i
		for j+1 < len(mondayFirst) && days&(1<<mondayFirst[j+1]) != 0 {
			j++
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		switch {
		case j-i >= 2:
			b.WriteString(dayNames[mondayFirst[i]] + "-" + dayNames[mondayFirst[j]])
		case j == i:
			b.WriteString(dayNames[mondayFirst[i]])
		default:
			b.WriteString(dayNames[mondayFirst[i]] + "," + dayNames[mondayFirst[j]])
		}
		i = j + 1
	}
}

// IsZero reports whether w is the zero Window, no window at all.
func (w Window) IsZero() bool { return w.loc == nil }

// Location returns the window's time zone (nil for the zero Window).
func (w Window) Location() *time.Location { return w.loc }

// Equal reports whether w and v have the same canonical clauses and zone.
func (w Window) Equal(v Window) bool {
	if w.loc == nil || v.loc == nil {
		return w.loc == v.loc
	}
	return w.loc.String() == v.loc.String() && slices.Equal(w.spans, v.spans)
}

// OpensOn reports whether a clause opens the window on date d (read as a
// date in the window's zone) and when the first such opening starts. A
// clause whose hours vanish that day in a clock change does not open it.
func (w Window) OpensOn(d Date) (time.Time, bool) {
	if w.loc == nil {
		return time.Time{}, false
	}
	day := d.day()
	for _, s := range w.byDay[weekdayOf(day)] {
		if start, end := w.at(day, s.start), w.at(day, s.end); start.Before(end) {
			return start, true
		}
	}
	return time.Time{}, false
}

// Contains reports whether the window is open at t.
func (w Window) Contains(t time.Time) bool {
	if w.loc == nil {
		return false
	}
	if w.always {
		return true
	}
	today := DateOf(t.In(w.loc)).day()
	// An opening that contains t started at most a day before t's date, or
	// the next day when that midnight came before t (clocks going back).
	for day := today - 1; day <= today+1; day++ {
		for _, s := range w.byDay[weekdayOf(day)] {
			if start, end := w.at(day, s.start), w.at(day, s.end); !t.Before(start) && t.Before(end) {
				return true
			}
		}
	}
	return false
}

// reach is how many days Next looks either side of t. A week has at least
// one gap unless the window is always open; two weeks cover the one case
// where a clock change fills that gap for a week.
const reach = 16

// Next returns the window that contains t (start <= t < end) or, when the
// window is closed at t, the first one after t. Openings that overlap or
// touch are one window. A window open every minute of the week never
// closes: Next returns t and t plus a week. ok is false for the zero Window.
// The times are in the window's location.
func (w Window) Next(t time.Time) (start, end time.Time, ok bool) {
	if w.loc == nil {
		return time.Time{}, time.Time{}, false
	}
	if w.always {
		t = t.In(w.loc)
		return t, t.Add(7 * 24 * time.Hour), true
	}
	today := DateOf(t.In(w.loc)).day()
	for day := today - reach; day <= today+reach; day++ {
		for _, s := range w.byDay[weekdayOf(day)] {
			a, b := w.at(day, s.start), w.at(day, s.end)
			switch {
			case !a.Before(b): // vanished in a clock change
			case ok && !a.After(end):
				if b.After(end) {
					end = b
				}
			case ok && end.After(t):
				return start, end, true
			default:
				start, end, ok = a, b, true
			}
		}
	}
	if ok && end.After(t) {
		return start, end, true
	}
	return time.Time{}, time.Time{}, false
}

// closes returns when the window that is open at opening (which starts on
// day) closes.
func (w Window) closes(day int64, opening time.Time) time.Time {
	end := opening
	for d := day - 1; d <= day+reach; d++ {
		for _, s := range w.byDay[weekdayOf(d)] {
			a := w.at(d, s.start)
			if a.After(end) {
				return end
			}
			if b := w.at(d, s.end); b.After(end) {
				end = b
			}
		}
	}
	return end
}

// at is the instant of minute m after local midnight of day (m may pass
// into the next day).
func (w Window) at(day int64, m int) time.Time {
	return instant(day*secondsPerDay+int64(m)*60, w.loc)
}

// maxOffset bounds any UTC offset a zone has used (they stay within ±15 h).
const maxOffset = 26 * 60 * 60

// instant maps a wall-clock reading in loc, given as seconds since
// 1970-01-01 00:00 on that clock, to an instant: the first one that reads
// so, or, when the clock skips the reading, the instant it skips at.
// time.Date leaves both choices unspecified.
func instant(wall int64, loc *time.Location) time.Time {
	t := time.Unix(wall-maxOffset, 0).In(loc)
	for {
		_, off := t.Zone()
		from, to := t.ZoneBounds()
		u := wall - int64(off)
		if !from.IsZero() && u < from.Unix() {
			return from.In(loc) // the reading falls in the gap before this zone period
		}
		if to.IsZero() || u < to.Unix() {
			return time.Unix(u, 0).In(loc)
		}
		t = to.In(loc)
	}
}

// MarshalText writes the canonical spec, so a Window travels as a JSON
// string (in a workflow input, say). The zero Window is "".
func (w Window) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText parses a spec with ParseWindow; "" is the zero Window.
func (w *Window) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*w = Window{}
		return nil
	}
	v, err := ParseWindow(string(b))
	if err != nil {
		return err
	}
	*w = v
	return nil
}
