package activities_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

const reportOrg = "RPT"

// reportEstate serves a three-mailbox organization (one mailbox holding an
// item over the target's limit) from in-process source and target servers.
func reportEstate(t *testing.T) (*activities.Activities, *staging.Local, []estate.Mailbox, int) {
	t.Helper()
	const limit = 48 << 10
	e := estate.Generate(estate.Spec{Seed: 11, Orgs: []estate.OrgSpec{{Code: reportOrg, Name: "Report", Mailboxes: 3, MeanMessages: 12}},
		LargeItems: 1, LargeItemSize: 64 << 10})
	mbs := e.Orgs[0].Mailboxes
	large := -1
	for i, mb := range mbs {
		for _, f := range mb.Folders {
			for _, m := range f.Messages {
				if len(m.Raw) > limit {
					large = i
				}
			}
		}
	}
	require.GreaterOrEqual(t, large, 0, "the estate has a large item")
	a, st := estateActivities(t, e, estate.ServerOptions{}, activities.Limits{MaxMessageSize: limit, MaxLargeItems: -1})
	return a, st, mbs, large
}

// estateActivities serves estate e from an in-process source to an
// in-process target started with tgtOpts (named "target"), with a local
// staging store and limits.
func estateActivities(t *testing.T, e *estate.Estate, tgtOpts estate.ServerOptions, limits activities.Limits) (*activities.Activities, *staging.Local) {
	t.Helper()
	src, err := estate.StartServer(estate.ServerOptions{Name: "source"})
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	require.NoError(t, src.Load(e))
	tgtOpts.Name = "target"
	tgt, err := estate.StartServer(tgtOpts)
	require.NoError(t, err)
	t.Cleanup(func() { tgt.Close() })
	require.NoError(t, tgt.AddUsers(e))
	st, err := staging.NewLocal(t.TempDir())
	require.NoError(t, err)
	var mbs []estate.Mailbox
	for _, o := range e.Orgs {
		mbs = append(mbs, o.Mailboxes...)
	}
	a := &activities.Activities{
		Endpoints: estateEndpoints(t, mbs, src, tgt),
		Staging:   st,
		Limits:    limits,
		SpoolDir:  t.TempDir(),
	}
	t.Cleanup(func() { activities.CloseIdle(a) })
	return a, st
}

// estateEndpoints names in-process servers "source" and "target", each
// logging in with the mailboxes' passwords.
func estateEndpoints(t *testing.T, mbs []estate.Mailbox, src, tgt *estate.Server) map[string]*activities.Endpoint {
	t.Helper()
	passwords := map[string]string{}
	for _, mb := range mbs {
		passwords[mb.User] = mb.Password
	}
	login := func(user string) (imapconn.Login, error) {
		return imapconn.Login{Username: user, Password: passwords[user]}, nil
	}
	endpoint := func(s *estate.Server) *activities.Endpoint {
		addr, err := imapconn.ParseAddress(s.URL())
		require.NoError(t, err)
		return activities.NewEndpoint(s.Name(), addr, 4, imapconn.Options{}, login)
	}
	return map[string]*activities.Endpoint{"source": endpoint(src), "target": endpoint(tgt)}
}

func ref(mb estate.Mailbox) activities.MailboxRef {
	return activities.MailboxRef{Org: reportOrg, Address: mb.Address, SourceEndpoint: "source", SourceUser: mb.User,
		TargetEndpoint: "target", TargetUser: mb.User}
}

