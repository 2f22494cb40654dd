package schedule

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// monday is the first day of the test campaigns: Monday 3 March 2025.
var monday = time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)

// starts sums up a plan's start days: code -> "2025-03-03" or
// "2025-03-03+3" for an organization taking 3 days.
func starts(p Plan) map[string]string {
	m := make(map[string]string, len(p.Orgs))
	for _, a := range p.Orgs {
		m[a.Code] = a.Day.String()
		if a.Days > 1 {
			m[a.Code] += fmt.Sprintf("+%d", a.Days)
		}
	}
	return m
}

// used lists the mailboxes used per day, from the start.
func used(p Plan) []int {
	u := make([]int, len(p.Schedule))
	for i, d := range p.Schedule {
		u[i] = d.Used
	}
	return u
}

func mustPlan(t *testing.T, orgs []Org, cal Calendar) Plan {
	t.Helper()
	p, err := PlanCampaign(orgs, cal)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, orgs, p)
	return p
}

func TestPlanCampaign(t *testing.T) {
	cases := []struct {
		name   string
		cal    Calendar
		orgs   []Org
		starts map[string]string
		used   []int
	}{{
		name: "weekend capacity used on Saturday and Sunday",
		cal:  Calendar{Start: monday, WeekdayCapacity: 10, WeekendCapacity: 30},
		orgs: []Org{{"A", "", 10}, {"B", "", 10}, {"C", "", 10}, {"D", "", 10}, {"E", "", 10}, {"F", "", 25}, {"G", "", 5}, {"H", "", 6}},
		starts: map[string]string{"A": "2025-03-03", "B": "2025-03-04", "C": "2025-03-05", "D": "2025-03-06", "E": "2025-03-07",
			"F": "2025-03-08", "G": "2025-03-08", "H": "2025-03-09"},
		used: []int{10, 10, 10, 10, 10, 30, 6},
	}, {
		name:   "a trust of 50,000 waits for the weekend",
		cal:    Calendar{Start: monday, WeekdayCapacity: 22000, WeekendCapacity: 83000},
		orgs:   []Org{{"GP1", "", 20000}, {"TRUST", "", 50000}, {"GP2", "", 10000}, {"GP3", "", 30000}},
		starts: map[string]string{"GP1": "2025-03-03", "TRUST": "2025-03-08", "GP2": "2025-03-08", "GP3": "2025-03-09"},
		used:   []int{20000, 0, 0, 0, 0, 60000, 30000},
	}, {
		name:   "inventory order: a small org does not go back to a day with room",
		cal:    Calendar{Start: monday, WeekdayCapacity: 10, WeekendCapacity: 10},
		orgs:   []Org{{"A", "", 8}, {"B", "", 5}, {"C", "", 2}},
		starts: map[string]string{"A": "2025-03-03", "B": "2025-03-04", "C": "2025-03-04"},
		used:   []int{8, 7},
	}, {
		name:   "an org larger than any day takes consecutive days",
		cal:    Calendar{Start: monday, WeekdayCapacity: 10, WeekendCapacity: 20},
		orgs:   []Org{{"A", "", 7}, {"BIG", "", 45}, {"C", "", 18}, {"D", "", 1}},
		starts: map[string]string{"A": "2025-03-03", "BIG": "2025-03-03+6", "C": "2025-03-08", "D": "2025-03-09"},
		used:   []int{10, 10, 10, 10, 10, 20, 1},
	}, {
		name:   "a run of days broken by the weekend",
		cal:    Calendar{Start: monday, WeekdayCapacity: 10},
		orgs:   []Org{{"A", "", 10}, {"B", "", 10}, {"C", "", 10}, {"BIG", "", 35}, {"D", "", 5}},
		starts: map[string]string{"A": "2025-03-03", "B": "2025-03-04", "C": "2025-03-05", "BIG": "2025-03-10+4", "D": "2025-03-13"},
		used:   []int{10, 10, 10, 0, 0, 0, 0, 10, 10, 10, 10},
	}, {
		name: "holidays are skipped",
		cal: Calendar{Start: monday, WeekdayCapacity: 10,
			Holidays: []Date{MustParseDate("2025-03-04"), MustParseDate("2025-03-07"), MustParseDate("2025-03-11")}},
		orgs: []Org{{"A", "", 10}, {"B", "", 10}, {"C", "", 6}, {"D", "", 4}, {"E", "", 1}, {"BIG", "", 25}},
		// BIG (25) cannot start on Monday the 10th: the holiday on Tuesday ends that run at 9.
		starts: map[string]string{"A": "2025-03-03", "B": "2025-03-05", "C": "2025-03-06", "D": "2025-03-06", "E": "2025-03-10", "BIG": "2025-03-12+3"},
		used:   []int{10, 0, 10, 10, 0, 0, 0, 1, 0, 10, 10, 5},
	}, {
		name: "each wave starts on a new day, in order of first appearance",
		cal:  Calendar{Start: monday, WeekdayCapacity: 10, WeekendCapacity: 10},
		orgs: []Org{{"A", "2", 3}, {"B", "1", 3}, {"C", "2", 3}, {"D", "1", 3}, {"E", "3", 1}, {"F", "3", 15}, {"G", "4", 1}},
		starts: map[string]string{"A": "2025-03-03", "C": "2025-03-03", "B": "2025-03-04", "D": "2025-03-04",
			"E": "2025-03-05", "F": "2025-03-05+2", "G": "2025-03-07"},
		used: []int{6, 6, 10, 6, 1},
	}, {
		name: "a cutover window closes the days it does not list",
		cal: Calendar{Start: monday, WeekdayCapacity: 10, WeekendCapacity: 50,
			CutoverWindow: MustParseWindow("Mon-Fri 18:00-23:00 Europe/London")},
		orgs:   []Org{{"A", "", 10}, {"B", "", 20}, {"C", "", 5}, {"D", "", 30}},
		starts: map[string]string{"A": "2025-03-03", "B": "2025-03-04+2", "C": "2025-03-06", "D": "2025-03-10+3"},
		used:   []int{10, 10, 10, 5, 0, 0, 0, 10, 10, 10},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPlan(t, c.orgs, c.cal)
			if got := starts(p); fmt.Sprint(got) != fmt.Sprint(c.starts) {
				t.Errorf("starts\n got %v\nwant %v", got, c.starts)
			}
			if got := used(p); fmt.Sprint(got) != fmt.Sprint(c.used) {
				t.Errorf("used per day\n got %v\nwant %v", got, c.used)
			}
		})
	}
}

