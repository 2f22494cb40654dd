package imapconn

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// clockSkew is how far the worker's clock may be from the authority's
// before a token's times are named as the cause of a refusal.
const clockSkew = 5 * time.Minute

// tokenCause reads the claims of the token a server refused (the token
// is the worker's own; it is not verified here, and never shown) and
// names the cause a server's refusal does not say: Dovecot and Exchange
// answer every bad token alike. It names what the token itself shows:
// expired or not yet valid, another tenant than the one configured,
// another audience than Exchange's, or a user of another domain than the
// mailbox's. "" when the token shows none of these: then the mailbox
// refused a current token (no access, no such mailbox, or a signing key
// the server does not trust).
func tokenCause(token, mailbox, tenant string, now time.Time) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var c struct {
		Exp, Nbf          float64
		Iss, Tid          string
		Aud               any
		UPN               string `json:"upn"`
		UniqueName        string `json:"unique_name"`
		PreferredUsername string `json:"preferred_username"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	at := func(f float64) string { return time.Unix(int64(f), 0).UTC().Format(time.RFC3339) }
	switch {
	case c.Exp != 0 && now.After(time.Unix(int64(c.Exp), 0).Add(-clockSkew/5)):
		return fmt.Sprintf("the token expired at %s (the worker's clock says %s)", at(c.Exp), now.UTC().Format(time.RFC3339))
	case c.Nbf != 0 && time.Unix(int64(c.Nbf), 0).After(now.Add(clockSkew)):
		return fmt.Sprintf("the token is not valid before %s and the worker's clock says %s: check the worker's clock", at(c.Nbf), now.UTC().Format(time.RFC3339))
	case tenant != "" && c.Tid != "" && !strings.EqualFold(c.Tid, tenant):
		return fmt.Sprintf("the token is from tenant %s, not from the configured tenant_id %s", c.Tid, tenant)
	case tenant != "" && c.Tid == "" && c.Iss != "" && !strings.Contains(strings.ToLower(c.Iss), strings.ToLower(tenant)):
		return fmt.Sprintf("the token's issuer %s is not the configured tenant_id %s's", c.Iss, tenant)
	}
	if aud := fmt.Sprint(c.Aud); strings.Contains(aud, "graph.microsoft.com") {
		return fmt.Sprintf("the token is for %s, not for Exchange Online: set the scope to https://outlook.office365.com/.default", aud)
	}
	_, domain, _ := strings.Cut(mailbox, "@")
	for _, u := range []string{c.UPN, c.UniqueName, c.PreferredUsername} {
		if _, d, ok := strings.Cut(u, "@"); ok && domain != "" && !strings.EqualFold(d, domain) {
			return fmt.Sprintf("the token names %s, of another domain than the mailbox's (%s)", u, domain)
		}
	}
	return ""
}