func get(t *testing.T, st staging.Store, name string) []byte {
	t.Helper()
	rc, _, err := st.Get(context.Background(), name)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// TestWriteOrganizationReport runs real passes and a validation, then reports
// what they left in the store: the report reads what the activities write.
func TestWriteOrganizationReport(t *testing.T) {
	a, st, mbs, large := reportEstate(t)
	var suite sdktest.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	run := func(mb estate.Mailbox, pass string) activities.TransferResult {
		v, err := env.ExecuteActivity(a.TransferMailbox, activities.TransferInput{Mailbox: ref(mb), Pass: pass})
		require.NoError(t, err)
		var r activities.TransferResult
		require.NoError(t, v.Get(&r))
		require.False(t, r.Started.IsZero())
		require.False(t, r.Finished.Before(r.Started))
		return r
	}
	// The mailbox with the large item is migrated and validated; the next
	// is pre-staged only; the last is not started.
	done, pre, never := mbs[large], mbs[(large+1)%3], mbs[(large+2)%3]
	prestage := run(done, "prestage")
	final := run(done, "final")
	require.Equal(t, 1, final.SkippedTotal)
	v, err := env.ExecuteActivity(a.ValidateMailbox, activities.ValidateInput{Mailbox: ref(done)})
	require.NoError(t, err)
	var val activities.ValidateResult
	require.NoError(t, v.Get(&val))
	require.True(t, val.OK, val.Problems)
	preOnly := run(pre, "prestage")

	inv, err := activities.StageInventory(context.Background(), st, reportOrg, []activities.MailboxSpec{
		{Address: done.Address, SourceUser: done.User, TargetUser: done.User},
		{Address: pre.Address, SourceUser: pre.User, TargetUser: pre.User},
		{Address: never.Address, SourceUser: never.User, TargetUser: never.User},
	})
	require.NoError(t, err)
	v, err = env.ExecuteActivity(a.WriteOrganizationReport, activities.OrganizationReportInput{Org: reportOrg, Inventory: &inv})
	require.NoError(t, err)
	var res activities.OrganizationReportResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, activities.OrganizationReportResult{
		CSV: "reports/RPT/mailboxes.csv", SkippedCSV: "reports/RPT/skipped-items.csv", JSON: "reports/RPT/mailboxes.json",
		Mailboxes: 3, Skipped: 1,
		States:  map[string]int{"CompletedWithWarnings": 1, "Synced": 1, "NotStarted": 1},
		Counted: true, TargetMessages: int64(val.Messages) + preOnly.Copied, TargetBytes: val.Bytes + preOnly.Bytes,
		ReleasedClaims: 2, // the two mailboxes whose passes claimed them
	}, res)

	var rs []report.MailboxReport
	require.NoError(t, json.Unmarshal(get(t, st, res.JSON), &rs))
	require.Len(t, rs, 3)
	r := rs[0]
	require.Equal(t, done.Address, r.Address)
	require.Equal(t, report.CompletedWithWarnings, r.State)
	require.Len(t, r.Passes, 2)
	require.Equal(t, "prestage", r.Passes[0].Pass)
	require.Equal(t, prestage.Copied, r.Passes[0].Copied)
	require.Equal(t, prestage.Bytes, r.Passes[0].Bytes)
	require.True(t, r.Passes[0].Started.Equal(prestage.Started))
	require.True(t, r.Passes[1].Finished.Equal(final.Finished))
	require.True(t, r.Started.Equal(prestage.Started))
	require.True(t, r.Finished.Equal(final.Finished))
	require.Equal(t, prestage.Copied+final.Copied, r.Copied)
	require.Equal(t, final.SourceMessages, r.SourceMessages)
	require.Equal(t, int64(val.Messages), r.TargetMessages)
	require.Equal(t, int64(val.Messages)+1, r.SourceMessages, "all but the large item")
	require.Equal(t, map[string]int{transfer.ReasonTooLarge: 1}, r.SkippedByReason)
	require.Equal(t, 1, r.Staged)
	require.Len(t, r.SkippedItems, 1)
	item := r.SkippedItems[0]
	require.NotEmpty(t, item.MessageID)
	_, err = st.Stat(context.Background(), item.StagedAs)
	require.NoError(t, err, "the staged object named in the report exists")
	require.Equal(t, report.Validation{OK: true, Folders: val.Folders, Messages: val.Messages, Bytes: val.Bytes,
		TargetMessages: val.Messages, Skipped: 1, Level: "metadata"}, *r.Validation)

	require.Equal(t, pre.Address, rs[1].Address)
	require.Equal(t, report.Synced, rs[1].State)
	require.Equal(t, preOnly.Copied, rs[1].TargetMessages)
	require.Equal(t, preOnly.Bytes, rs[1].TargetBytes)
	require.Equal(t, report.NotStarted, rs[2].State)

	rows, err := csv.NewReader(bytes.NewReader(get(t, st, res.CSV))).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4)
	require.Equal(t, report.Columns, rows[0])
	require.Equal(t, []string{done.Address, "CompletedWithWarnings", "Good", "staged-large-items"}, rows[1][1:5],
		"the staged CSV grades validated mailboxes by the workflows' rules (issue #13: consistency and rules were empty)")
	rows, err = csv.NewReader(bytes.NewReader(get(t, st, res.SkippedCSV))).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, []string{reportOrg, done.Address, item.Folder}, rows[1][:3])
	require.Equal(t, item.StagedAs, rows[1][10])

	// Without a list, the mailboxes are those the store has; an explicit list wins.
	v, err = env.ExecuteActivity(a.WriteOrganizationReport, activities.OrganizationReportInput{Org: reportOrg})
	require.NoError(t, err)
	res = activities.OrganizationReportResult{}
	require.NoError(t, v.Get(&res))
	require.Equal(t, 2, res.Mailboxes)
	v, err = env.ExecuteActivity(a.WriteOrganizationReport, activities.OrganizationReportInput{Org: reportOrg, Mailboxes: []string{never.Address}})
	require.NoError(t, err)
	res = activities.OrganizationReportResult{}
	require.NoError(t, v.Get(&res))
	require.Equal(t, map[string]int{"NotStarted": 1}, res.States)
	require.NoError(t, json.Unmarshal(get(t, st, res.JSON), &rs))
	require.Len(t, rs, 1)
}

