package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/schedule"
)

// Defaults and bounds of a campaign.
const (
	DefaultCampaignMaxRunning = 50
	MaxCampaignRunning        = 5000
	DefaultOrgsPerRun         = 200
	// MaxCampaignOrgStatus bounds CampaignProgress.Orgs: the organizations
	// started most recently.
	MaxCampaignOrgStatus = 200
)

// Values of the MigrationPhase search attribute on a Campaign workflow.
const (
	CampaignPhaseRunning   = "Campaign"
	CampaignPhaseCompleted = "Completed"
)

// Status of an organization in CampaignOrgStatus while it has no final
// phase of its own (which is then its status).
const (
	CampaignOrgStarting = "Starting"
	CampaignOrgRunning  = "Running"
	// CampaignOrgAlreadyStarted: an Organization workflow with the
	// organization's id exists (running, or closed), so the campaign
	// recorded it and did not start a second one.
	CampaignOrgAlreadyStarted = "AlreadyStarted"
	// CampaignOrgStartFailed: the child could not be started.
	CampaignOrgStartFailed = "StartFailed"
	CampaignOrgFailed      = "Failed"
)

const campaignIDPrefix = "campaign/"

// CampaignWorkflowID is the deterministic id of a campaign's workflow.
func CampaignWorkflowID(name string) string { return campaignIDPrefix + name }

// CampaignCalendar is what rebuilds the campaign's schedule.Calendar, in
// plain values so that it travels in a workflow input.
type CampaignCalendar struct {
	// Start is the first day of the campaign. The workflow fills in the
	// date it starts on (in TimeZone) when it is empty.
	Start schedule.Date `json:"start,omitzero"`
	// TimeZone is the IANA name of the zone in which days begin; "" is UTC.
	TimeZone        string          `json:"time_zone,omitempty"`
	WeekdayCapacity int             `json:"weekday_capacity"`
	WeekendCapacity int             `json:"weekend_capacity"`
	Holidays        []schedule.Date `json:"holidays,omitempty"`
	// Window, when set, limits work to the days on which it opens, e.g.
	// "Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London".
	Window string `json:"window,omitempty"`
}

// Location loads the calendar's zone. This reads the zone data of the
// binary or the system, as schedule.ParseWindow does for a window's zone:
// every worker built from one binary with the same tzdata gets the same
// answer, so workflow code may call it. "Local" is refused: it differs
// between machines.
func (c CampaignCalendar) Location() (*time.Location, error) {
	switch c.TimeZone {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, errors.New(`time zone "Local" is not allowed (name the zone, e.g. Europe/London)`)
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", c.TimeZone, err)
	}
	return loc, nil
}

// Schedule builds the schedule.Calendar the plan is made on.
func (c CampaignCalendar) Schedule() (schedule.Calendar, error) {
	loc, err := c.Location()
	if err != nil {
		return schedule.Calendar{}, err
	}
	cal := schedule.Calendar{
		Location:        loc,
		WeekdayCapacity: c.WeekdayCapacity,
		WeekendCapacity: c.WeekendCapacity,
		Holidays:        c.Holidays,
	}
	if !c.Start.IsZero() {
		cal.Start = c.Start.In(loc)
	}
	if c.Window != "" {
		if cal.CutoverWindow, err = schedule.ParseWindow(c.Window); err != nil {
			return schedule.Calendar{}, err
		}
	}
	return cal, nil
}

// CampaignOrg is one organization of a campaign: its plan inputs and its
// mailboxes, inline (MailboxList, for small organizations) or staged
// (Inventory). Everything else comes from CampaignInput.Template.
type CampaignOrg struct {
	Code        string                   `json:"code"`
	Name        string                   `json:"name,omitempty"`
	Wave        string                   `json:"wave,omitempty"`
	Mailboxes   int                      `json:"mailboxes"`
	MailboxList []MailboxSpec            `json:"mailbox_list,omitempty"`
	Inventory   *activities.InventoryRef `json:"inventory,omitempty"`
}

// CampaignInput starts a Campaign workflow.
type CampaignInput struct {
	Name     string           `json:"name"`
	Calendar CampaignCalendar `json:"calendar"`
	// Template holds what every organization shares: endpoints, policy,
	// approval, concurrency, cutover window and the rest. Its Code, Name,
	// Wave, Mailboxes, Inventory and State are ignored.
	Template OrganizationInput `json:"template"`
	// Organizations in inventory order; waves run in the order they first
	// appear.
	Organizations []CampaignOrg `json:"organizations"`
	// MaxRunning is how many organizations run at once (default 50);
	// set-concurrency changes it.
	MaxRunning int `json:"max_running,omitempty"`
	// OrgsPerRun is how many organizations one run starts before it
	// continues as new (default 200).
	OrgsPerRun int `json:"orgs_per_run,omitempty"`
	// State is set only by the workflow itself when it continues as new.
	State *CampaignState `json:"state,omitempty"`
}

