package imapconn

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
}

// TestTokenCause names what a refused token itself shows, and nothing for
// a current token of the right tenant (or what is not a JWT).
func TestTokenCause(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ok := map[string]any{"iss": "https://sts.windows.net/t-1/", "tid": "t-1", "aud": "https://outlook.office365.com", "nbf": now.Add(-time.Hour).Unix(), "exp": now.Add(time.Hour).Unix()}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range ok {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	for _, c := range []struct {
		name   string
		token  string
		tenant string
		want   string
	}{
		{"current", jwt(t, ok), "t-1", ""},
		{"not a JWT", "opaque-token", "t-1", ""},
		{"expired", jwt(t, with("exp", now.Add(-time.Minute).Unix())), "t-1", "the token expired at 2026-12-05T11:59:00Z"},
		{"from the future", jwt(t, with("nbf", now.Add(time.Hour).Unix())), "t-1", "check the worker's clock"},
		{"another tenant", jwt(t, with("tid", "t-2")), "t-1", "from tenant t-2, not from the configured tenant_id t-1"},
		{"tenant unknown to the login", jwt(t, with("tid", "t-2")), "", ""},
		{"for Graph", jwt(t, with("aud", "https://graph.microsoft.com")), "t-1", "set the scope to https://outlook.office365.com/.default"},
		{"another domain", jwt(t, with("upn", "app@fabrikam.test")), "t-1", "of another domain than the mailbox's (contoso.test)"},
		{"same domain", jwt(t, with("upn", "app@contoso.test")), "t-1", ""},
	} {
		got := tokenCause(c.token, "ann@contoso.test", c.tenant, now)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
