package transfer

import (
	"context"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/imapconn"
)

// TestDeltaPassCopiesFlagChangesWithoutReadingBodies changes flags on the
// source after a first pass; the next pass must copy exactly those changes
// and read no message body.
func TestDeltaPassCopiesFlagChangesWithoutReadingBodies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := estate.Spec{Seed: 42, Orgs: []estate.OrgSpec{{Code: "FL", Name: "Flags", Mailboxes: 1, MeanMessages: 40}}, LargeItems: -1}
	est := estate.Generate(spec)
	mb := est.Mailboxes()[0]
	src, tgt := sourceAndTarget(t, est)
	dial := func(s *estate.Server) *imapconn.Conn {
		addr, err := imapconn.ParseAddress(s.URL())
		if err != nil {
			t.Fatal(err)
		}
		c, err := imapconn.Dial(ctx, addr, imapconn.Login{Username: mb.User, Password: mb.Password}, imapconn.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	pass := func(cp Checkpoint) (Checkpoint, Stats) {
		cp, st, err := Run(ctx, dial(src), dial(tgt), cp, Options{SyncFlags: true})
		if err != nil {
			t.Fatal(err)
		}
		return cp, st
	}
	cp, st := pass(Checkpoint{})
	if st.Copied == 0 || st.FlagsUpdated != 0 {
		t.Fatalf("first pass: %+v", st)
	}

	// A user flags a message and un-reads another on the source.
	c, err := imapclient.DialInsecure(src.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(mb.User, mb.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged, "Project-X"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: nil}, nil).Close(); err != nil {
		t.Fatal(err)
	}

	_, st = pass(cp)
	if st.BodiesRead != 0 || st.Copied != 0 {
		t.Fatalf("delta pass read %d bodies and copied %d; want 0 and 0", st.BodiesRead, st.Copied)
	}
	if st.FlagsUpdated < 1 || st.FlagsUpdated > 2 {
		t.Fatalf("delta pass updated %d messages' flags, want the 1-2 changed", st.FlagsUpdated)
	}
	rep, err := estate.Verify(ctx, src.Account(mb), tgt.Account(mb), estate.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("after delta: %s", rep.String())
	}
	// And a no-op pass changes nothing.
	_, st = pass(cp)
	if st.BodiesRead != 0 || st.FlagsUpdated != 0 || st.Copied != 0 {
		t.Fatalf("no-op pass: %+v", st)
	}
}

// sourceAndTarget starts in-process servers: the estate in the source, its
// users with empty mailboxes in the target.
func sourceAndTarget(t *testing.T, est *estate.Estate) (src, tgt *estate.Server) {
	t.Helper()
	src, err := estate.StartServer(estate.ServerOptions{Name: "source"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	tgt, err = estate.StartServer(estate.ServerOptions{Name: "target"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tgt.Close() })
	if err := src.Load(est); err != nil {
		t.Fatal(err)
	}
	if err := tgt.AddUsers(est); err != nil {
		t.Fatal(err)
	}
	return src, tgt
}
