package activities_test

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/profile"
	"github.com/mailshift/mailshift/internal/score"
)

// exchangeTarget gives the activities' target endpoint the exchange-online
// profile, as the worker does from its configuration.
func exchangeTarget(t *testing.T, a *activities.Activities) {
	t.Helper()
	p, err := profile.Lookup(profile.ExchangeOnline)
	require.NoError(t, err)
	tgt := a.Endpoints["target"]
	tgt.Target, tgt.WellKnown, tgt.SizeCeiling, tgt.PerMailbox = p.Target, p.WellKnown, p.MessageSizeCeiling, p.MaxConnectionsPerMailbox
}

// TestExchangeReadinessAndKeywords: readiness against a target that behaves
// like Exchange Online reports, per mailbox, what would go wrong with its
// folders (a mailbox in another language than the organization says, an
// unknown language, two source folders for one well-known folder) and its
// quota; a mailbox copied there without its keywords is Good, validated by
// content, and its keywords are listed in the organization's keywords.csv.
func TestExchangeReadinessAndKeywords(t *testing.T) {
	e := estate.Generate(estate.Spec{Seed: 29, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "EXR", Name: "Readiness", Mailboxes: 2, MeanMessages: 40}}})
	mbs := e.Orgs[0].Mailboxes
	german := mbs[1].User
	a, st := estateActivities(t, e, estate.ServerOptions{Exchange: true, Language: func(user string) string {
		if user == german {
			return "de"
		}
		return "en"
	}}, activities.Limits{MaxLargeItems: -1, AppendWindow: 8})
	exchangeTarget(t, a)
	var suite sdktest.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.SetTestTimeout(time.Minute)
	env.RegisterActivity(a)
	m := func(mb estate.Mailbox) activities.MailboxRef {
		return activities.MailboxRef{Org: "EXR", Address: mb.Address, SourceEndpoint: "source", SourceUser: mb.User, TargetEndpoint: "target", TargetUser: mb.User}
	}
	ready := func(mb estate.Mailbox, p activities.Policy) activities.ReadinessResult {
		t.Helper()
		v, err := env.ExecuteActivity(a.CheckReadiness, m(mb), p)
		require.NoError(t, err)
		var r activities.ReadinessResult
		require.NoError(t, v.Get(&r))
		return r
	}

	r := ready(mbs[0], activities.Policy{})
	require.True(t, r.Ready, "%v", r.Problems)

	r = ready(mbs[1], activities.Policy{})
	require.False(t, r.Ready)
	require.Contains(t, strings.Join(r.Problems, "\n"), `"Sent" would go to "Sent Items", which the target does not have`)
	require.Equal(t, activities.ProblemFolders, activities.ProblemKind(r.Problems[0]))
	r = ready(mbs[1], activities.Policy{TargetLanguage: "de"})
	require.True(t, r.Ready, "%v", r.Problems)

	r = ready(mbs[0], activities.Policy{TargetLanguage: "xx"})
	require.False(t, r.Ready)
	require.Contains(t, r.Problems[0], `folders: target language "xx": its folder names are not known`)

	r = ready(mbs[0], activities.Policy{TargetQuotaBytes: 1000})
	require.False(t, r.Ready)
	require.EqualValues(t, 1000, r.QuotaLimit)
	require.Equal(t, activities.ProblemQuota, activities.ProblemKind(r.Problems[0]), r.Problems)

	// The source gets a plain "Sent Items" beside its \Sent folder: both
	// would land in Exchange's.
	c := sourceClient(t, a, mbs[0])
	require.NoError(t, c.Create("Sent Items", nil).Wait())
	r = ready(mbs[0], activities.Policy{})
	require.False(t, r.Ready)
	require.Contains(t, strings.Join(r.Problems, "\n"), `would both land in target folder "Sent Items"; add a folder mapping`)
	require.NoError(t, c.Delete("Sent Items").Wait())

	// Copy and validate the German mailbox into its German folders.
	p := activities.Policy{TargetLanguage: "de", Validation: "full"}
	v, err := env.ExecuteActivity(a.TransferMailbox, activities.TransferInput{Mailbox: m(mbs[1]), Pass: "prestage", Policy: p})
	require.NoError(t, err)
	var tr activities.TransferResult
	require.NoError(t, v.Get(&tr))
	var keywords int64
	for _, f := range mbs[1].Folders {
		for _, msg := range f.Messages {
			for _, fl := range msg.Flags {
				if !strings.HasPrefix(string(fl), `\`) {
					keywords++
					break
				}
			}
		}
	}
	require.Positive(t, keywords)
	require.Equal(t, keywords, tr.KeywordsDropped)
	require.Zero(t, tr.SkippedTotal, "a keyword is not a bad item")
	v, err = env.ExecuteActivity(a.ValidateMailbox, activities.ValidateInput{Mailbox: m(mbs[1]), Policy: p})
	require.NoError(t, err)
	var val activities.ValidateResult
	require.NoError(t, v.Get(&val))
	require.True(t, val.OK, "%+v", val)
	require.True(t, val.Rerendered)
	require.EqualValues(t, keywords, val.KeywordsDropped)
	g, hits := score.Grade(score.Counts{Rerendered: val.Rerendered, Level: val.Level, KeywordsDropped: val.KeywordsDropped})
	require.Equal(t, score.Good, g)
	require.Len(t, hits, 2)

	tc := targetClient(t, a, mbs[1])
	status, err := tc.Status("Gesendete Elemente", &imap.StatusOptions{NumMessages: true}).Wait()
	require.NoError(t, err)
	require.EqualValues(t, len(mbs[1].Folder("Sent").Messages), *status.NumMessages)

	v, err = env.ExecuteActivity(a.WriteOrganizationReport, activities.OrganizationReportInput{Org: "EXR", Mailboxes: []string{mbs[1].Address}})
	require.NoError(t, err)
	var rep activities.OrganizationReportResult
	require.NoError(t, v.Get(&rep))
	require.Equal(t, activities.KeywordsReportName("EXR"), rep.KeywordsCSV)
	require.Equal(t, keywords, rep.KeywordsDropped)
	rows, err := csv.NewReader(strings.NewReader(string(get(t, st, rep.KeywordsCSV)))).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, int(keywords)+1)
	for _, row := range rows[1:] {
		require.Equal(t, mbs[1].Address, row[1])
		require.NotEmpty(t, row[7])
		if row[2] == "Sent" {
			require.Equal(t, "Gesendete Elemente", row[5])
		}
	}
}

// sourceClient and targetClient are raw sessions of mb on the activities'
// in-process servers, for looking and tampering.
func sourceClient(t *testing.T, a *activities.Activities, mb estate.Mailbox) *imapclient.Client {
	return rawClient(t, a.Endpoints["source"], mb)
}

func targetClient(t *testing.T, a *activities.Activities, mb estate.Mailbox) *imapclient.Client {
	return rawClient(t, a.Endpoints["target"], mb)
}

func rawClient(t *testing.T, ep *activities.Endpoint, mb estate.Mailbox) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(ep.Addr.HostPort(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Login(mb.User, mb.Password).Wait())
	return c
}
