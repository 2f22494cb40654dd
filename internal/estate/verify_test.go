package estate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"
)

func loadedServer(t *testing.T, name string, e *Estate, opts ...func(*ServerOptions)) *Server {
	t.Helper()
	o := ServerOptions{Name: name}
	for _, f := range opts {
		f(&o)
	}
	s := startServer(t, o)
	require.NoError(t, s.Load(e))
	return s
}

func shortSum(raw []byte) string {
	s := sha256.Sum256(raw)
	return hex.EncodeToString(s[:6])
}

func TestVerifyIdentical(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := Generate(smallSpec(21))
	src := loadedServer(t, "source", e)
	tgt := loadedServer(t, "target", e)

	rep, err := VerifyEstate(ctx, e, src.Addr(), tgt.Addr(), VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	mbs, msgs, size := e.Totals()
	require.Equal(t, msgs, rep.Messages)
	require.Equal(t, size, rep.Bytes)
	require.Equal(t, mbs*len(folderDefs()), rep.Folders)
	require.Zero(t, rep.ExpectedMissing)

	// A server compared with itself is also fine.
	mb := e.Orgs[0].Mailboxes[0]
	r2, err := Verify(ctx, src.Account(&mb), src.Account(&mb), VerifyOptions{})
	require.NoError(t, err)
	require.True(t, r2.OK(), r2.String())
}

func TestVerifyReportsProblems(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := Generate(smallSpec(22))
	mbp := &e.Orgs[0].Mailboxes[1]
	inbox := mbp.Folder("INBOX")
	archive := mbp.Folder("Archive/2023")
	require.GreaterOrEqual(t, len(inbox.Messages), 4)
	require.NotEmpty(t, archive.Messages)

	// Target: a copy of the source with one difference of each kind.
	te := cloneEstate(e)
	tm := &te.Orgs[0].Mailboxes[1]
	tIn, tArch := tm.Folder("INBOX"), tm.Folder("Archive/2023")

	missing := archive.Messages[0]
	tArch.Messages = tArch.Messages[1:] // 1 missing in Archive/2023

	flagged := inbox.Messages[1]
	tIn.Messages[1].Flags = []imap.Flag{imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered}
	if strings.Join(lowerFlags(flagged.Flags), " ") == `\answered \flagged \seen` {
		tIn.Messages[1].Flags = nil
	}

	dated := inbox.Messages[2]
	tIn.Messages[2].Date = dated.Date.Add(time.Hour)

	extraRaw := []byte("From: x@y.example\r\nSubject: extra\r\n\r\nnot in the source\r\n")
	tIn.Messages = append(tIn.Messages, Message{Raw: extraRaw, Date: time.Unix(1700000000, 0).UTC()})

	var folders []Folder
	for _, f := range tm.Folders {
		if f.Name != "Projects" { // empty folder missing on the target
			folders = append(folders, f)
		}
	}
	tm.Folders = folders

	src := loadedServer(t, "source", e)
	tgt := loadedServer(t, "target", te)
	rep, err := Verify(ctx, src.Account(mbp), tgt.Account(mbp), VerifyOptions{})
	require.NoError(t, err)
	require.False(t, rep.OK())

	p := "mailbox " + mbp.User + ": "
	fl := func(f []imap.Flag) string { return "[" + strings.Join(lowerFlags(f), " ") + "]" }
	want := []string{
		fmt.Sprintf("%sfolder Archive/2023: 1 message missing (sha256 %s, %d B)", p, shortSum(missing.Raw), len(missing.Raw)),
		fmt.Sprintf("%sfolder INBOX: 1 extra message on target (sha256 %s, %d B)", p, shortSum(extraRaw), len(extraRaw)),
		fmt.Sprintf("%sfolder INBOX: date mismatch (sha256 %s, %d B): date: source %s target %s", p, shortSum(dated.Raw), len(dated.Raw),
			dated.Date.Format(time.RFC3339), dated.Date.Add(time.Hour).Format(time.RFC3339)),
		fmt.Sprintf("%sfolder INBOX: flag mismatch (sha256 %s, %d B): flags: source %s target %s", p, shortSum(flagged.Raw), len(flagged.Raw),
			fl(flagged.Flags), fl(tIn.Messages[1].Flags)),
		fmt.Sprintf("%sfolder Projects: folder missing on target (0 source messages)", p),
	}
	require.ElementsMatch(t, want, rep.Problems, rep.String())
	_, _, _ = rep.Folders, rep.Messages, rep.Bytes

	// The other mailboxes are untouched.
	other := &e.Orgs[0].Mailboxes[0]
	r2, err := Verify(ctx, src.Account(other), tgt.Account(other), VerifyOptions{})
	require.NoError(t, err)
	require.True(t, r2.OK(), r2.String())
}

func TestVerifyOversizedAndMapFolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := smallSpec(23)
	e := Generate(spec)

	// Target without the large items, and with "Sent" renamed "Sent Items".
	te := cloneEstate(e)
	removed := 0
	for _, mb := range te.Mailboxes() {
		for fi := range mb.Folders {
			f := &mb.Folders[fi]
			var keep []Message
			for _, m := range f.Messages {
				if int64(len(m.Raw)) > spec.LargeItemSize {
					removed++
					continue
				}
				keep = append(keep, m)
			}
			f.Messages = keep
			if f.Name == "Sent" {
				f.Name = "Sent Items"
			}
		}
	}
	require.Equal(t, spec.LargeItems, removed)
	src := loadedServer(t, "source", e)
	tgt := loadedServer(t, "target", te)
	mapSent := func(s string) string {
		if s == "Sent" {
			return "Sent Items"
		}
		return s
	}

	rep, err := VerifyEstate(ctx, e, src.Addr(), tgt.Addr(), VerifyOptions{MaxMessageSize: spec.LargeItemSize, MapFolder: mapSent})
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, spec.LargeItems, rep.ExpectedMissing)

	// Without the size limit the large items are missing.
	rep, err = VerifyEstate(ctx, e, src.Addr(), tgt.Addr(), VerifyOptions{MapFolder: mapSent})
	require.NoError(t, err)
	require.Len(t, rep.Problems, spec.LargeItems, rep.String())
	for _, p := range rep.Problems {
		require.Contains(t, p, "1 message missing")
	}

	// Without the folder mapping: Sent is missing and Sent Items is extra.
	rep, err = VerifyEstate(ctx, e, src.Addr(), tgt.Addr(), VerifyOptions{MaxMessageSize: spec.LargeItemSize})
	require.NoError(t, err)
	var missingSent, extraSent int
	for _, p := range rep.Problems {
		if strings.Contains(p, "folder Sent: folder missing on target") {
			missingSent++
		}
		if strings.Contains(p, "folder Sent Items exists only on target") {
			extraSent++
		}
	}
	require.Equal(t, len(e.Mailboxes()), missingSent, rep.String())
	require.Equal(t, len(e.Mailboxes()), extraSent, rep.String())

	// Excluding Sent from the comparison leaves only the target-only folder.
	rep, err = VerifyEstate(ctx, e, src.Addr(), tgt.Addr(), VerifyOptions{MaxMessageSize: spec.LargeItemSize,
		MapFolder: func(s string) string {
			if s == "Sent" {
				return ""
			}
			return s
		}})
	require.NoError(t, err)
	require.Len(t, rep.Problems, len(e.Mailboxes()), rep.String())
	for _, p := range rep.Problems {
		require.Contains(t, p, "folder Sent Items exists only on target")
	}

	// A large item present on the target although it should be absent.
	same := loadedServer(t, "same", e)
	rep, err = VerifyEstate(ctx, e, src.Addr(), same.Addr(), VerifyOptions{MaxMessageSize: spec.LargeItemSize})
	require.NoError(t, err)
	require.Len(t, rep.Problems, spec.LargeItems, rep.String())
	for _, p := range rep.Problems {
		require.Contains(t, p, "oversized message present on target")
	}
}

func TestVerifyErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, ServerOptions{})
	require.NoError(t, srv.AddUser("u@x.example", "pw"))
	good := Account{Addr: srv.Addr(), User: "u@x.example", Password: "pw"}
	_, err := Verify(ctx, good, Account{Addr: srv.Addr(), User: "u@x.example", Password: "bad"}, VerifyOptions{})
	require.ErrorContains(t, err, "target")

	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	_, err = Verify(cctx, good, good, VerifyOptions{})
	require.ErrorIs(t, err, context.Canceled)
}
