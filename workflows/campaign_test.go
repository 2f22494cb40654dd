package workflows

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdktest "go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/schedule"
)

// fakeOrgs stands in for the Organization workflow: it records when each
// organization starts, how many run at once and the signals forwarded to
// it, and ends after delay with the outcome given for its code (Completed
// by default). With notify it also reports by signal, as the real one does.
type fakeOrgs struct {
	delay  time.Duration
	notify bool
	// linger keeps a notifying organization open that long after its
	// signal, so that its parent learns its end from the signal alone.
	linger  time.Duration
	outcome map[string]Phase
	fail    map[string]bool
	// endedAsError: a RolledBack or Failed organization ends as a
	// live-progress one does, with its Progress in the workflow's error.
	endedAsError bool

	mu         sync.Mutex
	started    map[string]time.Time
	running    int
	maxRunning int
	signals    map[string][]string
}

func (f *fakeOrgs) run(ctx workflow.Context, in OrganizationInput) (Progress, error) {
	f.mu.Lock()
	if f.started == nil {
		f.started, f.signals = map[string]time.Time{}, map[string][]string{}
	}
	f.started[in.Code] = workflow.Now(ctx)
	f.running++
	f.maxRunning = max(f.maxRunning, f.running)
	f.mu.Unlock()

	timer := workflow.NewTimer(ctx, f.delay)
	for done := false; !done; {
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(workflow.Future) { done = true })
		for _, name := range []string{SignalPause, SignalResume} {
			sel.AddReceive(workflow.GetSignalChannel(ctx, name), func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				f.mu.Lock()
				f.signals[in.Code] = append(f.signals[in.Code], name)
				f.mu.Unlock()
			})
		}
		sel.Select(ctx)
	}

	f.mu.Lock()
	f.running--
	f.mu.Unlock()
	p := Progress{Organization: in.Code, Phase: PhaseCompleted, MailboxesTotal: len(in.Mailboxes), MailboxesDone: len(in.Mailboxes)}
	if ph, ok := f.outcome[in.Code]; ok {
		p.Phase = ph
	}
	var err error
	if f.fail[in.Code] {
		err = temporal.NewNonRetryableApplicationError("source unreachable", activities.ErrTypeConfig, nil)
	}
	if f.notify {
		notifyCampaign(ctx, p, err)
		if f.linger > 0 {
			_ = workflow.Sleep(ctx, f.linger)
		}
	}
	if err == nil && f.endedAsError {
		err = endedError(p)
	}
	return p, err
}

func newCampaignEnv(t *testing.T, f *fakeOrgs) *sdktest.TestWorkflowEnvironment {
	t.Helper()
	var s sdktest.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Campaign, workflow.RegisterOptions{Name: CampaignWorkflowName})
	env.RegisterWorkflowWithOptions(f.run, workflow.RegisterOptions{Name: OrganizationWorkflowName})
	// Sunday noon before the campaign's first day.
	env.SetStartTime(time.Date(2026, 3, 1, 12, 0, 0, 0, london(t)))
	return env
}

func london(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	return loc
}

// campaignInput: weekday capacity 3, weekend 10, from Monday 2 March 2026
// in London; two waves of organizations of 1 to 3 mailboxes.
//
//	Mon 03-02  A1 A2     Thu 03-05  B1
//	Tue 03-03  A3        Fri 03-06  B2
//	Wed 03-04  A4 A5     Sat 03-07  B3 B4 B5 B6
func campaignInput() CampaignInput {
	in := CampaignInput{
		Name: "spring",
		Calendar: CampaignCalendar{
			Start: schedule.MustParseDate("2026-03-02"), TimeZone: "Europe/London",
			WeekdayCapacity: 3, WeekendCapacity: 10,
		},
		Template:   OrganizationInput{SourceEndpoint: "source", TargetEndpoint: "target", Approval: ApprovalAuto},
		MaxRunning: 2,
	}
	sizes := []struct {
		code, wave string
		n          int
	}{
		{"A1", "w1", 2}, {"A2", "w1", 1}, {"A3", "w1", 3}, {"A4", "w1", 2}, {"A5", "w1", 1},
		{"B1", "w2", 3}, {"B2", "w2", 3}, {"B3", "w2", 2}, {"B4", "w2", 3}, {"B5", "w2", 3}, {"B6", "w2", 1},
	}
	for _, s := range sizes {
		o := CampaignOrg{Code: s.code, Wave: s.wave, Mailboxes: s.n}
		for i := range s.n {
			a := fmt.Sprintf("u%d@%s.example", i, s.code)
			o.MailboxList = append(o.MailboxList, MailboxSpec{Address: a, SourceUser: a, TargetUser: a})
		}
		in.Organizations = append(in.Organizations, o)
	}
	return in
}

