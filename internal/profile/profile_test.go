package profile_test

import (
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/profile"
)

func TestLookup(t *testing.T) {
	p, err := profile.Lookup("exchange-online")
	require.NoError(t, err)
	require.True(t, p.Target.Rerenders)
	require.True(t, p.Target.NoKeywords)
	require.True(t, p.WellKnown)
	require.EqualValues(t, 45_000_000, p.MessageSizeCeiling)
	require.EqualValues(t, 35<<20, p.MaxMessageSize)

	p, err = profile.Lookup("")
	require.NoError(t, err)
	require.Equal(t, profile.Profile{}, p)

	_, err = profile.Lookup("gmail")
	require.ErrorContains(t, err, `unknown profile "gmail"`)
}

func TestFolders(t *testing.T) {
	en, err := profile.Folders("", nil)
	require.NoError(t, err)
	require.Equal(t, "Sent Items", en[imap.MailboxAttrSent])
	require.Equal(t, "Junk Email", en[imap.MailboxAttrJunk])

	de, err := profile.Folders("de-DE", nil)
	require.NoError(t, err)
	require.Equal(t, "Gesendete Elemente", de[imap.MailboxAttrSent])
	require.Equal(t, "Gelöschte Elemente", de[imap.MailboxAttrTrash])

	own, err := profile.Folders("en", map[string]string{"archive": "Old Mail", "SENT": "Outgoing"})
	require.NoError(t, err)
	require.Equal(t, "Old Mail", own[imap.MailboxAttrArchive])
	require.Equal(t, "Outgoing", own[imap.MailboxAttrSent])
	require.Equal(t, "Drafts", own[imap.MailboxAttrDrafts])

	for _, c := range []struct {
		lang string
		own  map[string]string
		want string
	}{
		{"xx", nil, `target language "xx": its folder names are not known`},
		{"en", map[string]string{"calendar": "Kalender"}, `unknown role "calendar"`},
		{"en", map[string]string{"sent": "Mail/Sent"}, `contains "/"`},
		{"en", map[string]string{"sent": " "}, "empty folder name"},
		{"en", map[string]string{"trash": "inbox"}, "is the inbox"},
		{"en", map[string]string{"junk": "Junk\x07"}, "control character"},
	} {
		_, err := profile.Folders(c.lang, c.own)
		require.ErrorContains(t, err, c.want, "%s %v", c.lang, c.own)
	}
}