func TestWriteOrganizationReportConfig(t *testing.T) {
	var suite sdktest.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	st, err := staging.NewLocal(t.TempDir())
	require.NoError(t, err)
	a := &activities.Activities{Staging: st}
	env.RegisterActivity(a)
	_, err = env.ExecuteActivity(a.WriteOrganizationReport, activities.OrganizationReportInput{})
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.True(t, ae.NonRetryable())
	require.Equal(t, activities.ErrTypeConfig, ae.Type())

	// A missing staged inventory is an error, not an empty report.
	_, err = env.ExecuteActivity(a.WriteOrganizationReport, activities.OrganizationReportInput{Org: "X",
		Inventory: &activities.InventoryRef{Object: activities.InventoryObjectName("X", "00"), Count: 1}})
	require.ErrorContains(t, err, "not found")
}

// A pass that failed for good leaves no pass report; the store then showed
// the mailbox in the state of its last finished pass (Synced) with no
// error, and readiness failures NotStarted (issue #13). The failed pass
// records itself, and the workflow's verdicts are applied.
func TestWriteOrganizationReportFailures(t *testing.T) {
	a, _, mbs, _ := reportEstate(t)
	var suite sdktest.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	synced, authFailed, notReady, skipped := mbs[0], mbs[1], mbs[2], "skipped@rpt.example"
	_, err := env.ExecuteActivity(a.TransferMailbox, activities.TransferInput{Mailbox: ref(synced), Pass: "prestage"})
	require.NoError(t, err)
	_, err = env.ExecuteActivity(a.TransferMailbox, activities.TransferInput{Mailbox: ref(authFailed), Pass: "prestage"})
	require.NoError(t, err)
	bad := ref(authFailed)
	bad.SourceUser = "nobody"
	_, err = env.ExecuteActivity(a.TransferMailbox, activities.TransferInput{Mailbox: bad, Pass: "final"})
	require.Error(t, err)

	// From the store alone: the failed final pass shows.
	list := []string{synced.Address, authFailed.Address, notReady.Address, skipped}
	v, err := env.ExecuteActivity(a.WriteOrganizationReport, activities.OrganizationReportInput{Org: reportOrg, Mailboxes: list})
	require.NoError(t, err)
	var res activities.OrganizationReportResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, map[string]int{"Synced": 1, "Failed": 1, "NotStarted": 2}, res.States)
	r := a.Staging.(*staging.Local)
	var rs []report.MailboxReport
	require.NoError(t, json.Unmarshal(get(t, r, res.JSON), &rs))
	require.Equal(t, report.Failed, rs[1].State)
	require.Contains(t, rs[1].LastError, "final: ")
	require.Contains(t, rs[1].LastError, activities.ErrTypeAuth)

	// With the workflow's verdicts: readiness refusal and operator skip.
	v, err = env.ExecuteActivity(a.WriteOrganizationReport, activities.OrganizationReportInput{Org: reportOrg, Mailboxes: list,
		Statuses: "affs", Failures: []activities.ReportFailure{
			{Address: authFailed.Address, Pass: "final", Error: "AuthFailed: login refused"},
			{Address: notReady.Address, Pass: "readiness", Error: "not ready: login: source refused the login"},
		}})
	require.NoError(t, err)
	res = activities.OrganizationReportResult{}
	require.NoError(t, v.Get(&res))
	require.Equal(t, map[string]int{"Synced": 1, "Failed": 2, "Skipped": 1}, res.States)
	require.NoError(t, json.Unmarshal(get(t, r, res.JSON), &rs))
	require.Equal(t, "final: AuthFailed: login refused", rs[1].LastError)
	require.Equal(t, report.Failed, rs[2].State)
	require.Equal(t, "readiness: not ready: login: source refused the login", rs[2].LastError)
	require.Equal(t, report.Skipped, rs[3].State)
	rows, err := csv.NewReader(bytes.NewReader(get(t, r, res.CSV))).ReadAll()
	require.NoError(t, err)
	last := slices.Index(report.Columns, "last_error")
	require.Equal(t, "readiness: not ready: login: source refused the login", rows[3][last])
}
