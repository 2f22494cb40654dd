package estate

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
)

var _ interface {
	AuthenticateMechanisms() []string
	Authenticate(string) (sasl.Server, error)
} = (*session)(nil)

// AuthenticateMechanisms are PLAIN and, with ServerOptions.Bearer, XOAUTH2.
func (s *session) AuthenticateMechanisms() []string {
	if s.srv.opts.Bearer != nil {
		return []string{sasl.Plain, "XOAUTH2"}
	}
	return []string{sasl.Plain}
}

// Authenticate runs PLAIN as imapserver would, and XOAUTH2 against
// ServerOptions.Bearer.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	switch {
	case mech == sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "SASL identity not supported"}
			}
			return s.Login(username, password)
		}), nil
	case mech == "XOAUTH2" && s.srv.opts.Bearer != nil:
		return &xoauth2Server{s: s}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

// xoauth2Server is the server side of XOAUTH2: "user=U\x01auth=Bearer
// T\x01\x01". A refusal sends Exchange's error challenge first; the
// client's empty answer then gets the NO.
type xoauth2Server struct {
	s       *session
	refused bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.refused {
		return nil, false, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "AUTHENTICATE failed."}
	}
	user, token, err := parseXOAUTH2(resp)
	if err == nil {
		err = x.s.srv.opts.Bearer(user, token)
	}
	var a *account
	if err == nil {
		if a = x.s.srv.account(user); a == nil {
			err = fmt.Errorf("no mailbox %s", user)
		}
	}
	if err != nil {
		x.refused = true
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/"}`), false, nil
	}
	x.s.acct = a
	x.s.UserSession = imapmemserver.NewUserSession(a.user)
	return nil, true, nil
}

func parseXOAUTH2(b []byte) (user, token string, err error) {
	for _, f := range bytes.Split(b, []byte{1}) {
		k, v, _ := strings.Cut(string(f), "=")
		switch k {
		case "user":
			user = v
		case "auth":
			token, _ = strings.CutPrefix(v, "Bearer ")
		}
	}
	if user == "" || token == "" {
		return "", "", fmt.Errorf("malformed XOAUTH2 response")
	}
	return user, token, nil
}