func campaignResult(t *testing.T, env *sdktest.TestWorkflowEnvironment) CampaignProgress {
	t.Helper()
	return resultOf[CampaignProgress](t, env)
}

func campaignQuery(t *testing.T, env *sdktest.TestWorkflowEnvironment) CampaignProgress {
	t.Helper()
	v, err := env.QueryWorkflow(QueryProgress)
	require.NoError(t, err)
	var p CampaignProgress
	require.NoError(t, v.Get(&p))
	return p
}

func plannedDays(t *testing.T, in CampaignInput) map[string]schedule.Date {
	t.Helper()
	plan, err := in.Plan()
	require.NoError(t, err)
	days := map[string]schedule.Date{}
	for _, a := range plan.Orgs {
		days[a.Code] = a.Day
	}
	return days
}

func TestCampaignStartsEachOrganizationOnItsPlannedDay(t *testing.T) {
	f := &fakeOrgs{delay: 5 * time.Hour, notify: true, linger: 30 * 24 * time.Hour,
		outcome: map[string]Phase{"A3": PhaseRolledBack, "B1": PhaseCompletedWithFailures},
		fail:    map[string]bool{"B2": true}}
	env := newCampaignEnv(t, f)
	var phases []string
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		ph, _ := args.Get(0).(temporal.SearchAttributes).GetKeyword(SAMigrationPhase)
		phases = append(phases, ph)
	}).Return(nil)
	var sunday, monday CampaignProgress
	env.RegisterDelayedCallback(func() { sunday = campaignQuery(t, env) }, time.Hour)
	env.RegisterDelayedCallback(func() { monday = campaignQuery(t, env) }, 13*time.Hour) // Monday 01:00
	in := campaignInput()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: CampaignWorkflowID(in.Name)})
	env.ExecuteWorkflow(CampaignWorkflowName, in)
	p := campaignResult(t, env)

	loc := london(t)
	require.True(t, p.FinishedAt.Before(day(t, loc, "2026-03-08")), "ends learned from organization-done signals (children linger 30 days)")
	days := plannedDays(t, in)
	require.Equal(t, schedule.MustParseDate("2026-03-07"), days["B6"], "four organizations share the Saturday")
	require.Len(t, f.started, len(in.Organizations))
	for code, at := range f.started {
		day := days[code]
		require.Equal(t, day, schedule.DateOf(at.In(loc)), "%s started %s, planned %s", code, at.In(loc), day)
		require.False(t, at.Before(day.In(loc)), "%s started before its day", code)
	}
	require.Equal(t, 2, f.maxRunning, "MaxRunning organizations at once, no more")
	require.WithinDuration(t, day(t, loc, "2026-03-02"), f.started["A1"], 0, "the first day starts at local midnight")
	require.True(t, f.started["B5"].After(f.started["B3"]), "on Saturday the third organization waits for a free slot")

	require.Equal(t, CampaignPhaseRunning, sunday.Phase)
	require.Zero(t, sunday.Started)
	require.Equal(t, "A1", sunday.NextOrg)
	require.WithinDuration(t, day(t, loc, "2026-03-02"), sunday.NextStartAt, 0)
	require.Equal(t, 11, sunday.Planned)
	require.Equal(t, 24, sunday.MailboxesPlanned)
	require.Equal(t, 6, sunday.Days)
	require.Equal(t, 2, monday.Started)
	require.Equal(t, 2, monday.Running)
	require.Equal(t, 3, monday.MailboxesStarted)
	require.Equal(t, "A3", monday.NextOrg)

	require.Equal(t, CampaignPhaseCompleted, p.Phase)
	require.Equal(t, []string{CampaignPhaseRunning, CampaignPhaseCompleted}, phases)
	require.Equal(t, 11, p.Started)
	require.Zero(t, p.Running)
	require.Equal(t, 9, p.Completed, "each organization counted once, from its result or its signal")
	require.Equal(t, 1, p.CompletedWithFailures)
	require.Equal(t, 1, p.RolledBack)
	require.Equal(t, 1, p.Failed)
	require.Equal(t, 24, p.MailboxesStarted)
	require.True(t, p.NextStartAt.IsZero())
	require.Len(t, p.Orgs, 11)
	byCode := map[string]CampaignOrgStatus{}
	for _, o := range p.Orgs {
		byCode[o.Code] = o
	}
	require.Equal(t, string(PhaseRolledBack), byCode["A3"].Status)
	require.Equal(t, CampaignOrgFailed, byCode["B2"].Status)
	require.Contains(t, byCode["B2"].Reason, "source unreachable")
	require.Equal(t, string(PhaseCompleted), byCode["B6"].Status)
	require.Equal(t, schedule.MustParseDate("2026-03-07"), byCode["B6"].Day)
}

