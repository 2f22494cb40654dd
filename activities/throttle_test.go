package activities_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/transfer"
)

// TestThrottledTargetIsWaitedFor: a target that throttles as Exchange
// Online does (every 25th APPEND answered "BAD Request is throttled.
// Suggested Backoff Time: 150 milliseconds", then the connection dropped)
// gets every message once: the pass waits as asked, goes on from its
// checkpoint on new connections, counts no item as bad and says how often
// and how long it was throttled. Before, each throttled message was
// skipped as rejected.
func TestThrottledTargetIsWaitedFor(t *testing.T) {
	e := estate.Generate(estate.Spec{Seed: 23, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "THR", Name: "Throttled", Mailboxes: 1, MeanMessages: 120}}})
	mb := e.Orgs[0].Mailboxes[0]
	const every, backoff = 25, 150 * time.Millisecond
	var mu sync.Mutex
	appends, throttles := 0, 0
	a, _ := estateActivities(t, e, estate.ServerOptions{Throttle: func() (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		appends++
		if appends%every == 0 {
			throttles++
			return backoff, true
		}
		return 0, false
	}}, activities.Limits{MaxLargeItems: -1, AppendWindow: 8})
	var suite sdktest.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.SetTestTimeout(2 * time.Minute)
	env.RegisterActivity(a)
	m := activities.MailboxRef{Org: "THR", Address: mb.Address, SourceEndpoint: "source", SourceUser: mb.User, TargetEndpoint: "target", TargetUser: mb.User}
	v, err := env.ExecuteActivity(a.TransferMailbox, activities.TransferInput{Mailbox: m, Pass: "prestage"})
	require.NoError(t, err)
	var r activities.TransferResult
	require.NoError(t, v.Get(&r))

	total := 0
	for _, f := range mb.Folders {
		total += len(f.Messages)
	}
	require.Greater(t, total, 2*every, "the mailbox is large enough to be throttled more than once")
	mu.Lock()
	n := throttles
	mu.Unlock()
	require.Positive(t, n)
	require.Equal(t, n, r.Throttled, "every throttling answer is counted once")
	require.Equal(t, time.Duration(n)*backoff, r.ThrottledFor)
	require.Zero(t, r.SkippedTotal, "a throttled message is not a bad item: %v", r.Skipped)

	v, err = env.ExecuteActivity(a.ValidateMailbox, activities.ValidateInput{Mailbox: m, Policy: activities.Policy{Validation: string(transfer.LevelFull)}})
	require.NoError(t, err)
	var val activities.ValidateResult
	require.NoError(t, v.Get(&val))
	require.True(t, val.OK, "%+v", val)
	require.Equal(t, total, val.Messages, "every message once: no loss, no duplicate")
}