func TestPlanDetails(t *testing.T) {
	p := mustPlan(t, []Org{{"A", "", 7}, {"BIG", "", 45}, {"C", "", 18}},
		Calendar{Start: monday, WeekdayCapacity: 10, WeekendCapacity: 20, Holidays: []Date{MustParseDate("2025-03-10")}})
	for i, want := range []string{"", "BIG", "BIG", "BIG", "BIG", "BIG"} {
		if got := p.Schedule[i].Continuing; got != want {
			t.Errorf("%s continuing %q, want %q", p.Schedule[i].Date, got, want)
		}
	}
	if got := p.OrgsOn(0); len(got) != 2 || got[0].Code != "A" || got[1].Code != "BIG" {
		t.Errorf("orgs on Monday: %v", got)
	}
	if got := p.OrgsOn(5); len(got) != 1 || got[0].Code != "C" || got[0].LastDay() != MustParseDate("2025-03-08") {
		t.Errorf("orgs on Saturday: %v", got)
	}
	if p.Orgs[1].LastDay() != MustParseDate("2025-03-08") {
		t.Errorf("BIG last day %s", p.Orgs[1].LastDay())
	}
	if p.Days() != 6 || p.LastDay() != MustParseDate("2025-03-08") || p.Mailboxes() != 70 {
		t.Errorf("days %d, last day %s, mailboxes %d", p.Days(), p.LastDay(), p.Mailboxes())
	}
	want := []Wave{{Name: "", First: MustParseDate("2025-03-03"), Last: MustParseDate("2025-03-08"), Orgs: 3, Mailboxes: 70}}
	if fmt.Sprint(p.Waves) != fmt.Sprint(want) {
		t.Errorf("waves %v", p.Waves)
	}

	// Waves: first and last day, mailboxes; the holiday shows as closed.
	p = mustPlan(t, []Org{{"A", "north", 5}, {"B", "south", 15}, {"C", "north", 5}, {"D", "south", 1}},
		Calendar{Start: monday, WeekdayCapacity: 10, WeekendCapacity: 10, Holidays: []Date{MustParseDate("2025-03-04")}})
	want = []Wave{
		{Name: "north", First: MustParseDate("2025-03-03"), Last: MustParseDate("2025-03-03"), Orgs: 2, Mailboxes: 10},
		{Name: "south", First: MustParseDate("2025-03-05"), Last: MustParseDate("2025-03-06"), Orgs: 2, Mailboxes: 16},
	}
	if fmt.Sprint(p.Waves) != fmt.Sprint(want) {
		t.Errorf("waves\n got %v\nwant %v", p.Waves, want)
	}
	if d := p.Schedule[1]; d.Closed != "holiday" || d.Capacity != 0 {
		t.Errorf("holiday: %+v", d)
	}

	// Window: the day's window, in the window's zone.
	p = mustPlan(t, []Org{{"A", "", 1}, {"B", "", 10}},
		Calendar{Start: time.Date(2025, 3, 29, 12, 0, 0, 0, time.UTC), WeekdayCapacity: 5, WeekendCapacity: 10,
			CutoverWindow: MustParseWindow("Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London")})
	sat, sun := p.Schedule[0], p.Schedule[1]
	if !sat.Opens.Equal(at("2025-03-29 00:00")) || !sat.Closes.Equal(at("2025-03-30 23:00")) ||
		!sun.Opens.Equal(at("2025-03-30 00:00")) || !sun.Closes.Equal(at("2025-03-30 23:00")) {
		t.Errorf("windows: Sat %s .. %s, Sun %s .. %s", sat.Opens.UTC(), sat.Closes.UTC(), sun.Opens.UTC(), sun.Closes.UTC())
	}
	if sun.Used != 10 || sun.Opens.Location().String() != "Europe/London" {
		t.Errorf("Sunday: %+v", sun)
	}
}

