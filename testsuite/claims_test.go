package testsuite

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/workflows"
)

// TestSharedMailboxHasOneWriter starts two organizations at once whose
// inventories both list one target mailbox (the 289 duplicates came
// from exactly this). One organization claims the mailbox at readiness and
// migrates it; the other reports it not ready, naming the holder, and
// migrates the rest. The independent check then finds every message of the
// estate in the target once, and the claims are released when both end.
func TestSharedMailboxHasOneWriter(t *testing.T) {
	ctx, env := startDemo(t, 4*time.Minute, demo.Options{Seed: 61, Scale: 0.3, Concurrency: 4})
	a, b := env.Inputs[0], env.Inputs[1]
	shared := a.Mailboxes[0]
	b.Mailboxes = append(b.Mailboxes, shared)

	for _, in := range []workflows.OrganizationInput{a, b} {
		_, err := control.Start(ctx, env.Client, workflows.TaskQueue, in)
		require.NoError(t, err)
	}
	// The refused organization may fall under its readiness threshold and
	// wait for an operator: overriding lets it go on without the mailbox.
	deadline := time.Now().Add(3 * time.Minute)
	for ended := 0; ended < 2; {
		require.True(t, time.Now().Before(deadline), "both organizations must end within 3 minutes")
		ended = 0
		for _, code := range []string{a.Code, b.Code} {
			p, err := control.Progress(ctx, env.Client, code)
			if err != nil {
				continue // between runs, or ended: Watch below has the result
			}
			switch {
			case p.Phase.Terminal():
				ended++
			case p.Phase == workflows.PhaseReadinessBlocked:
				_, err := control.OverrideReadiness(ctx, env.Client, code, "test", "shared mailbox held by the other organization")
				require.NoError(t, err)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	ps, err := control.Watch(ctx, env.Client, []string{a.Code, b.Code}, 250*time.Millisecond, nil)
	require.NoError(t, err)

	// Exactly one organization failed the shared mailbox, as claimed by the
	// other; nothing else failed.
	var refused []string
	for _, p := range ps {
		for _, f := range p.Failures {
			require.True(t, strings.EqualFold(f.Address, shared.Address), "%s: unexpected failure %+v", p.Organization, f)
			require.Contains(t, f.Error, activities.ProblemClaimed+": target mailbox "+shared.TargetUser)
			other := a.Code
			if p.Organization == a.Code {
				other = b.Code
			}
			require.Contains(t, f.Error, "by organization "+other)
			refused = append(refused, p.Organization)
		}
	}
	require.Len(t, refused, 1, "one organization must hold the shared mailbox, the other be refused: %+v", ps)

	// The two organizations' mailboxes (the demo's third is not started),
	// the shared one once.
	var rep estate.Report
	want := 0
	for _, org := range env.Estate.Orgs[:2] {
		for i := range org.Mailboxes {
			mb := &org.Mailboxes[i]
			r, err := estate.Verify(ctx, env.Source.Account(mb), env.Target.Account(mb), estate.VerifyOptions{MaxMessageSize: int64(env.Config.Limits.MaxMessageSize)})
			require.NoError(t, err)
			rep.Add(r)
			for _, f := range mb.Folders {
				want += len(f.Messages)
			}
		}
	}
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, want, rep.Messages, "source messages checked (%d of them expected absent: over the limit, staged)", rep.ExpectedMissing)

	left, err := env.Activities.Staging.List(ctx, "claims/")
	require.NoError(t, err)
	require.Empty(t, left, "every claim is released when its organization ends")
}
