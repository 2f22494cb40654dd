package testsuite

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/workerapp"
)

// TestReadinessOnDovecotSeesQuotaAndChangesNothing checks mailboxes against
// a real Dovecot target whose quota is too small for one of them: that
// mailbox is not ready (quota, with figures), the other is, and neither
// server's files changed (readiness only reads).
func TestReadinessOnDovecotSeesQuotaAndChangesNothing(t *testing.T) {
	est := estate.Generate(estate.Spec{Seed: 5, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "RDY", Name: "Ready Trust", Mailboxes: 2, MeanMessages: 120}}})
	mbs := est.Mailboxes()
	src := dovecottest.StartT(t, dovecottest.Options{Name: "rdy-src", MailFsync: "never"})
	require.NoError(t, dovecottest.LoadEstate(src, mbs))
	size := func(mb *estate.Mailbox) int64 {
		var n int64
		for _, f := range mb.Folders {
			for _, m := range f.Messages {
				n += int64(len(m.Raw))
			}
		}
		return n
	}
	var small int64 = 1 << 40
	for _, mb := range mbs {
		small = min(small, size(mb))
	}
	// Room for the smaller mailbox (plus margin), not for the larger one.
	quota := small*13/10 + 1
	tgt := dovecottest.StartT(t, dovecottest.Options{Name: "rdy-tgt", MailFsync: "never", Separator: '/', QuotaStorage: quota})
	for _, mb := range mbs {
		require.NoError(t, tgt.AddUser(mb.User, mb.Password))
	}
	cfg, err := config.Load(workerConfig(t, est, src.URL(), tgt.URL(), 4, ""))
	require.NoError(t, err)
	acts, err := workerapp.Build(cfg, nil)
	require.NoError(t, err)

	before := snapshot(t, src.MailRoot(), tgt.MailRoot())
	ready := map[string]activities.ReadinessResult{}
	var suite sdktest.WorkflowTestSuite
	suite.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	aenv := suite.NewTestActivityEnvironment()
	aenv.SetTestTimeout(time.Minute)
	aenv.RegisterActivity(acts)
	for _, mb := range mbs {
		v, err := aenv.ExecuteActivity(acts.CheckReadiness, activities.MailboxRef{Org: "RDY", Address: mb.Address,
			SourceEndpoint: "source", SourceUser: mb.User, TargetEndpoint: "target", TargetUser: mb.User}, activities.Policy{})
		require.NoError(t, err)
		var r activities.ReadinessResult
		require.NoError(t, v.Get(&r))
		ready[mb.Address] = r
		require.EqualValues(t, size(mb), r.Bytes, "readiness measures the mailbox")
		require.InDelta(t, quota, r.QuotaLimit, 1024, "Dovecot reports the quota in whole KiB")
	}
	var notReady []string
	for addr, r := range ready {
		if !r.Ready {
			notReady = append(notReady, addr)
			require.Len(t, r.Problems, 1)
			require.True(t, strings.HasPrefix(r.Problems[0], "quota: the mailbox holds"), r.Problems[0])
			require.Equal(t, activities.ProblemQuota, activities.ProblemKind(r.Problems[0]))
		}
	}
	require.Len(t, notReady, 1, "exactly the larger mailbox does not fit: %v", ready)

	// The batch the Organization workflow runs gives the same answers, in
	// page order, and a mailbox that cannot log in fails alone.
	page := []activities.MailboxSpec{{Address: "ghost@rdy.example", SourceUser: "ghost", TargetUser: "ghost"}}
	for _, mb := range mbs {
		page = append(page, activities.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
	}
	v, err := aenv.ExecuteActivity(acts.CheckReadinessBatch, activities.ReadinessBatchInput{
		Org: "RDY", SourceEndpoint: "source", TargetEndpoint: "target", Mailboxes: page, Parallel: 2,
	})
	require.NoError(t, err)
	var briefs []activities.ReadinessBrief
	require.NoError(t, v.Get(&briefs))
	require.Len(t, briefs, len(page))
	require.False(t, briefs[0].Ready)
	require.Equal(t, "ghost@rdy.example", briefs[0].Address)
	require.Len(t, briefs[0].Problems, 1)
	require.Equal(t, activities.ProblemLogin, activities.ProblemKind(briefs[0].Problems[0]), briefs[0].Problems[0])
	for k, mb := range mbs {
		r, b := ready[mb.Address], briefs[k+1]
		require.Equal(t, r.Ready, b.Ready, mb.Address)
		require.Equal(t, r.Bytes, b.Bytes, mb.Address)
		require.Equal(t, r.Messages, b.Messages, mb.Address)
		require.Equal(t, r.Problems, b.Problems, mb.Address)
	}
	require.Equal(t, before, snapshot(t, src.MailRoot(), tgt.MailRoot()), "readiness changed files on a server")
}

// snapshot lists the mail files (name and size) under the given roots;
// Dovecot's own index and log files are left out, as reading may refresh them.
func snapshot(t *testing.T, roots ...string) string {
	t.Helper()
	var lines []string
	for _, root := range roots {
		require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() || strings.HasPrefix(name, "dovecot") || strings.HasSuffix(name, ".log") {
				return nil
			}
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			lines = append(lines, rel+" "+strconv.FormatInt(fi.Size(), 10))
			return nil
		}))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