func TestPlanStartDateInLocation(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// 02:00 UTC on Tuesday is still Monday evening in New York.
	p := mustPlan(t, []Org{{"A", "", 1}}, Calendar{Start: at("2025-03-04 02:00"), Location: ny, WeekdayCapacity: 1})
	if p.Orgs[0].Day != MustParseDate("2025-03-03") {
		t.Errorf("start day %s", p.Orgs[0].Day)
	}
}

func TestPlanErrors(t *testing.T) {
	ok := Calendar{Start: monday, WeekdayCapacity: 10, WeekendCapacity: 20}
	cases := []struct {
		orgs []Org
		cal  Calendar
		want string
	}{
		{[]Org{{"A", "", 1}, {"GP1", "", 0}}, ok, `organization "GP1": 0 mailboxes (want at least 1)`},
		{[]Org{{"A", "", 1}, {"GP1", "", -3}}, ok, `organization "GP1": -3 mailboxes (want at least 1)`},
		{[]Org{{"A", "", 1}, {"", "", 3}}, ok, `organization 2 of the inventory has no code`},
		{[]Org{{"A", "1", 1}, {"A", "2", 3}}, ok, `organization "A" is listed twice`},
		{[]Org{{"A", "", 1}}, Calendar{Start: monday}, `calendar capacities are 0 on weekdays and at weekends: nothing can be planned`},
		{[]Org{{"A", "", 1}}, Calendar{Start: monday, WeekdayCapacity: -1, WeekendCapacity: 10}, `calendar capacities -1 (weekday) and 10 (weekend): none may be negative`},
		{[]Org{{"A", "", 1}}, Calendar{WeekdayCapacity: 10}, `calendar has no start date`},
		{[]Org{{"BIG", "", 51}}, Calendar{Start: monday, WeekdayCapacity: 10}, `organization "BIG": 51 mailboxes do not fit in any run of consecutive working days (at most 50)`},
		{[]Org{{"A", "", 1}}, Calendar{Start: monday, WeekdayCapacity: 10, CutoverWindow: MustParseWindow("Sat,Sun 00:00-24:00")},
			`no day has capacity: cutover window "Sat,Sun 00:00-24:00 UTC" opens only on days with capacity 0`},
	}
	for _, c := range cases {
		_, err := PlanCampaign(c.orgs, c.cal)
		if err == nil || err.Error() != c.want {
			t.Errorf("PlanCampaign(%v) error\n got %v\nwant %s", c.orgs, err, c.want)
		}
	}
	// With capacity every day of the week, any size fits eventually.
	p := mustPlan(t, []Org{{"HUGE", "", 1000}}, ok)
	if p.Orgs[0].Days != 78 { // 11 weeks of 90, then 10 on a Monday
		t.Errorf("HUGE takes %d days", p.Orgs[0].Days)
	}
	// No organizations: an empty plan.
	p = mustPlan(t, nil, ok)
	if p.Days() != 0 || !p.LastDay().IsZero() || p.Mailboxes() != 0 {
		t.Errorf("empty plan: %+v", p)
	}
}

