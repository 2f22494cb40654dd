package imapconn_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/entra/entratest"
	"github.com/mailshift/mailshift/internal/imapconn"
)

// TestTokenLoginsWithDovecot: Dovecot validates the tokens of a test
// Entra authority locally, comparing domains only, as Exchange Online
// takes one app-only token for every mailbox. One token opens two
// mailboxes of the domain (XOAUTH2); an expired one, one from another
// issuer, one signed with another key and one for another domain are each
// refused, with a permanent authentication error that names the mailbox.
// OAUTHBEARER is used where the server offers only that.
func TestTokenLoginsWithDovecot(t *testing.T) {
	auth, err := entratest.New("tenant-1", "app-1", "s3cret", "app@contoso.test")
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	inst := dovecottest.StartT(t, dovecottest.Options{MailFsync: "never",
		OAuth2: &dovecottest.OAuth2{Issuer: auth.Issuer(), UsernameFormat: "%Ld"}})
	if err := inst.AddOAuth2Key("RS256", auth.KeyID(), auth.PublicKeyPEM()); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"ann@contoso.test", "bob@contoso.test", "eve@fabrikam.test"} {
		if err := inst.AddUser(u, "unused-password"); err != nil {
			t.Fatal(err)
		}
	}
	addr, err := imapconn.ParseAddress(inst.URL())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	login := func(user, token string) imapconn.Login {
		return imapconn.Login{Username: user, Credential: "oauth2:test", Tenant: auth.TenantID, Token: func(context.Context) (string, error) { return token, nil }}
	}

	good := auth.Mint(nil)
	for _, u := range []string{"ann@contoso.test", "bob@contoso.test"} {
		c, err := imapconn.Dial(ctx, addr, login(u, good), imapconn.Options{})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if _, err := c.Folders(); err != nil {
			t.Fatalf("%s: list: %v", u, err)
		}
		c.Close()
	}

	// The APPEND pipeline logs in with the token too (its own protocol
	// code), and answers a refusal's challenge so the server's NO comes.
	app, err := imapconn.DialAppender(ctx, addr, login("ann@contoso.test", good), imapconn.Options{}, 4)
	if err != nil {
		t.Fatalf("appender: %v", err)
	}
	msg := "Subject: token\r\nMessage-ID: <token@test>\r\n\r\nhello\r\n"
	if _, err := app.Append("INBOX", nil, time.Now(), int64(len(msg)), strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if err := app.Flush(); err != nil {
		t.Fatal(err)
	}
	if res := <-app.Results(); !res.OK {
		t.Fatalf("append through a token login: %+v", res)
	}
	app.Close()
	_, err = imapconn.DialAppender(ctx, addr, login("ann@contoso.test", auth.MintForeign(nil)), imapconn.Options{}, 4)
	var refusedApp *imapconn.TokenRefusedError
	var ieApp *imapconn.Error
	if !errors.As(err, &refusedApp) || !errors.As(err, &ieApp) || ieApp.Kind != imapconn.KindAuth || !ieApp.Permanent {
		t.Fatalf("appender with a foreign-key token: %v", err)
	}

	// Dovecot answers every bad token alike; the cause is read from the
	// token itself where it shows one.
	for _, c := range []struct {
		name, user, token, cause string
	}{
		{"expired", "ann@contoso.test", auth.Mint(map[string]any{"iat": time.Now().Add(-2 * time.Hour).Unix(), "nbf": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}),
			"the token expired at "},
		{"another issuer", "ann@contoso.test", auth.Mint(map[string]any{"iss": "https://sts.elsewhere.test/x/v2.0"}),
			"the token's issuer https://sts.elsewhere.test/x/v2.0 is not the configured tenant_id tenant-1's"},
		{"another key", "ann@contoso.test", auth.MintForeign(nil),
			"the server refused a current token of the configured tenant for mailbox ann@contoso.test (XOAUTH2: "},
		{"another domain", "eve@fabrikam.test", good,
			"the token names app@contoso.test, of another domain than the mailbox's (fabrikam.test)"},
	} {
		_, err := imapconn.Dial(ctx, addr, login(c.user, c.token), imapconn.Options{})
		var ie *imapconn.Error
		var refused *imapconn.TokenRefusedError
		if !errors.As(err, &ie) || ie.Kind != imapconn.KindAuth || !ie.Permanent || !errors.As(err, &refused) {
			t.Errorf("%s: %v, want a permanent %s error with the server's refusal", c.name, err, imapconn.KindAuth)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		if !strings.Contains(err.Error(), c.user) || !strings.Contains(err.Error(), "XOAUTH2") {
			t.Errorf("%s: %v: the error does not name the mailbox and the mechanism", c.name, err)
		}
		if strings.Contains(err.Error(), c.token) {
			t.Errorf("%s: the error shows the token", c.name)
		}
		if !strings.Contains(err.Error(), c.cause) {
			t.Errorf("%s: %v: want the cause %q", c.name, err, c.cause)
		}
	}

	// A token source that fails permanently is reported before any
	// connection; one that may recover is retryable.
	for _, permanent := range []bool{true, false} {
		l := imapconn.Login{Username: "ann@contoso.test", Token: func(context.Context) (string, error) { return "", &sourceError{permanent} }}
		_, err := imapconn.Dial(ctx, addr, l, imapconn.Options{})
		var ie *imapconn.Error
		if !errors.As(err, &ie) || ie.Permanent != permanent || !strings.Contains(err.Error(), "no token here") {
			t.Errorf("token source failing (permanent %v): %v", permanent, err)
		}
	}
}

// TestOAuthBearerWhereOnlyItIsOffered: a server that offers OAUTHBEARER
// and not XOAUTH2 gets OAUTHBEARER.
func TestOAuthBearerWhereOnlyItIsOffered(t *testing.T) {
	auth, err := entratest.New("tenant-1", "app-1", "s3cret", "ann@contoso.test")
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	inst := dovecottest.StartT(t, dovecottest.Options{MailFsync: "never", OAuth2: &dovecottest.OAuth2{Issuer: auth.Issuer()},
		ExtraConfig: "auth_mechanisms = plain login oauthbearer\n"})
	if err := inst.AddOAuth2Key("RS256", auth.KeyID(), auth.PublicKeyPEM()); err != nil {
		t.Fatal(err)
	}
	if err := inst.AddUser("ann@contoso.test", "unused-password"); err != nil {
		t.Fatal(err)
	}
	addr, _ := imapconn.ParseAddress(inst.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token := auth.Mint(nil)
	c, err := imapconn.Dial(ctx, addr, imapconn.Login{Username: "ann@contoso.test", Token: func(context.Context) (string, error) { return token, nil }}, imapconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Has("AUTH=XOAUTH2") {
		t.Fatal("the server still offers XOAUTH2; the test shows nothing")
	}
	c.Close()
	app, err := imapconn.DialAppender(ctx, addr, imapconn.Login{Username: "ann@contoso.test", Token: func(context.Context) (string, error) { return token, nil }}, imapconn.Options{}, 4)
	if err != nil {
		t.Fatalf("appender over OAUTHBEARER: %v", err)
	}
	app.Close()
	if n := strings.Count(inst.Log(1<<16), "method=OAUTHBEARER"); n != 2 {
		t.Errorf("%d OAUTHBEARER logins in the server's log, want 2:\n%s", n, inst.Log(2000))
	}
	if !strings.Contains(inst.Log(1<<16), "method=OAUTHBEARER") {
		t.Errorf("no OAUTHBEARER login in the server's log:\n%s", inst.Log(2000))
	}
}

type sourceError struct{ permanent bool }

func (e *sourceError) Error() string   { return "no token here" }
func (e *sourceError) Permanent() bool { return e.permanent }
