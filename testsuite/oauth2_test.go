package testsuite

import (
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/entra/entratest"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/workerapp"
)

// TestOAuth2TargetThroughTheWorker: a worker whose target endpoint has
// auth oauth2 gets one app-only token from a test Entra authority through
// azidentity's real client-credentials flow, and with it checks, copies
// and validates two mailboxes into a Dovecot that validates the token
// locally (one token for the whole domain, as Exchange Online takes it).
// With a wrong client secret, readiness says so per mailbox and a copy
// fails at once, not retried, and nothing reaches the target.
func TestOAuth2TargetThroughTheWorker(t *testing.T) {
	est := estate.Generate(estate.Spec{Seed: 17, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "OAU", Name: "Token Trust", Mailboxes: 2, MeanMessages: 30}}})
	mbs := est.Mailboxes()
	_, domain, ok := strings.Cut(mbs[0].User, "@")
	require.True(t, ok, "estate users have a domain: %s", mbs[0].User)
	auth, err := entratest.New("tenant-oau", "app-oau", "right-secret", "mailshift-app@"+domain)
	require.NoError(t, err)
	defer auth.Close()
	caFile := filepath.Join(t.TempDir(), "authority-ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: auth.Server.Certificate().Raw}), 0o644))

	src := dovecottest.StartT(t, dovecottest.Options{Name: "oau-src", MailFsync: "never"})
	require.NoError(t, dovecottest.LoadEstate(src, mbs))
	tgt := dovecottest.StartT(t, dovecottest.Options{Name: "oau-tgt", MailFsync: "never",
		OAuth2: &dovecottest.OAuth2{Issuer: auth.Issuer(), UsernameFormat: "%Ld"}})
	require.NoError(t, tgt.AddOAuth2Key("RS256", auth.KeyID(), auth.PublicKeyPEM()))
	for _, mb := range mbs {
		// The target's passwords are never used: the worker has none.
		require.NoError(t, tgt.AddUser(mb.User, "not-the-password-"+mb.Password))
	}

	worker := func(secret string) *activities.Activities {
		t.Helper()
		t.Setenv("OAU_CLIENT_SECRET", secret)
		cfg, err := config.Load(workerConfig(t, est, src.URL(), tgt.URL(), 4, ""))
		require.NoError(t, err)
		ep := cfg.Endpoints["target"]
		ep.Auth, ep.Passwords = config.AuthOAuth2, ""
		ep.OAuth2 = &config.OAuth2{TenantID: auth.TenantID, ClientID: auth.ClientID, Credential: "secret",
			ClientSecret: "env:OAU_CLIENT_SECRET", AuthorityHost: auth.Host(), AuthorityCAFile: caFile}
		cfg.Endpoints["target"] = ep
		acts, err := workerapp.Build(cfg, nil)
		require.NoError(t, err)
		return acts
	}
	var suite sdktest.WorkflowTestSuite
	suite.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	run := func(acts *activities.Activities, fn, out any, args ...any) error {
		t.Helper()
		aenv := suite.NewTestActivityEnvironment()
		aenv.SetTestTimeout(2 * time.Minute)
		aenv.RegisterActivity(acts)
		v, err := aenv.ExecuteActivity(fn, args...)
		if err == nil {
			require.NoError(t, v.Get(out))
		}
		return err
	}
	ref := func(mb *estate.Mailbox) activities.MailboxRef {
		return activities.MailboxRef{Org: "OAU", Address: mb.Address, SourceEndpoint: "source", SourceUser: mb.User, TargetEndpoint: "target", TargetUser: mb.User}
	}

	// A wrong secret first: nothing may reach the target.
	bad := worker("wrong-secret")
	var r activities.ReadinessResult
	require.NoError(t, run(bad, bad.CheckReadiness, &r, ref(mbs[0]), activities.Policy{}))
	require.False(t, r.Ready)
	require.Len(t, r.Problems, 1)
	require.Equal(t, activities.ProblemLogin, activities.ProblemKind(r.Problems[0]), r.Problems[0])
	require.Contains(t, r.Problems[0], "the client secret is wrong (AADSTS7000215)")
	require.NotContains(t, r.Problems[0], "wrong-secret")
	var tr activities.TransferResult
	err = run(bad, bad.TransferMailbox, &tr, activities.TransferInput{Mailbox: ref(mbs[0]), Pass: "prestage"})
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.True(t, ae.NonRetryable(), "a refused secret is not retried: %v", err)
	require.Equal(t, activities.ErrTypeAuth, ae.Type())
	require.NotContains(t, tgt.Log(1<<20), "Login: user=", "no login reached the target")

	good := worker("right-secret")
	before := auth.TokenRequests.Load()
	for _, mb := range mbs {
		require.NoError(t, run(good, good.CheckReadiness, &r, ref(mb), activities.Policy{}))
		require.True(t, r.Ready, "%s: %v", mb.Address, r.Problems)
		require.NoError(t, run(good, good.TransferMailbox, &tr, activities.TransferInput{Mailbox: ref(mb), Pass: "prestage"}))
		require.EqualValues(t, r.Messages, tr.Copied, mb.Address)
		var v activities.ValidateResult
		require.NoError(t, run(good, good.ValidateMailbox, &v, activities.ValidateInput{Mailbox: ref(mb)}))
		require.True(t, v.OK, "%s: %+v", mb.Address, v)
		require.EqualValues(t, r.Messages, v.Messages)
	}
	activities.CloseIdle(good)
	require.EqualValues(t, 1, auth.TokenRequests.Load()-before, "one token for every login of the worker")
	log := tgt.Log(1 << 20)
	require.Contains(t, log, "method=XOAUTH2")
	// The APPEND pipeline logs in with the token as well: no login of any
	// kind failed on the target.
	require.NotContains(t, log, "auth failed")
	require.NotContains(t, log, "method=PLAIN")
}
