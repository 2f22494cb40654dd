package activities_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/profile"
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
	t.Run("keeps-bytes", func(t *testing.T) { throttledTarget(t, false, estate.ServerOptions{}) })
	t.Run("exchange", func(t *testing.T) { throttledTarget(t, true, estate.ServerOptions{}) })
	// The server goes on storing the APPENDs in flight for a while after
	// it throttled, each slowly, and the back-off is short: a pass that
	// gave up on them at once would reconcile the target before they are
	// stored, and append them again.
	t.Run("exchange-slow-to-drop", func(t *testing.T) {
		throttledTarget(t, true, estate.ServerOptions{ThrottleDrop: time.Second, StragglerDelay: 40 * time.Millisecond})
	})
}

// throttledTarget is TestThrottledTargetIsWaitedFor against a target that
// keeps bytes or one that behaves like Exchange Online (re-rendered MIME:
// the messages appended before the throttled one but not answered are
// recognised by Message-ID and INTERNALDATE only).
func throttledTarget(t *testing.T, exchange bool, opts estate.ServerOptions) {
	e := estate.Generate(estate.Spec{Seed: 23, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "THR", Name: "Throttled", Mailboxes: 1, MeanMessages: 120}}})
	mb := e.Orgs[0].Mailboxes[0]
	const every = 25
	backoff := 150 * time.Millisecond
	if opts.ThrottleDrop > 0 {
		backoff = 10 * time.Millisecond
	}
	var mu sync.Mutex
	appends, throttles := 0, 0
	opts.Exchange = exchange
	opts.Throttle = func() (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		appends++
		if appends%every == 0 {
			throttles++
			return backoff, true
		}
		return 0, false
	}
	a, _ := estateActivities(t, e, opts, activities.Limits{MaxLargeItems: -1, AppendWindow: 8})
	if exchange {
		p, err := profile.Lookup(profile.ExchangeOnline)
		require.NoError(t, err)
		tgt := a.Endpoints["target"]
		tgt.Target, tgt.WellKnown, tgt.SizeCeiling, tgt.PerMailbox = p.Target, p.WellKnown, p.MessageSizeCeiling, p.MaxConnectionsPerMailbox
	}
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

// TestThrottledValidationIsWaitedFor: a target that throttles the FETCHes
// of a validation (twice) is waited out as asked, and the validation then
// finds the copy exact; before, a throttled check failed its attempt and
// waited for Temporal's retry instead of the server's back-off.
func TestThrottledValidationIsWaitedFor(t *testing.T) {
	e := estate.Generate(estate.Spec{Seed: 24, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "THV", Name: "Throttled checks", Mailboxes: 1, MeanMessages: 40}}})
	mb := e.Orgs[0].Mailboxes[0]
	var mu sync.Mutex
	checking, fetches, throttles := false, 0, 0
	a, _ := estateActivities(t, e, estate.ServerOptions{ThrottleFetch: func() (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		if !checking {
			return 0, false
		}
		fetches++
		if fetches%3 == 2 && throttles < 2 {
			throttles++
			return 50 * time.Millisecond, true
		}
		return 0, false
	}}, activities.Limits{MaxLargeItems: -1, AppendWindow: 8})
	var suite sdktest.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.SetTestTimeout(time.Minute)
	env.RegisterActivity(a)
	m := activities.MailboxRef{Org: "THV", Address: mb.Address, SourceEndpoint: "source", SourceUser: mb.User, TargetEndpoint: "target", TargetUser: mb.User}
	_, err := env.ExecuteActivity(a.TransferMailbox, activities.TransferInput{Mailbox: m, Pass: "prestage"})
	require.NoError(t, err)
	mu.Lock()
	checking = true
	mu.Unlock()
	v, err := env.ExecuteActivity(a.ValidateMailbox, activities.ValidateInput{Mailbox: m})
	require.NoError(t, err)
	var val activities.ValidateResult
	require.NoError(t, v.Get(&val))
	require.True(t, val.OK, "%+v", val)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2, throttles)
}
