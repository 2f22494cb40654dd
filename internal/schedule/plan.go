package schedule

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Org is one organization of the inventory.
type Org struct {
	Code      string
	Wave      string
	Mailboxes int
}

// Calendar says how many mailboxes the campaign may migrate each day.
type Calendar struct {
	// Start is the first day of the campaign: its date in Location.
	Start time.Time
	// Location is where days begin and end; nil means UTC.
	Location *time.Location
	// WeekdayCapacity and WeekendCapacity are mailboxes per day, Monday to
	// Friday and Saturday and Sunday. One of them may be 0, not both.
	WeekdayCapacity int
	WeekendCapacity int
	// Holidays have no capacity.
	Holidays []Date
	// CutoverWindow, when set, limits work to the days on which one of its
	// clauses opens (in its own zone); other days have no capacity.
	CutoverWindow Window
}

// Assignment is an organization's place in the plan.
type Assignment struct {
	Org
	// Day is the day its migration starts.
	Day Date
	// Days is 1, or, for an organization larger than any single day's
	// capacity, the number of consecutive days it takes from Day on.
	Days int
}

// LastDay is the last day the organization uses.
func (a Assignment) LastDay() Date { return a.Day.AddDays(a.Days - 1) }

// Day is one calendar day of the plan.
type Day struct {
	Date     Date
	Capacity int // mailboxes the day may take
	Used     int // mailboxes scheduled on it, including a share of Continuing
	// Closed says why a day that would have capacity has none: "holiday" or
	// "no cutover window".
	Closed string
	// First and Starts select the organizations starting this day:
	// Plan.Orgs[First : First+Starts].
	First, Starts int
	// Continuing names an organization that started on an earlier day and
	// also uses this one.
	Continuing string
	// Opens and Closes bound the cutover window of the day, when the
	// calendar has one: the first opening that day and when that window
	// closes.
	Opens, Closes time.Time
}

// Wave summarizes one wave of the plan.
type Wave struct {
	Name        string
	First, Last Date
	Orgs        int
	Mailboxes   int
}

// Plan is the outcome of PlanCampaign.
type Plan struct {
	// Orgs lists every organization in the order it starts: waves in order,
	// inventory order within a wave. Start days never decrease.
	Orgs []Assignment
	// Schedule lists every calendar day from the calendar's start to the
	// last day used, including days with nothing scheduled.
	Schedule []Day
	// Waves lists the waves in the order they run.
	Waves []Wave
}

// Days returns the number of calendar days the plan spans.
func (p Plan) Days() int { return len(p.Schedule) }

// LastDay returns the last day used (the zero Date for an empty plan).
func (p Plan) LastDay() Date {
	if len(p.Schedule) == 0 {
		return Date{}
	}
	return p.Schedule[len(p.Schedule)-1].Date
}

// Mailboxes returns the number of mailboxes planned.
func (p Plan) Mailboxes() int {
	n := 0
	for _, w := range p.Waves {
		n += w.Mailboxes
	}
	return n
}

// OrgsOn returns the organizations starting on Schedule[i].
func (p Plan) OrgsOn(i int) []Assignment {
	d := p.Schedule[i]
	return p.Orgs[d.First : d.First+d.Starts]
}

// maxPlanDays bounds the plan: a calendar that needs more days than this
// has a mistake in it.
const maxPlanDays = 100 * 366

// PlanCampaign assigns each organization the day its migration starts:
//
//   - Waves run in the order they first appear in orgs. Each wave starts on
//     the day after the previous one ends.
//   - Within a wave, organizations keep inventory order: one never starts
//     before the one listed ahead of it, even if an earlier day has room for
//     it. A day may stay partly or wholly unused while an organization waits
//     for a day big enough (a weekend day, say).
//   - A day never takes more than its capacity.
//   - An organization is never split across days, unless it is larger than
//     the largest capacity of any day. Then it starts on the first day with
//     room from which a run of consecutive days with capacity can hold it,
//     takes what is left of that day and as much of the following days as it
//     needs, and the next organization may use the rest of its last day.
//
// Organizations must have distinct non-empty codes and at least one mailbox.
func PlanCampaign(orgs []Org, cal Calendar) (Plan, error) {
	pl, err := newPlanner(cal)
	if err != nil {
		return Plan{}, err
	}
	// Group by wave, waves in order of first appearance.
	waveOf := make(map[string]int)
	seen := make(map[string]struct{}, len(orgs))
	var names []string
	var members [][]int
	for i, o := range orgs {
		switch {
		case o.Code == "":
			return Plan{}, fmt.Errorf("organization %d of the inventory has no code", i+1)
		case o.Mailboxes <= 0:
			return Plan{}, fmt.Errorf("organization %q: %d mailboxes (want at least 1)", o.Code, o.Mailboxes)
		}
		if _, dup := seen[o.Code]; dup {
			return Plan{}, fmt.Errorf("organization %q is listed twice", o.Code)
		}
		seen[o.Code] = struct{}{}
		if o.Mailboxes > pl.longestRun {
			return Plan{}, fmt.Errorf("organization %q: %d mailboxes do not fit in any run of consecutive working days (at most %d)", o.Code, o.Mailboxes, pl.longestRun)
		}
		w, ok := waveOf[o.Wave]
		if !ok {
			w = len(names)
			waveOf[o.Wave] = w
			names = append(names, o.Wave)
			members = append(members, nil)
		}
		members[w] = append(members[w], i)
	}

	p := Plan{Orgs: make([]Assignment, 0, len(orgs)), Waves: make([]Wave, 0, len(names))}
	cur := 0  // the day scheduling has reached: nothing is placed after it
	end := -1 // the last day used
	for w, idx := range members {
		wave := Wave{Name: names[w]}
		for _, i := range idx {
			o := orgs[i]
			first, last, err := pl.place(cur, o)
			if err != nil {
				return Plan{}, err
			}
			d := &pl.days[first]
			if d.Starts == 0 {
				d.First = len(p.Orgs)
			}
			d.Starts++
			p.Orgs = append(p.Orgs, Assignment{Org: o, Day: d.Date, Days: last - first + 1})
			if wave.Orgs == 0 {
				wave.First = d.Date
			}
			wave.Orgs++
			wave.Mailboxes += o.Mailboxes
			wave.Last = pl.days[last].Date
			cur, end = last, max(end, last)
		}
		p.Waves = append(p.Waves, wave)
		cur++
	}
	p.Schedule = pl.days[:end+1]
	return p, nil
}