// TestCampaignBooksOrganizationEndsFromResultsOfEitherForm: a campaign
// learns an organization's end from the child's result when it gets no
// signal. An organization from before versionLiveProgress returns its
// Progress as the result; a later one that rolled back or failed fails
// with the Progress in the error. Both are booked by their phase, and a
// failure that carries no Progress stays a failure.
func TestCampaignBooksOrganizationEndsFromResultsOfEitherForm(t *testing.T) {
	for _, asError := range []bool{false, true} {
		t.Run(fmt.Sprintf("endedAsError=%v", asError), func(t *testing.T) {
			f := &fakeOrgs{delay: 5 * time.Hour, endedAsError: asError,
				outcome: map[string]Phase{"A3": PhaseRolledBack, "A4": PhaseFailed, "B1": PhaseCompletedWithFailures},
				fail:    map[string]bool{"B2": true}}
			env := newCampaignEnv(t, f)
			env.ExecuteWorkflow(CampaignWorkflowName, campaignInput())
			p := campaignResult(t, env)
			require.Equal(t, 1, p.RolledBack)
			require.Equal(t, 2, p.Failed, "A4 failed, B2 failed without a Progress")
			require.Equal(t, 8, p.Completed)
			require.Equal(t, 1, p.CompletedWithFailures)
			byCode := map[string]CampaignOrgStatus{}
			for _, o := range p.Orgs {
				byCode[o.Code] = o
			}
			require.Equal(t, string(PhaseRolledBack), byCode["A3"].Status)
			require.Equal(t, string(PhaseFailed), byCode["A4"].Status)
			require.Equal(t, CampaignOrgFailed, byCode["B2"].Status)
			require.Contains(t, byCode["B2"].Reason, "source unreachable")
		})
	}
}

func day(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	return schedule.MustParseDate(s).In(loc)
}

func TestCampaignPauseStopsStartsAndIsForwarded(t *testing.T) {
	f := &fakeOrgs{delay: 5 * time.Hour}
	env := newCampaignEnv(t, f)
	loc := london(t)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, loc)
	pauseAt := day(t, loc, "2026-03-02").Add(time.Hour)       // A1 and A2 running
	resumeAt := day(t, loc, "2026-03-05").Add(12 * time.Hour) // Thursday noon
	var paused CampaignProgress
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPause, nil) }, pauseAt.Sub(start))
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalPause, nil) // again: no second forward
		paused = campaignQuery(t, env)
	}, pauseAt.Sub(start)+24*time.Hour)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalResume, nil) }, resumeAt.Sub(start))
	env.ExecuteWorkflow(CampaignWorkflowName, campaignInput())
	p := campaignResult(t, env)

	require.True(t, paused.Paused)
	require.Equal(t, 2, paused.Started, "nothing started while paused")
	require.Equal(t, "A3", paused.NextOrg)
	require.Equal(t, []string{SignalPause}, f.signals["A1"], "pause forwarded to the running organizations")
	require.Equal(t, []string{SignalPause}, f.signals["A2"])
	for _, code := range []string{"A3", "A4", "A5", "B1"} {
		require.False(t, f.started[code].Before(resumeAt), "%s started at %s, before the resume", code, f.started[code])
	}
	require.WithinDuration(t, resumeAt, f.started["A3"], 0, "a day passed in a pause starts on resume")
	require.WithinDuration(t, day(t, loc, "2026-03-07"), f.started["B3"], 0, "later days keep their plan")
	require.Equal(t, 2, f.maxRunning)
	require.False(t, p.Paused)
	require.Equal(t, 11, p.Completed)
}

type campaignUpdate struct {
	err   error
	value any
}

func (u *campaignUpdate) Accept()                 {}
func (u *campaignUpdate) Reject(err error)        { u.err = err }
func (u *campaignUpdate) Complete(v any, e error) { u.err, u.value = e, v }

func TestCampaignSetConcurrency(t *testing.T) {
	f := &fakeOrgs{delay: 5 * time.Hour}
	env := newCampaignEnv(t, f)
	zero, five := &campaignUpdate{}, &campaignUpdate{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateSetConcurrency, "zero", zero, ConcurrencyRequest{Concurrency: 0})
		env.UpdateWorkflow(UpdateSetConcurrency, "five", five, ConcurrencyRequest{Concurrency: 5, Operator: "ops"})
	}, time.Hour)
	env.ExecuteWorkflow(CampaignWorkflowName, campaignInput())
	p := campaignResult(t, env)
	require.ErrorContains(t, zero.err, "organizations at once 0 is outside 1..")
	require.NoError(t, five.err)
	require.EqualValues(t, 2, five.value)
	require.Equal(t, 5, p.MaxRunning)
	require.Equal(t, 4, f.maxRunning, "Saturday's four organizations run together")
}

