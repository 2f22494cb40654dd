package schedule

import (
	"fmt"
	"time"
)

// Date is a calendar day with no time of day and no location. The zero Date
// means "no date".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the date t falls on in t's own location; convert t with
// In first to take the date somewhere else.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseDate reads a date written YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// MustParseDate is ParseDate for constants; it panics on a bad date.
func MustParseDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// String writes the date as YYYY-MM-DD.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// AddDays returns the date n days after d (before it when n < 0).
func (d Date) AddDays(n int) Date { return dateOfDay(d.day() + int64(n)) }

// Sub returns the number of days from e to d.
func (d Date) Sub(e Date) int { return int(d.day() - e.day()) }

// Before reports whether d comes before e.
func (d Date) Before(e Date) bool { return d.day() < e.day() }

// After reports whether d comes after e.
func (d Date) After(e Date) bool { return d.day() > e.day() }

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday { return weekdayOf(d.day()) }

// In returns the first instant of d in loc: local midnight, or the end of
// the clock change when midnight does not exist there that day.
func (d Date) In(loc *time.Location) time.Time { return instant(d.day()*secondsPerDay, loc) }

// MarshalText writes the date as YYYY-MM-DD, and the zero Date as "", so a
// Date travels as a JSON string.
func (d Date) MarshalText() ([]byte, error) {
	if d.IsZero() {
		return []byte{}, nil
	}
	return []byte(d.String()), nil
}

// UnmarshalText reads what MarshalText writes.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

const secondsPerDay = 24 * 60 * 60

// day numbers dates: days since 1970-01-01, a Thursday.
func (d Date) day() int64 {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / secondsPerDay
}

func dateOfDay(n int64) Date { return DateOf(time.Unix(n*secondsPerDay, 0).UTC()) }

func weekdayOf(day int64) time.Weekday {
	return time.Weekday((day%7 + 11) % 7) // day 0 is a Thursday (4); +7 keeps it positive
}