// planner holds the days of a plan as they are reached.
type planner struct {
	cal        Calendar
	start      Date
	holidays   map[Date]bool
	capacity   [7]int // by time.Weekday, 0 where the window never opens
	largest    int    // largest capacity of any day
	longestRun int    // most a run of consecutive days holds (huge if unbounded)
	days       []Day
}

func newPlanner(cal Calendar) (*planner, error) {
	switch {
	case cal.Start.IsZero():
		return nil, errors.New("calendar has no start date")
	case cal.WeekdayCapacity < 0 || cal.WeekendCapacity < 0:
		return nil, fmt.Errorf("calendar capacities %d (weekday) and %d (weekend): none may be negative", cal.WeekdayCapacity, cal.WeekendCapacity)
	case cal.WeekdayCapacity == 0 && cal.WeekendCapacity == 0:
		return nil, errors.New("calendar capacities are 0 on weekdays and at weekends: nothing can be planned")
	}
	loc := cal.Location
	if loc == nil {
		loc = time.UTC
	}
	pl := &planner{cal: cal, start: DateOf(cal.Start.In(loc)), holidays: make(map[Date]bool, len(cal.Holidays))}
	for _, h := range cal.Holidays {
		pl.holidays[h.AddDays(0)] = true // normalized, as plan dates are
	}
	for d := range pl.capacity {
		c := cal.WeekdayCapacity
		if time.Weekday(d) == time.Saturday || time.Weekday(d) == time.Sunday {
			c = cal.WeekendCapacity
		}
		if !cal.CutoverWindow.IsZero() && len(cal.CutoverWindow.byDay[d]) == 0 {
			c = 0
		}
		pl.capacity[d] = c
		pl.largest = max(pl.largest, c)
	}
	if pl.largest == 0 {
		return nil, fmt.Errorf("no day has capacity: cutover window %q opens only on days with capacity 0", cal.CutoverWindow)
	}
	// The longest run of days with capacity, going round the week; without
	// a day off in the week, runs are as long as needed.
	pl.longestRun = int(^uint(0) >> 1)
	if slices.Contains(pl.capacity[:], 0) {
		pl.longestRun = 0
		for d := range pl.capacity {
			run := 0
			for e := d; pl.capacity[e%7] > 0; e++ {
				run += pl.capacity[e%7]
			}
			pl.longestRun = max(pl.longestRun, run)
		}
	}
	return pl, nil
}

// day returns day i of the plan, adding days up to it as needed.
func (pl *planner) day(i int) (*Day, error) {
	if i >= maxPlanDays {
		return nil, fmt.Errorf("the plan needs more than %d days", maxPlanDays)
	}
	for len(pl.days) <= i {
		d := Day{Date: pl.start.AddDays(len(pl.days))}
		d.Capacity = pl.capacity[d.Date.Weekday()]
		win := pl.cal.CutoverWindow
		switch {
		case pl.holidays[d.Date]:
			d.Capacity, d.Closed = 0, "holiday"
		case !win.IsZero():
			if open, ok := win.OpensOn(d.Date); ok {
				d.Opens, d.Closes = open, win.closes(d.Date.day(), open)
			} else {
				d.Capacity, d.Closed = 0, "no cutover window"
			}
		}
		pl.days = append(pl.days, d)
	}
	return &pl.days[i], nil
}

// place schedules o on or after day cur and returns the first and last day
// it takes.
func (pl *planner) place(cur int, o Org) (first, last int, err error) {
	n := o.Mailboxes
	if n <= pl.largest {
		for d := cur; ; d++ {
			day, err := pl.day(d)
			if err != nil {
				return 0, 0, fmt.Errorf("organization %q: %w", o.Code, err)
			}
			if day.Capacity-day.Used >= n {
				day.Used += n
				return d, d, nil
			}
		}
	}
	// Larger than any day: find a run of days with capacity that holds it,
	// starting on a day with room. Days after cur are still empty.
	for d := cur; ; d++ {
		sum := 0
		for e := d; ; e++ {
			day, err := pl.day(e)
			if err != nil {
				return 0, 0, fmt.Errorf("organization %q: %w", o.Code, err)
			}
			free := day.Capacity - day.Used
			if free == 0 {
				d = e // the run, if any, broke here: look after it
				break
			}
			if sum += free; sum >= n {
				for i := d; i <= e; i++ {
					take := min(pl.days[i].Capacity-pl.days[i].Used, n)
					pl.days[i].Used += take
					n -= take
					if i > d {
						pl.days[i].Continuing = o.Code
					}
				}
				return d, e, nil
			}
		}
	}
}