// OrgInput is the Organization workflow input for one of the campaign's
// organizations.
func (in CampaignInput) OrgInput(o CampaignOrg) OrganizationInput {
	oi := in.Template
	oi.Code, oi.Name, oi.Wave = o.Code, o.Name, o.Wave
	oi.Mailboxes, oi.Inventory, oi.State = o.MailboxList, o.Inventory, nil
	return oi
}

// Plan lays the organizations onto the calendar exactly as the workflow
// does; the calendar needs a start date.
func (in CampaignInput) Plan() (schedule.Plan, error) {
	cal, err := in.Calendar.Schedule()
	if err != nil {
		return schedule.Plan{}, fmt.Errorf("campaign %s: calendar: %w", in.Name, err)
	}
	orgs := make([]schedule.Org, len(in.Organizations))
	for i, o := range in.Organizations {
		orgs[i] = schedule.Org{Code: o.Code, Wave: o.Wave, Mailboxes: o.Mailboxes}
	}
	p, err := schedule.PlanCampaign(orgs, cal)
	if err != nil {
		return schedule.Plan{}, fmt.Errorf("campaign %s: %w", in.Name, err)
	}
	return p, nil
}

// CampaignOrgStatus is one organization in CampaignProgress.
type CampaignOrgStatus struct {
	Code       string        `json:"code"`
	Wave       string        `json:"wave,omitempty"`
	Mailboxes  int           `json:"mailboxes"`
	Day        schedule.Date `json:"day"` // planned start day
	Status     string        `json:"status"`
	Reason     string        `json:"reason,omitempty"`
	StartedAt  time.Time     `json:"started_at,omitzero"`
	FinishedAt time.Time     `json:"finished_at,omitzero"`
}

// CampaignProgress is the progress query's answer and the campaign's result.
type CampaignProgress struct {
	Name       string `json:"name"`
	Phase      string `json:"phase"` // CampaignPhaseRunning or CampaignPhaseCompleted
	Paused     bool   `json:"paused"`
	MaxRunning int    `json:"max_running"`

	// Days is how many calendar days the plan spans, FirstDay to LastDay.
	Days     int           `json:"days"`
	FirstDay schedule.Date `json:"first_day"`
	LastDay  schedule.Date `json:"last_day"`

	Planned int `json:"planned"` // organizations
	Started int `json:"started"`
	Running int `json:"running"`
	// Completed counts Completed and CompletedWithFailures, the latter
	// also in CompletedWithFailures.
	Completed             int `json:"completed"`
	CompletedWithFailures int `json:"completed_with_failures,omitempty"`
	Failed                int `json:"failed"`
	RolledBack            int `json:"rolled_back"`
	AlreadyStarted        int `json:"already_started,omitempty"`

	MailboxesPlanned int `json:"mailboxes_planned"`
	MailboxesStarted int `json:"mailboxes_started"`

	// NextStartAt is when the next organization (NextOrg) is due; zero
	// once every organization has started.
	NextStartAt time.Time `json:"next_start_at,omitzero"`
	NextOrg     string    `json:"next_org,omitempty"`

	Runs       int       `json:"runs"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`

	// Orgs lists the MaxCampaignOrgStatus organizations started most
	// recently, oldest first.
	Orgs []CampaignOrgStatus `json:"orgs,omitempty"`
}

// CampaignState is a campaign's progress carried from one run to the next
// by continue-as-new. Operators never set it.
type CampaignState struct {
	P CampaignProgress `json:"progress"`
	// Next is the index in the plan of the next organization to start.
	Next int `json:"next"`
	// Running lists organizations started by the campaign that have not
	// reported their end yet.
	Running []campaignRun `json:"running,omitempty"`
}

type campaignRun struct {
	Code      string `json:"c"`
	Mailboxes int    `json:"m"`
	Started   bool   `json:"s,omitempty"` // the server confirmed the start
}

// OrganizationDone is what an Organization started by a campaign signals
// to it when it ends (notifyCampaign), and what the campaign books when
// it learns the end from the child's result instead.
type OrganizationDone struct {
	Code            string `json:"code"`
	Phase           Phase  `json:"phase,omitempty"`
	MailboxesTotal  int    `json:"mailboxes_total,omitempty"`
	MailboxesDone   int    `json:"mailboxes_done,omitempty"`
	MailboxesFailed int    `json:"mailboxes_failed,omitempty"`
	Reason          string `json:"reason,omitempty"`
	Error           string `json:"error,omitempty"`
}
