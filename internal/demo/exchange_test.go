package demo

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/profile"
)

// `starter demo --target exchange-online` runs to validation against the
// Exchange Online-like target: its endpoint has the profile, one
// organization's mailboxes are German, the target throttles, keywords are
// reported, and the independent check (by content, folders mapped per
// language) finds no problem.
func TestDemoExchangeOnlineTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	dir := t.TempDir()
	start := time.Now()
	err := Run(ctx, Options{Seed: 3, Scale: 0.15, TemporalAddr: "127.0.0.1:0", UIAddr: "off", WorkDir: dir, Target: TargetExchangeOnline}, &out)
	s := out.String()
	t.Log(s)
	require.NoError(t, err, s)
	for _, want := range []string{
		ExchangeTarget, "German mailboxes (target_language: de): GP7", "Completed", "TOTAL", "staged",
		"throttled the copy", "copied without theirs", "reports/", "keywords.csv",
		"independent check (source vs target, by content as read", ", 0 problems", "demo finished",
	} {
		require.Contains(t, s, want)
	}
	require.Regexp(t, regexp.MustCompile(`keywords: the target keeps none; [1-9]\d* messages`), s)
	t.Logf("demo took %s", time.Since(start).Round(time.Second))
}

// Setup with the Exchange Online-like target: the target endpoint has the
// profile, the second organization's policy and mailboxes are German,
// the others English; an unknown target is refused.
func TestSetupExchangeTarget(t *testing.T) {
	_, err := Setup(context.Background(), Options{Target: "gmail", WorkDir: t.TempDir()})
	require.ErrorContains(t, err, `demo target "gmail"`)
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := Setup(ctx, Options{Seed: 2, Scale: 0.05, TemporalAddr: "127.0.0.1:0", UIAddr: "off", WorkDir: t.TempDir(), Target: TargetExchangeOnline})
	require.NoError(t, err)
	defer env.Close()
	require.True(t, env.Exchange)
	require.Equal(t, profile.ExchangeOnline, env.Config.Endpoints["target"].Profile)
	require.Empty(t, env.Config.Endpoints["source"].Profile)
	for i, in := range env.Inputs {
		want, lang := "", "en"
		if i == ExchangeGermanOrg {
			want, lang = "de", "de"
		}
		require.Equal(t, want, in.Policy.TargetLanguage, in.Code)
		require.Equal(t, lang, env.Language(env.Estate.Orgs[i].Mailboxes[0].User))
	}
}
