package entra_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/entra"
	"github.com/mailshift/mailshift/internal/entra/entratest"
)

func authority(t *testing.T) *entratest.Authority {
	t.Helper()
	a, err := entratest.New("tenant-1", "app-1", "s3cret", "app@contoso.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func source(t *testing.T, a *entratest.Authority, mutate func(*entra.Config)) *entra.Source {
	t.Helper()
	c := entra.Config{TenantID: a.TenantID, ClientID: a.ClientID, ClientSecret: a.Secret, AuthorityHost: a.Host(), RootCAs: a.RootCAs()}
	if mutate != nil {
		mutate(&c)
	}
	s, err := entra.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokensComeFromTheClientCredentialsFlowAndAreCached: azidentity's
// real flow against a local authority; later logins reuse the token, and
// one about to expire is replaced.
func TestTokensComeFromTheClientCredentialsFlowAndAreCached(t *testing.T) {
	a := authority(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := source(t, a, nil)
	first, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(first, ".") != 2 {
		t.Fatalf("not a JWT: %q", first)
	}
	for range 5 {
		if tok, err := s.Token(ctx); err != nil || tok != first {
			t.Fatalf("second token: %v (same: %v)", err, tok == first)
		}
	}
	if n := a.TokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests for 6 logins, want 1", n)
	}
	if s.ID() != "oauth2:tenant-1/app-1" {
		t.Fatalf("ID %q", s.ID())
	}

	// Tokens that live 4 minutes are under the renewal margin: each login
	// asks again.
	a.Lifetime = 4 * time.Minute
	s = source(t, a, nil)
	for range 2 {
		if _, err := s.Token(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.TokenRequests.Load(); n < 3 {
		t.Fatalf("%d token requests, want a new one for a token about to expire", n)
	}
}

// TestRefusalsNameTheirCause: a wrong secret, an unknown app and an
// unknown tenant are permanent and say which; an authority that cannot
// be reached is not permanent.
func TestRefusalsNameTheirCause(t *testing.T) {
	a := authority(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		name   string
		mutate func(*entra.Config)
		want   string
	}{
		{"wrong secret", func(c *entra.Config) { c.ClientSecret = "nope" }, "client secret is wrong"},
		{"unknown app", func(c *entra.Config) { c.ClientID = "app-2" }, "application (client_id) is not found"},
		{"unknown tenant", func(c *entra.Config) { c.TenantID = "tenant-9" }, "tenant is unknown"},
	} {
		_, err := source(t, a, c.mutate).Token(ctx)
		var e *entra.Error
		if !errors.As(err, &e) || !e.Permanent() || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (permanent %v), want a permanent error with %q", c.name, err, e != nil && e.Permanent(), c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the secret: %v", c.name, err)
		}
	}
	down := source(t, a, func(c *entra.Config) { c.AuthorityHost = "https://127.0.0.1:1/" })
	_, err := down.Token(ctx)
	var e *entra.Error
	if !errors.As(err, &e) || e.Permanent() {
		t.Errorf("authority down: %v, want an error that is not permanent", err)
	}
}
