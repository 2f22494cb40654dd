package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailshift/mailshift/internal/inventory"
	"github.com/mailshift/mailshift/internal/schedule"
	"github.com/mailshift/mailshift/workflows"
)

// planFlags are the calendar flags of plan and campaign.
type planFlags struct {
	start, tz, holidays, window string
	weekday, weekend            int
}

func (pf *planFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&pf.start, "start", "", "first day of the campaign, YYYY-MM-DD (default: tomorrow in --tz)")
	fs.IntVar(&pf.weekday, "weekday-capacity", 22000, "mailboxes per weekday (Monday to Friday)")
	fs.IntVar(&pf.weekend, "weekend-capacity", 83000, "mailboxes per Saturday and per Sunday")
	fs.StringVar(&pf.tz, "tz", "Europe/London", "time zone in which days begin (IANA name)")
	fs.StringVar(&pf.holidays, "holidays", "", "days without migrations: YYYY-MM-DD,YYYY-MM-DD,...")
	fs.StringVar(&pf.window, "window", "", `cutover window; only days on which it opens get work, e.g. "Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London"`)
}

// calendar checks the flags and returns the calendar they describe; the
// start defaults to the day after now in the calendar's zone.
func (pf *planFlags) calendar(now time.Time) (workflows.CampaignCalendar, error) {
	cal := workflows.CampaignCalendar{TimeZone: pf.tz, WeekdayCapacity: pf.weekday, WeekendCapacity: pf.weekend, Window: strings.TrimSpace(pf.window)}
	loc, err := cal.Location()
	if err != nil {
		return cal, fmt.Errorf("--tz: %w", err)
	}
	if pf.weekday < 0 || pf.weekend < 0 {
		return cal, fmt.Errorf("--weekday-capacity %d, --weekend-capacity %d: capacities may not be negative", pf.weekday, pf.weekend)
	}
	if pf.weekday == 0 && pf.weekend == 0 {
		return cal, errors.New("--weekday-capacity and --weekend-capacity are both 0: nothing can be planned")
	}
	if pf.start == "" {
		cal.Start = schedule.DateOf(now.In(loc)).AddDays(1)
	} else if cal.Start, err = schedule.ParseDate(pf.start); err != nil {
		return cal, fmt.Errorf("--start: %w", err)
	}
	for _, h := range strings.Split(pf.holidays, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		d, err := schedule.ParseDate(h)
		if err != nil {
			return cal, fmt.Errorf("--holidays: %w", err)
		}
		cal.Holidays = append(cal.Holidays, d)
	}
	if cal.Window != "" {
		if _, err := schedule.ParseWindow(cal.Window); err != nil {
			return cal, fmt.Errorf("--window: %w", err)
		}
	}
	return cal, nil
}

// describe writes one line about the calendar.
func describeCalendar(w io.Writer, cal workflows.CampaignCalendar) {
	fmt.Fprintf(w, "calendar: from %s %.3s (%s), %d mailboxes per weekday, %d per weekend day",
		cal.Start, cal.Start.Weekday(), cal.TimeZone, cal.WeekdayCapacity, cal.WeekendCapacity)
	if len(cal.Holidays) > 0 {
		days := make([]string, len(cal.Holidays))
		for i, h := range cal.Holidays {
			days[i] = h.String()
		}
		fmt.Fprintf(w, ", holidays %s", strings.Join(days, " "))
	}
	if cal.Window != "" {
		fmt.Fprintf(w, ", window %q", cal.Window)
	}
	fmt.Fprintln(w)
}

// planOrgs plans organizations on a calendar as the Campaign workflow does
// (CampaignInput.Plan).
func planOrgs(cal workflows.CampaignCalendar, orgs []schedule.Org) (schedule.Plan, error) {
	sc, err := cal.Schedule()
	if err != nil {
		return schedule.Plan{}, err
	}
	return schedule.PlanCampaign(orgs, sc)
}

func runPlan(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	invPath := fs.String("inventory", "", "inventory CSV (organization,mailbox,source_user,target_user[,wave,organization_name])")
	var pf planFlags
	pf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *invPath == "":
		return errors.New("plan: --inventory is required")
	case fs.NArg() > 0:
		return fmt.Errorf("plan: unexpected argument %q", fs.Arg(0))
	}
	cal, err := pf.calendar(time.Now())
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	sum, err := inventory.CheckFile(*invPath)
	if err != nil {
		return fmt.Errorf("plan: inventory %w", err)
	}
	orgs := make([]schedule.Org, len(sum.Orgs))
	for i, o := range sum.Orgs {
		orgs[i] = schedule.Org{Code: o.Code, Wave: o.Wave, Mailboxes: o.Mailboxes}
	}
	plan, err := planOrgs(cal, orgs)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	fmt.Printf("inventory %s: %d mailboxes, %d organizations\n", *invPath, sum.Mailboxes, len(sum.Orgs))
	describeCalendar(os.Stdout, cal)
	fmt.Println()
	if err := plan.WriteTable(os.Stdout); err != nil {
		return err
	}
	fmt.Println()
	return writeWaves(os.Stdout, plan)
}

// writeWaves prints one line per wave: its organizations, mailboxes, days,
// its largest organization, how many organizations span several days, and
// how much of the capacity of its working days it uses.
func writeWaves(w io.Writer, plan schedule.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "wave\torganizations\tmailboxes\tfirst day\tlast day\tdays\tworking days\tlargest\tmulti-day\tcapacity used")
	index := map[schedule.Date]int{}
	for i, d := range plan.Schedule {
		index[d.Date] = i
	}
	next := 0 // plan.Orgs is in wave order
	for _, v := range plan.Waves {
		largest, multi := schedule.Assignment{}, 0
		for ; next < len(plan.Orgs) && plan.Orgs[next].Wave == v.Name; next++ {
			a := plan.Orgs[next]
			if a.Mailboxes > largest.Mailboxes {
				largest = a
			}
			if a.Days > 1 {
				multi++
			}
		}
		working, capacity := 0, 0
		for i := index[v.First]; i <= index[v.Last]; i++ {
			if c := plan.Schedule[i].Capacity; c > 0 {
				working++
				capacity += c
			}
		}
		used := 0.0
		if capacity > 0 {
			used = 100 * float64(v.Mailboxes) / float64(capacity)
		}
		name := v.Name
		if name == "" {
			name = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s (%d)\t%d\t%.1f%%\n", name, v.Orgs, v.Mailboxes, v.First, v.Last,
			v.Last.Sub(v.First)+1, working, largest.Code, largest.Mailboxes, multi, used)
	}
	return tw.Flush()
}
