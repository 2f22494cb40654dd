package testsuite

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/workflows"
)

// TestCampaignRunsItsOrganizationsOnTheEmbeddedServer starts a campaign of
// the demo estate's three organizations on a real server, with a daily
// capacity that holds the first two: the plan puts them on the first day
// and the third on the second. The calendar starts yesterday, so both days
// have begun and everything runs now. Each organization reports its end to
// the campaign, which completes once all have.
func TestCampaignRunsItsOrganizationsOnTheEmbeddedServer(t *testing.T) {
	ctx, env := startDemo(t, 3*time.Minute, demo.Options{Seed: 4, Scale: 0.15})
	in := twoDayCampaign(t, env, "e2e")
	total := 0
	for _, o := range in.Organizations {
		total += o.Mailboxes
	}
	require.LessOrEqual(t, in.Organizations[2].Mailboxes, in.Calendar.WeekdayCapacity)
	_, err := control.StartCampaign(ctx, env.Client, workflows.TaskQueue, in)
	require.NoError(t, err)
	p, err := control.CampaignResult(ctx, env.Client, in.Name)
	require.NoError(t, err)
	require.Equal(t, len(env.Inputs), p.Planned)
	require.Equal(t, 2, p.Days, "two organizations on day 1, one on day 2")
	require.Equal(t, len(env.Inputs), p.Started)
	require.Equal(t, len(env.Inputs), p.Completed, "%+v", p)
	require.Zero(t, p.Failed)
	require.Zero(t, p.Running)
	require.Equal(t, total, p.MailboxesStarted)
	for _, org := range env.Inputs {
		r, err := control.Result(ctx, env.Client, org.Code)
		require.NoError(t, err)
		require.True(t, r.Validated(), "%s: %s %s", org.Code, r.Phase, r.Reason)
	}
	rep, err := env.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
}

// twoDayCampaign lays the demo's three organizations over two planned
// days: a day's capacity fits the first two, and the calendar starts
// yesterday, so both days have begun.
func twoDayCampaign(t *testing.T, env *demo.Env, name string) workflows.CampaignInput {
	t.Helper()
	in := workflows.CampaignInput{
		Name:     name,
		Template: workflows.OrganizationInput{SourceEndpoint: "source", TargetEndpoint: "target", Concurrency: 4},
	}
	for _, org := range env.Inputs {
		in.Organizations = append(in.Organizations, workflows.CampaignOrg{Code: org.Code, Name: org.Name, Wave: "w1", Mailboxes: len(org.Mailboxes), MailboxList: org.Mailboxes})
	}
	require.Len(t, in.Organizations, 3)
	capacity := in.Organizations[0].Mailboxes + in.Organizations[1].Mailboxes
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	in.Calendar = workflows.CampaignCalendar{WeekdayCapacity: capacity, WeekendCapacity: capacity}
	in.Calendar.Start.Year, in.Calendar.Start.Month, in.Calendar.Start.Day = yesterday.Year(), yesterday.Month(), yesterday.Day()
	return in
}