func TestWriteTable(t *testing.T) {
	var orgs []Org
	for i := range 8 {
		orgs = append(orgs, Org{fmt.Sprintf("CH%02d", i), "care", 1})
	}
	orgs = append(orgs, Org{"TRUST", "trusts", 50000}, Org{"MEGA", "trusts", 100000}, Org{"GP", "trusts", 10})
	p := mustPlan(t, orgs, Calendar{Start: monday, WeekdayCapacity: 22000, WeekendCapacity: 83000,
		Holidays: []Date{MustParseDate("2025-03-04")}})
	var b strings.Builder
	if err := p.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `date        day  capacity     used   orgs  organizations
2025-03-03  Mon     22000        8      8  CH00 CH01 CH02 CH03 CH04 +3 more
2025-03-04  Tue         0        0      0  (holiday)
2025-03-05  Wed     22000        0      0
2025-03-06  Thu     22000        0      0
2025-03-07  Fri     22000        0      0
2025-03-08  Sat     83000    83000      2  TRUST MEGA
2025-03-09  Sun     83000    67010      1  (continues MEGA) GP
wave "care"  2025-03-03 .. 2025-03-03  1 days  8 mailboxes  8 organizations
wave "trusts"  2025-03-08 .. 2025-03-09  2 days  150010 mailboxes  3 organizations
7 days (3 with migrations), 150018 mailboxes, 11 organizations, last day 2025-03-09 Sun
`
	if b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
}

