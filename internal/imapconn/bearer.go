package imapconn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// SASL mechanisms for bearer tokens, as capabilities name them.
const (
	capXOAUTH2     = "AUTH=XOAUTH2"
	capOAUTHBEARER = "AUTH=OAUTHBEARER"
)

// TokenRefusedError is a server's answer to a bearer token it did not
// accept: an error challenge (RFC 7628's JSON, or XOAUTH2's).
type TokenRefusedError struct {
	Mailbox   string
	Mechanism string
	// Detail is what the server said, decoded (e.g. {"status":"401",...}).
	Detail string
	// Cause is what the token itself shows to be wrong (tokenCause), or
	// "" for a current token of the right tenant.
	Cause string
}

func (e *TokenRefusedError) Error() string {
	if e.Cause != "" {
		return fmt.Sprintf("the server refused the token for mailbox %s (%s: %s): %s", e.Mailbox, e.Mechanism, e.Detail, e.Cause)
	}
	return fmt.Sprintf("the server refused a current token of the configured tenant for mailbox %s (%s: %s): the app has no access to this mailbox (on Exchange Online: Add-MailboxPermission -AccessRights FullAccess for the app's service principal is missing), the mailbox does not exist, or the server does not trust the token's signing key",
		e.Mailbox, e.Mechanism, e.Detail)
}

// refused is the error for a refused token, with what the token shows.
func refused(mailbox, mech, detail, token, tenant string) *TokenRefusedError {
	return &TokenRefusedError{Mailbox: mailbox, Mechanism: mech, Detail: detail, Cause: tokenCause(token, mailbox, tenant, time.Now())}
}

// tokenFor asks login for a token. A failure that a retry cannot mend
// (the token source says Permanent: a secret refused, a tenant or app
// unknown) is KindAuth and permanent.
func tokenFor(ctx context.Context, login Login) (string, error) {
	token, err := login.Token(ctx)
	if err == nil {
		return token, nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	var p interface{ Permanent() bool }
	permanent := errors.As(err, &p) && p.Permanent()
	kind := KindUnavailable
	if permanent {
		kind = KindAuth
	}
	return "", &Error{Kind: kind, Op: "token for " + login.Username, Permanent: permanent, Err: err}
}

// bearerClient picks the mechanism the server offers for a bearer token:
// XOAUTH2 (Exchange Online), else OAUTHBEARER.
func bearerClient(c *imapclient.Client, user, token, tenant string) (sasl.Client, error) {
	caps := c.Caps()
	switch {
	case caps.Has(capXOAUTH2):
		return &xoauth2Client{user: user, token: token, tenant: tenant}, nil
	case caps.Has(capOAUTHBEARER):
		return &refusalReporter{Client: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: user, Token: token}), user: user, mech: "OAUTHBEARER", token: token, tenant: tenant}, nil
	}
	return nil, &Error{Kind: KindConfig, Op: "login as " + user, Permanent: true,
		Err: errors.New("the server offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER, so a token cannot be used (is this endpoint's auth right?)")}
}

// xoauth2Client is SASL XOAUTH2 (Google's and Microsoft's), which go-sasl
// does not have: one initial response, and any challenge is the server's
// refusal.
type xoauth2Client struct {
	user, token, tenant string
}

func (x *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next ends the exchange on the server's error challenge. XOAUTH2 wants
// an empty answer to it, but go-imap v2 beta.8 sends an empty response as
// "=", which servers reject as invalid (upstream issue 760): the caller
// closes the connection instead.
func (x *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	return nil, refused(x.user, "XOAUTH2", string(challenge), x.token, x.tenant)
}

// refusalReporter turns OAUTHBEARER's error challenge into a
// TokenRefusedError.
type refusalReporter struct {
	sasl.Client
	user, mech, token, tenant string
}

func (r *refusalReporter) Next(challenge []byte) ([]byte, error) {
	return nil, refused(r.user, r.mech, string(challenge), r.token, r.tenant)
}

// loginError classifies a failed login: a refused token, or a plain NO
// (bad credentials on most servers), is KindAuth.
func loginError(op string, addr Address, err error) error {
	var refused *TokenRefusedError
	if errors.As(err, &refused) {
		return &Error{Kind: KindAuth, Op: "authenticate to " + addr.String(), Permanent: true, Err: err}
	}
	e := Classify(op, err)
	var ce *Error
	if errors.As(e, &ce) && ce.Kind == KindRejected {
		ce.Kind = KindAuth
	}
	return e
}
