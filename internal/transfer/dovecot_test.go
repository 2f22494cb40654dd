package transfer_test

// Dovecot-backed tests: a source Dovecot with "/" as separator (LAYOUT=fs)
// and Apple-style special-use names, a target Dovecot with "." (Maildir++)
// and Exchange-style names. They skip when Dovecot is not installed unless
// CI or MAILSHIFT_REQUIRE_DOVECOT=1 is set (see internal/dovecottest).

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/transfer"
)

var (
	dcSourceSpecialUse = map[imap.MailboxAttr]string{
		imap.MailboxAttrSent:    "Sent Messages",
		imap.MailboxAttrDrafts:  "Drafts",
		imap.MailboxAttrTrash:   "Deleted Messages",
		imap.MailboxAttrJunk:    "Junk",
		imap.MailboxAttrArchive: "Archive",
	}
	dcTargetSpecialUse = map[imap.MailboxAttr]string{
		imap.MailboxAttrSent:    "Sent Items",
		imap.MailboxAttrDrafts:  "Drafts",
		imap.MailboxAttrTrash:   "Deleted Items",
		imap.MailboxAttrJunk:    "Junk E-mail",
		imap.MailboxAttrArchive: "Archive",
	}
)

func dcStartPair(t *testing.T, tgtOpts dovecottest.Options) (src, tgt *dovecottest.Instance) {
	t.Helper()
	src = dovecottest.StartT(t, dovecottest.Options{Name: "src", Separator: '/', SpecialUse: dcSourceSpecialUse, MailFsync: "never"})
	tgtOpts.Name = "tgt"
	tgtOpts.Separator = '.'
	tgtOpts.SpecialUse = dcTargetSpecialUse
	tgtOpts.MailFsync = "never"
	tgt = dovecottest.StartT(t, tgtOpts)
	return src, tgt
}

