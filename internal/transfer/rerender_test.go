package transfer_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/transfer"
)

// exchangeNames are an English Exchange Online mailbox's well-known folders.
var exchangeNames = map[imap.MailboxAttr]string{
	imap.MailboxAttrSent: "Sent Items", imap.MailboxAttrTrash: "Deleted Items", imap.MailboxAttrDrafts: "Drafts",
	imap.MailboxAttrJunk: "Junk Email", imap.MailboxAttrArchive: "Archive",
}

func exchangeOptions(st *stager) transfer.Options {
	o := baseOptions(st)
	o.Target = transfer.Target{Rerenders: true, NoKeywords: true}
	o.Rules.WellKnown = exchangeNames
	return o
}

// keywordsOf counts the estate's messages of at most limit bytes that have
// a keyword Exchange does not keep, and those without a Message-ID.
func keywordsOf(mb *estate.Mailbox, limit int64) (keywords, noID int64) {
	for _, f := range mb.Folders {
		for _, m := range f.Messages {
			if int64(len(m.Raw)) > limit {
				continue
			}
			if messageID(m.Raw) == "" {
				noID++
			}
			for _, fl := range m.Flags {
				if !strings.HasPrefix(string(fl), `\`) && !strings.EqualFold(string(fl), "$MDNSent") {
					keywords++
					break
				}
			}
		}
	}
	return keywords, noID
}

func (x *fixture) validateWith(t *testing.T, cp transfer.Checkpoint, rules transfer.FolderRules, o transfer.ValidateOptions) transfer.Validation {
	t.Helper()
	ctx := testCtx(t)
	src := dial(t, ctx, x.src.Addr(), x.mb)
	defer src.Close()
	tgt := dial(t, ctx, x.tgt.Addr(), x.mb)
	defer tgt.Close()
	v, err := transfer.ValidateWith(ctx, src, tgt, cp, rules, o)
	require.NoError(t, err)
	return v
}

// TestRerenderingTarget copies a mailbox into a server that behaves like
// Exchange Online (re-rendered MIME on FETCH, no SPECIAL-USE, keywords
// refused) and shows that:
//   - comparing bytes or sizes would call every copied message missing,
//     while the comparison by identity and ContentDigest finds the copy
//     exact at every level, and finds a message whose content changed;
//   - special-use folders land in the well-known folders;
//   - keywords are left out, counted and named in the digests;
//   - a lost checkpoint costs no duplicate (reconciliation by Message-ID
//     and INTERNALDATE, or the fallback identity), where reconciling by
//     size would append every message again.
func TestRerenderingTarget(t *testing.T) {
	e := testEstate(t)
	x := newFixture(t, e, estate.ServerOptions{Exchange: true})
	ctx := testCtx(t)
	st := &stager{}
	opts := exchangeOptions(st)
	var segs []transfer.FolderDigests
	opts.Digests = func(d transfer.FolderDigests) error { segs = append(segs, d); return nil }
	cp, stats, err := x.run(t, ctx, transfer.Checkpoint{}, opts)
	require.NoError(t, err)

	_, ordinary, large := counts(x.mb, maxSize)
	keywords, noID := keywordsOf(x.mb, maxSize)
	require.Positive(t, keywords, "the estate must have keywords to leave out")
	require.Positive(t, noID, "the estate must have messages without a Message-ID")
	require.Equal(t, ordinary, stats.Copied)
	require.Len(t, cp.Skipped, len(large))
	for _, s := range cp.Skipped {
		require.Equal(t, transfer.ReasonTooLarge, s.Reason)
		require.NotEmpty(t, s.StagedAs)
	}
	require.Equal(t, keywords, stats.KeywordsDropped)
	var dropped, withContent int64
	for _, s := range segs {
		for _, d := range s.Digests {
			if len(d.Keywords) > 0 {
				dropped++
				for _, k := range d.Keywords {
					require.NotContains(t, k, `\`, "system flags are kept")
				}
			}
			if d.Content != "" {
				withContent++
			}
		}
	}
	require.Equal(t, keywords, dropped, "each message without its keywords is named in the digests")
	require.Equal(t, ordinary, withContent, "every copy records its content digest")

	// Special-use folders are in the well-known ones; nothing was created
	// under the source's own names.
	c := client(t, x.tgt, x.mb)
	for src, want := range map[string]string{"Sent": "Sent Items", "Trash": "Deleted Items", "Junk": "Junk Email"} {
		n := 0
		for _, m := range x.mb.Folder(src).Messages {
			if int64(len(m.Raw)) <= maxSize {
				n++
			}
		}
		status, err := c.Status(want, &imap.StatusOptions{NumMessages: true}).Wait()
		require.NoError(t, err)
		require.EqualValues(t, n, *status.NumMessages, "%s -> %s", src, want)
		_, err = c.Status(src, &imap.StatusOptions{NumMessages: true}).Wait()
		require.Error(t, err, "no folder %q on the target", src)
	}

	// Bytes and sizes: every copied message looks missing (and extra).
	for _, level := range []transfer.Level{transfer.LevelMetadata, transfer.LevelFull} {
		v := x.validateWith(t, cp, opts.Rules, transfer.ValidateOptions{Level: level})
		require.False(t, v.OK())
		require.EqualValues(t, ordinary, v.Totals().Missing, "byte comparison at %s", level)
		require.EqualValues(t, ordinary, v.Totals().Extra, "byte comparison at %s", level)
	}
	// Identity and content: exact at every level.
	index := transfer.IndexDigests(segs)
	for _, level := range transfer.Levels {
		v := x.validateWith(t, cp, opts.Rules, transfer.ValidateOptions{Level: level, Target: opts.Target, Digests: index})
		require.True(t, v.OK(), "%s: %+v %v", level, v.Totals(), v.Problems)
		require.True(t, v.Rerendered)
		tot := v.Totals()
		require.EqualValues(t, ordinary, tot.SourceMessages-tot.Skipped)
		require.Zero(t, tot.Extra)
		if level == transfer.LevelSample {
			require.Positive(t, tot.Sampled)
		}
	}

	// A message whose content changed on the target, with its identity,
	// flags and date intact, is altered.
	tamperFirst(t, c, "INBOX")
	v := x.validateWith(t, cp, opts.Rules, transfer.ValidateOptions{Level: transfer.LevelFull, Target: opts.Target})
	tot := v.Totals()
	require.Equal(t, 1, tot.Altered, "%+v", tot)
	require.Zero(t, tot.Missing+tot.Duplicates+tot.FlagMismatch+tot.DateMismatch)

	// The checkpoint is lost: the next pass recognises every message.
	_, again, err := x.run(t, ctx, transfer.Checkpoint{}, opts)
	require.NoError(t, err)
	require.Zero(t, again.Copied, "nothing appended twice")
	require.Equal(t, ordinary, again.Matched)

	// Reconciled by size instead, every message would be appended again.
	bySize := opts
	bySize.Target.Rerenders = false
	_, dup, err := x.run(t, ctx, transfer.Checkpoint{}, bySize)
	require.NoError(t, err)
	require.Equal(t, ordinary, dup.Copied)
	v = x.validateWith(t, cp, opts.Rules, transfer.ValidateOptions{Level: transfer.LevelMetadata, Target: opts.Target})
	require.EqualValues(t, ordinary, v.Totals().Duplicates, "the identity comparison sees the duplicates")
}

// tamperFirst replaces the first message of folder on the target with one
// whose body differs by one character, keeping its flags and date.
func tamperFirst(t *testing.T, c *imapclient.Client, folder string) {
	t.Helper()
	_, err := c.Select(folder, nil).Wait()
	require.NoError(t, err)
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	m := msgs[0]
	raw := m.FindBodySection(section)
	hdr, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	require.True(t, ok)
	i := bytes.IndexFunc(body, func(r rune) bool { return r >= 'a' && r <= 'y' })
	require.GreaterOrEqual(t, i, 0)
	body = bytes.Clone(body)
	body[i]++
	changed := append(append(hdr, "\r\n\r\n"...), body...)
	require.NoError(t, c.Store(imap.UIDSetNum(m.UID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	require.NoError(t, c.Expunge().Close())
	app := c.Append(folder, int64(len(changed)), &imap.AppendOptions{Flags: m.Flags, Time: m.InternalDate})
	_, err = app.Write(changed)
	require.NoError(t, err)
	require.NoError(t, app.Close())
	_, err = app.Wait()
	require.NoError(t, err)
}

// TestPlanWellKnownFolders maps source folders into a target without
// SPECIAL-USE by special use or, without one, by usual name, in the
// mailbox's language; a collision is an error naming both folders.
func TestPlanWellKnownFolders(t *testing.T) {
	german := map[imap.MailboxAttr]string{
		imap.MailboxAttrSent: "Gesendete Elemente", imap.MailboxAttrTrash: "Gelöschte Elemente",
		imap.MailboxAttrDrafts: "Entwürfe", imap.MailboxAttrJunk: "Junk-E-Mail", imap.MailboxAttrArchive: "Archiv",
	}
	src := []imapconn.Folder{
		folder("INBOX", '.', "", false),
		folder("Sent", '.', imap.MailboxAttrSent, false),
		folder("Trash", '.', "", false),           // usual name, no attribute
		folder("INBOX.Spam", '.', "", false),      // usual name under INBOX
		folder("Archive", '.', "", false),         // usual name
		folder("Archive.2023", '.', "", false),    // inside a well-known folder: goes with it
		folder("Projects.Drafts", '.', "", false), // not top-level: keeps its path
		folder("Entwürfe", '.', imap.MailboxAttrDrafts, false),
	}
	tgt := []imapconn.Folder{folder("INBOX", '/', "", false), folder("Gesendete Elemente", '/', "", false)}
	plan, err := transfer.Plan(src, tgt, '.', '/', transfer.FolderRules{WellKnown: german})
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"INBOX": "INBOX", "Sent": "Gesendete Elemente", "Trash": "Gelöschte Elemente", "INBOX.Spam": "Junk-E-Mail",
		"Archive": "Archiv", "Archive.2023": "Archiv/2023", "Projects.Drafts": "Projects/Drafts", "Entwürfe": "Entwürfe",
	}, targets(plan))

	// A folder map wins over the well-known names.
	plan, err = transfer.Plan(src, tgt, '.', '/', transfer.FolderRules{WellKnown: german, Map: map[string]string{"Archive": "Altes Archiv"}})
	require.NoError(t, err)
	require.Equal(t, "Altes Archiv", targets(plan)["Archive"])

	// Two source folders for one well-known folder.
	src = append(src, folder("Sent Items", '.', "", false))
	_, err = transfer.Plan(src, tgt, '.', '/', transfer.FolderRules{WellKnown: german})
	require.ErrorContains(t, err, `would both land in target folder "Gesendete Elemente"`)
}
