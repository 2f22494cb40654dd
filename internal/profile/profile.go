// Package profile describes target services whose IMAP differs from a
// plain IMAP server in ways the copy and its checks must know: today
// Exchange Online. An endpoint names its profile in the worker's config
// (profile: exchange-online); see docs/exchange-online.md.
package profile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/transfer"
)

// Profile names.
const (
	// None is a server that keeps what it is given (Dovecot, Cyrus, ...).
	None = ""
	// ExchangeOnline is Microsoft 365's IMAP endpoint.
	ExchangeOnline = "exchange-online"
)

// Profile is what mailshift assumes of a target.
type Profile struct {
	Name   string
	Target transfer.Target
	// MaxMessageSize is the default largest message the target takes, and
	// MessageSizeCeiling the most it can be set to (0: no ceiling).
	MaxMessageSize     int64
	MessageSizeCeiling int64
	// MaxConnectionsPerMailbox bounds the connections one mailbox's pass
	// opens to the target (0: no bound beyond the endpoint's).
	MaxConnectionsPerMailbox int
	// WellKnown: the target has no SPECIAL-USE and its own folders have
	// names in the mailbox's language (Folders).
	WellKnown bool
}

// Exchange Online's limits, as documented and as seen in public traces
// (docs/exchange-online.md).
const (
	// ExchangeMaxMessageSize is a mailbox's default MaxReceiveSize.
	ExchangeMaxMessageSize = 35 << 20
	// ExchangeIMAPCeiling is what its IMAP endpoint takes at most, whatever
	// MaxReceiveSize says (imapsync's Office 365 preset uses it too).
	ExchangeIMAPCeiling = 45_000_000
	// ExchangeConnectionsPerMailbox: a pass uses a session and an APPEND
	// pipeline per lane; Exchange counts concurrent sessions per mailbox
	// against its throttling budget, so one lane (two sessions) is the
	// default and a validation may add one.
	ExchangeConnectionsPerMailbox = 3
)

// Lookup returns the profile named name.
func Lookup(name string) (Profile, error) {
	switch strings.ToLower(name) {
	case None:
		return Profile{}, nil
	case ExchangeOnline:
		return Profile{
			Name:                     ExchangeOnline,
			Target:                   transfer.Target{Rerenders: true, NoKeywords: true},
			MaxMessageSize:           ExchangeMaxMessageSize,
			MessageSizeCeiling:       ExchangeIMAPCeiling,
			MaxConnectionsPerMailbox: ExchangeConnectionsPerMailbox,
			WellKnown:                true,
		}, nil
	}
	return Profile{}, fmt.Errorf("unknown profile %q (known: %s)", name, ExchangeOnline)
}

// Roles are the well-known folders by the name a policy gives them in
// target_folders, in a stable order.
var Roles = []struct {
	Name string
	Attr imap.MailboxAttr
}{
	{"sent", imap.MailboxAttrSent},
	{"trash", imap.MailboxAttrTrash},
	{"drafts", imap.MailboxAttrDrafts},
	{"junk", imap.MailboxAttrJunk},
	{"archive", imap.MailboxAttrArchive},
}

// exchangeFolders are Exchange Online's display names of its well-known
// folders by mailbox language (the language an Outlook client or
// Set-MailboxRegionalConfiguration -LocalizeDefaultFolderName gave it).
var exchangeFolders = map[string][5]string{
	"en": {"Sent Items", "Deleted Items", "Drafts", "Junk Email", "Archive"},
	"de": {"Gesendete Elemente", "Gelöschte Elemente", "Entwürfe", "Junk-E-Mail", "Archiv"},
	"fr": {"Éléments envoyés", "Éléments supprimés", "Brouillons", "Courrier indésirable", "Archive"},
	"es": {"Elementos enviados", "Elementos eliminados", "Borradores", "Correo no deseado", "Archivo"},
	"nl": {"Verzonden items", "Verwijderde items", "Concepten", "Ongewenste e-mail", "Archief"},
}

// Languages lists the languages Folders knows.
func Languages() []string {
	out := make([]string, 0, len(exchangeFolders))
	for l := range exchangeFolders {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Folders returns the well-known folder names of a mailbox in language
// lang ("" is English; "en-GB" is "en"), with a policy's own names by role
// (sent, trash, drafts, junk, archive) over them.
func Folders(lang string, own map[string]string) (map[imap.MailboxAttr]string, error) {
	lang = strings.ToLower(lang)
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i]
	}
	if lang == "" {
		lang = "en"
	}
	names, ok := exchangeFolders[lang]
	if !ok {
		return nil, fmt.Errorf("target language %q: its folder names are not known (known: %s); give them as target_folders", lang, strings.Join(Languages(), ", "))
	}
	out := map[imap.MailboxAttr]string{}
	for i, r := range Roles {
		out[r.Attr] = names[i]
	}
	for role, name := range own {
		attr, ok := roleAttr(role)
		if !ok {
			return nil, fmt.Errorf("target_folders: unknown role %q (known: sent, trash, drafts, junk, archive)", role)
		}
		if err := validName(name); err != nil {
			return nil, fmt.Errorf("target_folders: %s: %w", role, err)
		}
		out[attr] = name
	}
	return out, nil
}

func roleAttr(role string) (imap.MailboxAttr, bool) {
	for _, r := range Roles {
		if strings.EqualFold(r.Name, role) {
			return r.Attr, true
		}
	}
	return "", false
}

// validName checks a well-known folder name as Exchange would take it: a
// top-level folder (no "/"), not empty, without control characters, at
// most 255 characters.
func validName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("empty folder name")
	case strings.Contains(name, "/"):
		return fmt.Errorf("folder name %q contains \"/\": well-known folders are top-level", name)
	case len([]rune(name)) > 255:
		return fmt.Errorf("folder name %q is longer than 255 characters", name)
	case strings.EqualFold(name, "INBOX"):
		return fmt.Errorf("folder name %q is the inbox", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("folder name %q contains a control character", name)
		}
	}
	return nil
}