func TestCampaignContinuesAsNewWithItsState(t *testing.T) {
	f := &fakeOrgs{delay: 30 * 24 * time.Hour}
	env := newCampaignEnv(t, f)
	in := campaignInput()
	in.Calendar.Start = schedule.Date{} // the workflow fixes it
	in.MaxRunning = 5
	in.OrgsPerRun = 3
	env.ExecuteWorkflow(CampaignWorkflowName, in)
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	require.Equal(t, CampaignWorkflowName, can.WorkflowType.Name)
	var next CampaignInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))

	require.Equal(t, schedule.MustParseDate("2026-03-01"), next.Calendar.Start, "the start day is fixed for later runs")
	require.Len(t, next.Organizations, len(in.Organizations))
	st := next.State
	require.NotNil(t, st)
	require.Equal(t, 3, st.Next)
	require.Equal(t, []campaignRun{{"A1", 2, true}, {"A2", 1, true}, {"A3", 3, true}}, st.Running)
	require.Equal(t, 3, st.P.Started)
	require.Equal(t, 3, st.P.Running)
	require.Equal(t, 1, st.P.Runs)
	require.Equal(t, "A4", st.P.NextOrg)
	require.Len(t, st.P.Orgs, 3)
	require.Equal(t, CampaignOrgRunning, st.P.Orgs[0].Status)

	// The next run does not start them again; it learns their end from
	// their organization-done signals and starts the rest.
	f2 := &fakeOrgs{delay: time.Hour}
	env2 := newCampaignEnv(t, f2)
	next.OrgsPerRun = 100
	for i, code := range []string{"A1", "A2", "A3"} {
		done := OrganizationDone{Code: code, Phase: PhaseCompleted}
		if code == "A2" {
			done.Phase = PhaseFailed
		}
		env2.RegisterDelayedCallback(func() {
			env2.SignalWorkflow(signalOrganizationDone, done)
			env2.SignalWorkflow(signalOrganizationDone, done) // a repeat counts once
		}, time.Duration(i+1)*time.Hour)
	}
	env2.RegisterDelayedCallback(func() {
		env2.SignalWorkflow(signalOrganizationDone, OrganizationDone{Code: "NOT-OURS", Phase: PhaseCompleted})
	}, 30*time.Minute)
	env2.ExecuteWorkflow(CampaignWorkflowName, next)
	p := campaignResult(t, env2)
	require.NotContains(t, f2.started, "A1")
	require.Len(t, f2.started, 8)
	require.Equal(t, 11, p.Started)
	require.Equal(t, 10, p.Completed)
	require.Equal(t, 1, p.Failed)
	require.Equal(t, 2, p.Runs)
	require.Equal(t, CampaignPhaseCompleted, p.Phase)
}

func TestCampaignRefusesBadInput(t *testing.T) {
	in := campaignInput()
	in.Organizations[2].Mailboxes = 7
	require.ErrorContains(t, ValidateCampaignInput(in), "organization A3: 7 mailboxes planned but 3 given")

	in = campaignInput()
	in.Calendar.TimeZone = "Mars/Olympus"
	f := &fakeOrgs{}
	env := newCampaignEnv(t, f)
	env.ExecuteWorkflow(CampaignWorkflowName, in)
	var app *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &app)
	require.Equal(t, activities.ErrTypeConfig, app.Type())
	require.True(t, app.NonRetryable())
	require.Contains(t, app.Error(), "Mars/Olympus")

	in = campaignInput()
	in.Organizations[6].Code = "B1" // listed twice
	_, err := in.Plan()
	require.ErrorContains(t, err, `organization "B1" is listed twice`)
}

func TestCampaignRecordsAnOrganizationThatAlreadyHasAWorkflow(t *testing.T) {
	f := &fakeOrgs{delay: time.Hour}
	env := newCampaignEnv(t, f)
	// The only workflow id the test environment knows besides the children
	// is the campaign's own: give it A1's, so that A1's start conflicts.
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: OrganizationWorkflowID("A1")})
	env.ExecuteWorkflow(CampaignWorkflowName, campaignInput())
	p := campaignResult(t, env)
	require.NotContains(t, f.started, "A1")
	require.Equal(t, 1, p.AlreadyStarted)
	require.Equal(t, 10, p.Started)
	require.Equal(t, 10, p.Completed)
	require.Equal(t, 22, p.MailboxesStarted)
	require.Equal(t, CampaignOrgAlreadyStarted, p.Orgs[0].Status)
	require.Contains(t, p.Orgs[0].Reason, "org/A1 exists")
}