// checkPlan asserts the planning rules on any plan.
func checkPlan(t *testing.T, orgs []Org, p Plan) {
	t.Helper()
	if len(p.Orgs) != len(orgs) {
		t.Fatalf("%d organizations planned, %d given", len(p.Orgs), len(orgs))
	}
	largest, total := 0, 0
	for i, d := range p.Schedule {
		largest = max(largest, d.Capacity)
		total += d.Used
		if d.Used > d.Capacity {
			t.Errorf("%s: %d used, capacity %d", d.Date, d.Used, d.Capacity)
		}
		if i > 0 && d.Date != p.Schedule[i-1].Date.AddDays(1) {
			t.Errorf("schedule skips from %s to %s", p.Schedule[i-1].Date, d.Date)
		}
		for _, a := range p.OrgsOn(i) {
			if a.Day != d.Date {
				t.Errorf("%s listed on %s", a.Code, d.Date)
			}
		}
	}
	want := 0
	for _, o := range orgs {
		want += o.Mailboxes
	}
	if total != want || p.Mailboxes() != want {
		t.Errorf("%d mailboxes scheduled, %d in waves, %d given", total, p.Mailboxes(), want)
	}
	// Waves in order of first appearance, inventory order within each.
	var waves []string
	byWave := map[string][]string{}
	for _, o := range orgs {
		if _, ok := byWave[o.Wave]; !ok {
			waves = append(waves, o.Wave)
		}
		byWave[o.Wave] = append(byWave[o.Wave], o.Code)
	}
	var order []string
	for _, w := range waves {
		order = append(order, byWave[w]...)
	}
	for i, a := range p.Orgs {
		if a.Code != order[i] {
			t.Fatalf("organization %d is %s, want %s", i, a.Code, order[i])
		}
		if a.Days > 1 && a.Mailboxes <= largest {
			t.Errorf("%s (%d mailboxes) split over %d days, largest day %d", a.Code, a.Mailboxes, a.Days, largest)
		}
		if i > 0 {
			prev := p.Orgs[i-1]
			switch {
			case a.Day.Before(prev.Day):
				t.Errorf("%s starts %s, before %s on %s", a.Code, a.Day, prev.Code, prev.Day)
			case a.Wave != prev.Wave && !a.Day.After(prev.LastDay()):
				t.Errorf("wave %q starts %s, not after wave %q ends %s", a.Wave, a.Day, prev.Wave, prev.LastDay())
			}
		}
	}
	for i, w := range p.Waves {
		if w.Name != waves[i] {
			t.Errorf("wave %d is %q, want %q", i, w.Name, waves[i])
		}
	}
}

// nhsInventory is a synthetic estate at NHSmail scale: 25,000
// organizations, about 2.1 M mailboxes. Most are care homes of 1-3
// mailboxes and GP practices of 5-75; about 65 trusts have 5,000-50,000.
func nhsInventory() []Org {
	r := rand.New(rand.NewPCG(2025, 3))
	orgs := make([]Org, 25000)
	for i := range orgs {
		o := &orgs[i]
		o.Wave = fmt.Sprintf("region-%d", 1+r.IntN(4))
		switch {
		case i%390 == 7:
			o.Code, o.Mailboxes = fmt.Sprintf("TR%05d", i), 5000+r.IntN(45001)
		case i%5 == 0:
			o.Code, o.Mailboxes = fmt.Sprintf("GP%05d", i), 5+r.IntN(71)
		default:
			o.Code, o.Mailboxes = fmt.Sprintf("CH%05d", i), 1+r.IntN(3)
		}
	}
	return orgs
}

func nhsCalendar() Calendar {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	w, err := ParseWindowIn("Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00", london)
	if err != nil {
		panic(err)
	}
	var holidays []Date
	for _, s := range []string{"2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-08-25"} {
		holidays = append(holidays, MustParseDate(s))
	}
	return Calendar{Start: time.Date(2025, 3, 3, 0, 0, 0, 0, london), Location: london,
		WeekdayCapacity: 22000, WeekendCapacity: 83000, Holidays: holidays, CutoverWindow: w}
}

func TestPlanNHSScale(t *testing.T) {
	orgs := nhsInventory()
	total := 0
	for _, o := range orgs {
		total += o.Mailboxes
	}
	if total < 2_000_000 || total > 2_200_000 {
		t.Fatalf("synthetic estate has %d mailboxes, want about 2.1 M", total)
	}
	start := time.Now()
	p := mustPlan(t, orgs, nhsCalendar())
	t.Logf("%d organizations, %d mailboxes: %d days, last %s, planned in %s", len(p.Orgs), p.Mailboxes(), p.Days(), p.LastDay(), time.Since(start))
	// Deterministic: the same input gives the same plan.
	q := mustPlan(t, orgs, nhsCalendar())
	if fmt.Sprint(starts(p)) != fmt.Sprint(starts(q)) || fmt.Sprint(used(p)) != fmt.Sprint(used(q)) {
		t.Error("two runs gave different plans")
	}
}

func BenchmarkPlanNHSScale(b *testing.B) {
	orgs, cal := nhsInventory(), nhsCalendar()
	b.ReportAllocs()
	var p Plan
	for b.Loop() {
		var err error
		if p, err = PlanCampaign(orgs, cal); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(p.Days()), "days")
}