func dcDial(t *testing.T, ctx context.Context, inst *dovecottest.Instance, mb *estate.Mailbox) *imapconn.Conn {
	t.Helper()
	addr, err := imapconn.ParseAddress(inst.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := imapconn.Dial(ctx, addr, imapconn.Login{Username: mb.User, Password: mb.Password}, imapconn.Options{DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", inst.Addr(), mb.User, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dcRun runs one pass over fresh connections.
func dcRun(t *testing.T, ctx context.Context, src, tgt *dovecottest.Instance, mb *estate.Mailbox, cp transfer.Checkpoint, opts transfer.Options) (transfer.Checkpoint, transfer.Stats, error) {
	t.Helper()
	s, d := dcDial(t, ctx, src, mb), dcDial(t, ctx, tgt, mb)
	return transfer.Run(ctx, s, d, cp, opts)
}

// dcFolderMap maps source folder paths to target paths: special-use renames,
// and a "." inside a name component becomes "_" (the target's separator).
func dcFolderMap(mb *estate.Mailbox, src, tgt *dovecottest.Instance) func(string) string {
	m := dovecottest.FolderMap(mb, src, tgt)
	return func(s string) string {
		parts := strings.Split(m(s), "/")
		for i, p := range parts {
			parts[i] = strings.ReplaceAll(p, string(tgt.Separator()), "_")
		}
		return strings.Join(parts, "/")
	}
}

func dcVerify(t *testing.T, ctx context.Context, src, tgt *dovecottest.Instance, mb *estate.Mailbox, maxSize int64) estate.Report {
	t.Helper()
	rep, err := estate.Verify(ctx, src.Account(mb), tgt.Account(mb), estate.VerifyOptions{MapFolder: dcFolderMap(mb, src, tgt), MaxMessageSize: maxSize})
	if err != nil {
		t.Fatalf("verify %s: %v", mb.User, err)
	}
	return rep
}

func dcOptions() transfer.Options {
	return transfer.Options{MaxLargeItems: -1, MaxBadItems: -1, BatchSize: 40}
}

// dcExtraFolders adds folders the standard estate tree lacks: a name with
// the target's separator in it, and a child whose parent is never created
// (a \Noselect parent on the LAYOUT=fs source).
func dcExtraFolders(mb *estate.Mailbox) {
	in := mb.Folder("INBOX")
	pick := func(n int) []estate.Message {
		var out []estate.Message
		for i := 0; i < n && i < len(in.Messages); i++ {
			out = append(out, in.Messages[len(in.Messages)-1-i])
		}
		return out
	}
	mb.Folders = append(mb.Folders,
		estate.Folder{Name: "Dr. Who", Messages: pick(3)},
		estate.Folder{Name: "Projekte/Laufend & Geplant", Messages: pick(2)},
	)
}

func TestDovecotMigration(t *testing.T) {
	start := time.Now()
	src, tgt := dcStartPair(t, dovecottest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	e := estate.Generate(estate.DefaultSpec(11).Scale(0.05))
	mbs := e.Mailboxes()
	for _, mb := range mbs {
		dcExtraFolders(mb)
	}
	if err := dovecottest.LoadEstate(src, mbs); err != nil {
		t.Fatal(err)
	}
	for _, mb := range mbs {
		if err := tgt.AddUser(mb.User, mb.Password); err != nil {
			t.Fatal(err)
		}
	}
	_, nmsg, nbytes := e.Totals()
	t.Logf("source loaded: %d mailboxes, %d messages, %d bytes in %v", len(mbs), nmsg, nbytes, time.Since(start))

	// The source really has a \Noselect parent.
	{
		c := dcDial(t, ctx, src, mbs[0])
		folders, err := c.Folders()
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, f := range folders {
			if f.Name == "Projekte" {
				found = f.NoSelect
			}
		}
		if !found {
			t.Fatalf("source folder Projekte is not listed as \\Noselect: %+v", folders)
		}
	}

	cps := make([]transfer.Checkpoint, len(mbs))
	for i, mb := range mbs {
		if i == 0 {
			cps[i] = dcCrashAndResume(t, ctx, src, tgt, mb)
			continue
		}
		cp, st, err := dcRun(t, ctx, src, tgt, mb, transfer.Checkpoint{}, dcOptions())
		if err != nil {
			t.Fatalf("%s: %v", mb.User, err)
		}
		t.Logf("%s: copied %d (%d bytes), matched %d, skipped %d", mb.User, st.Copied, st.Bytes, st.Matched, st.Skipped)
		cps[i] = cp
	}
	for _, mb := range mbs {
		if rep := dcVerify(t, ctx, src, tgt, mb, 0); !rep.OK() {
			t.Errorf("%s: %s", mb.User, rep)
		} else {
			t.Logf("%s verified: %d folders, %d messages", mb.User, rep.Folders, rep.Messages)
		}
	}

	// The target got the target's special-use folders and separator.
	c := dcDial(t, ctx, tgt, mbs[0])
	folders, err := c.Folders()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]imapconn.Folder{}
	for _, f := range folders {
		names[f.Name] = f
	}
	for _, want := range []string{"Sent Items", "Deleted Items", "Archive.2023.Q1", "Réunions.Été 2024", "Clinical & Admin", "Dr_ Who", "Projekte.Laufend & Geplant", "Projects"} {
		if _, ok := names[want]; !ok {
			t.Errorf("target folder %q missing; have %v", want, folders)
		}
	}
	if _, ok := names["Sent Messages"]; ok {
		t.Errorf("source special-use name leaked to the target")
	}
	c.Close()

	// A second pass reads no bodies and changes nothing.
	for i, mb := range mbs {
		_, st, err := dcRun(t, ctx, src, tgt, mb, cps[i], dcOptions())
		if err != nil {
			t.Fatalf("re-run %s: %v", mb.User, err)
		}
		if st.BodiesRead != 0 || st.Copied != 0 {
			t.Errorf("re-run %s read %d bodies and copied %d", mb.User, st.BodiesRead, st.Copied)
		}
	}
	// Without a checkpoint the whole target is reconciled: still no copies.
	_, st, err := dcRun(t, ctx, src, tgt, mbs[1], transfer.Checkpoint{}, dcOptions())
	if err != nil {
		t.Fatal(err)
	}
	if st.Copied != 0 {
		t.Errorf("run without checkpoint over a full target copied %d", st.Copied)
	}
	for _, mb := range mbs {
		if rep := dcVerify(t, ctx, src, tgt, mb, 0); !rep.OK() {
			t.Errorf("after re-runs %s: %s", mb.User, rep)
		}
	}
	t.Logf("total %v", time.Since(start))
}

// dcCrashAndResume interrupts a pass in the middle (closing both
// connections while messages stream), then resumes from a checkpoint taken
// well before the interruption: the messages appended after it are
// recognised on the target, not appended again.
func dcCrashAndResume(t *testing.T, ctx context.Context, src, tgt *dovecottest.Instance, mb *estate.Mailbox) transfer.Checkpoint {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	var stale transfer.Checkpoint
	var settledAtStale, n int
	opts := dcOptions()
	opts.Progress = func(cp transfer.Checkpoint, st transfer.Stats) {
		n++
		if n == 25 {
			stale, settledAtStale = cp, int(st.Copied)
		}
		if n == 70 {
			stop()
		}
	}
	_, st, err := dcRun(t, runCtx, src, tgt, mb, transfer.Checkpoint{}, opts)
	stop()
	if err == nil {
		t.Fatalf("the interrupted pass finished (%d progress calls); make the mailbox bigger", n)
	}
	t.Logf("%s: interrupted after %d copies (%v); resuming from the checkpoint at %d copies", mb.User, st.Copied, err, settledAtStale)
	if len(stale.Folders) == 0 {
		t.Fatal("no stale checkpoint captured")
	}
	cp, st, err := dcRun(t, ctx, src, tgt, mb, stale, dcOptions())
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if st.Reconciled == 0 || st.Matched == 0 {
		t.Errorf("resume reconciled %d folders and matched %d messages; want both > 0", st.Reconciled, st.Matched)
	}
	t.Logf("%s: resume copied %d, matched %d, reconciled %d folders", mb.User, st.Copied, st.Matched, st.Reconciled)
	if rep := dcVerify(t, ctx, src, tgt, mb, 0); !rep.OK() {
		t.Errorf("after resume: %s", rep)
	}
	return cp
}

// TestDovecotTargetSizeLimit: the target refuses messages over its limit
// (quota_max_mail_size). With MaxMessageSize set they are skipped before the
// APPEND; without it Dovecot answers NO [LIMIT] to the APPEND, and the
// pass records the item as refused and eventually completes.
func TestDovecotTargetSizeLimit(t *testing.T) {
	const limit = 200 << 10
	src, tgt := dcStartPair(t, dovecottest.Options{MaxMailSize: limit})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := estate.Generate(estate.Spec{Seed: 5, Orgs: []estate.OrgSpec{{Code: "SZ", Mailboxes: 2, MeanMessages: 25}}, LargeItems: 4, LargeItemSize: 256 << 10})
	mbs := e.Mailboxes()
	if err := dovecottest.LoadEstate(src, mbs); err != nil {
		t.Fatal(err)
	}
	for _, mb := range mbs {
		if err := tgt.AddUser(mb.User, mb.Password); err != nil {
			t.Fatal(err)
		}
	}

	// Known limit: skipped (and staged) before any APPEND.
	opts := dcOptions()
	opts.MaxMessageSize = limit
	cp, st, err := dcRun(t, ctx, src, tgt, mbs[0], transfer.Checkpoint{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 2 {
		t.Errorf("skipped %d, want the 2 large items", st.Skipped)
	}
	for _, s := range cp.Skipped {
		if s.Reason != transfer.ReasonTooLarge {
			t.Errorf("skip %+v: want reason %s", s, transfer.ReasonTooLarge)
		}
	}
	if rep := dcVerify(t, ctx, src, tgt, mbs[0], limit); !rep.OK() || rep.ExpectedMissing != 2 {
		t.Errorf("%s", rep)
	}

	// Unknown limit: Dovecot refuses the APPEND. go-imap sends messages over
	// 4 KiB as synchronizing literals, so the refusal comes instead of the
	// continuation and the client drops the connection; a pass may therefore
	// end with a retryable error, but it must settle the item first so that a
	// retry (new connections, last checkpoint) gets past it.
	opts = dcOptions()
	cp = transfer.Checkpoint{}
	var attempts int
	for attempts = 1; ; attempts++ {
		if attempts > 5 {
			t.Fatalf("no progress after %d attempts: %v", attempts-1, err)
		}
		cp, st, err = dcRun(t, ctx, src, tgt, mbs[1], cp, opts)
		if err == nil {
			break
		}
		var ie *imapconn.Error
		if !errors.As(err, &ie) || ie.Permanent {
			t.Fatalf("attempt %d: %v (want nil or a retryable error)", attempts, err)
		}
		t.Logf("attempt %d: %v", attempts, err)
	}
	var refused int
	for _, s := range cp.Skipped {
		if s.Reason == transfer.ReasonTooBig && s.Size > limit {
			refused++
		} else {
			t.Errorf("unexpected skip %+v", s)
		}
	}
	if refused != 2 {
		t.Errorf("%d items refused by the target, want 2 (%d attempts)", refused, attempts)
	}
	if rep := dcVerify(t, ctx, src, tgt, mbs[1], limit); !rep.OK() || rep.ExpectedMissing != 2 {
		t.Errorf("%s", rep)
	}
}

// TestDovecotTargetThatLostMailIsCopiedAgain: a target folder emptied in
// part, and another deleted and created again (a new UIDVALIDITY), after
// a finished copy with the source unchanged. The next pass copies exactly
// what the target lost, appends nothing twice, and the pass after it
// copies nothing.
func TestDovecotTargetThatLostMailIsCopiedAgain(t *testing.T) {
	src, tgt := dcStartPair(t, dovecottest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := estate.Generate(estate.Spec{Seed: 21, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "TL", Mailboxes: 1, MeanMessages: 120}}})
	mb := e.Mailboxes()[0]
	if err := dovecottest.LoadEstate(src, []*estate.Mailbox{mb}); err != nil {
		t.Fatal(err)
	}
	if err := tgt.AddUser(mb.User, mb.Password); err != nil {
		t.Fatal(err)
	}
	cp, _, err := dcRun(t, ctx, src, tgt, mb, transfer.Checkpoint{}, dcOptions())
	if err != nil {
		t.Fatal(err)
	}
	var full []transfer.FolderState
	for _, f := range cp.Folders {
		if f.Copied >= 4 {
			full = append(full, f)
		}
	}
	if len(full) < 2 {
		t.Fatalf("want two folders with mail, ledger has %+v", cp.Folders)
	}
	emptied, recreated := full[0], full[1]

	c := dcDial(t, ctx, tgt, mb)
	if _, err := c.Select(emptied.Target, false); err != nil {
		t.Fatal(err)
	}
	// Every other message of the first folder goes.
	var gone imap.UIDSet
	lost := 0
	for uid := imap.UID(1); uid <= imap.UID(emptied.TargetLastUID); uid += 2 {
		gone.AddNum(uid)
		lost++
	}
	if err := c.C.Store(gone, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.C.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.C.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	// The second folder is deleted and created again, empty.
	if err := c.C.Delete(recreated.Target).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.C.Create(recreated.Target, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	lost += int(recreated.Copied)
	if rep := dcVerify(t, ctx, src, tgt, mb, 0); rep.OK() {
		t.Fatalf("the target lost %d messages and still verifies: %s", lost, rep)
	}

	cp, st, err := dcRun(t, ctx, src, tgt, mb, cp, dcOptions())
	if err != nil {
		t.Fatal(err)
	}
	if st.Copied != int64(lost) {
		t.Errorf("copied %d again, want the %d the target lost", st.Copied, lost)
	}
	resets := map[string]int{}
	for _, f := range cp.Folders {
		resets[f.Source] = f.TargetResets
	}
	if resets[emptied.Source] != 1 || resets[recreated.Source] != 1 {
		t.Errorf("target resets %v, want 1 for %q and %q", resets, emptied.Source, recreated.Source)
	}
	if rep := dcVerify(t, ctx, src, tgt, mb, 0); !rep.OK() {
		t.Errorf("after the pass: %s", rep)
	}

	_, st, err = dcRun(t, ctx, src, tgt, mb, cp, dcOptions())
	if err != nil {
		t.Fatal(err)
	}
	if st.Copied != 0 {
		t.Errorf("a pass over an unchanged source and whole target copied %d", st.Copied)
	}
}
