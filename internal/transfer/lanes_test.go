package transfer

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/imapconn"
)

// TestLanesCopyFoldersInParallelAndResumeWithoutDuplicates copies one
// mailbox over three connection pairs, interrupts it, resumes from a stale
// snapshot (also over three lanes) and checks the target is exact.
func TestLanesCopyFoldersInParallelAndResumeWithoutDuplicates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	est := estate.Generate(estate.Spec{Seed: 8, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "LN", Name: "Lanes", Mailboxes: 1, MeanMessages: 400}}})
	mb := est.Mailboxes()[0]
	src, tgt := sourceAndTarget(t, est)
	login := imapconn.Login{Username: mb.User, Password: mb.Password}
	dialOne := func(ctx context.Context, s *estate.Server) (*imapconn.Conn, error) {
		addr, err := imapconn.ParseAddress(s.URL())
		if err != nil {
			return nil, err
		}
		return imapconn.Dial(ctx, addr, login, imapconn.Options{})
	}
	dials := 0
	var pipelines atomic.Int32
	dial := func(ctx context.Context) (*imapconn.Conn, *imapconn.Conn, func(), error) {
		s, err := dialOne(ctx, src)
		if err != nil {
			return nil, nil, nil, err
		}
		g, err := dialOne(ctx, tgt)
		if err != nil {
			s.Close()
			return nil, nil, nil, err
		}
		dials++
		return s, g, func() { s.Close(); g.Close() }, nil
	}
	pass := func(ctx context.Context, cp Checkpoint, opts Options) (Checkpoint, Stats, error) {
		s, g, release, err := dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		opts.Lanes, opts.Dial = 3, dial
		opts.AppendWindow = 8
		opts.Appender = func(ctx context.Context) (*imapconn.Appender, error) {
			addr, err := imapconn.ParseAddress(tgt.URL())
			if err != nil {
				return nil, err
			}
			a, err := imapconn.DialAppender(ctx, addr, login, imapconn.Options{}, 8)
			if err == nil {
				pipelines.Add(1)
			}
			return a, err
		}
		return Run(ctx, s, g, cp, opts)
	}

	// Interrupt after 150 settled messages, keeping a snapshot from 20 earlier.
	var snaps []Checkpoint
	settled := 0
	cctx, stop := context.WithCancel(ctx)
	_, _, err := pass(cctx, Checkpoint{}, Options{Progress: func(cp Checkpoint, _ Stats) {
		snaps = append(snaps, cp)
		settled++
		if settled == 150 {
			stop()
		}
	}})
	stop()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted pass: %v", err)
	}
	if dials < 3 {
		t.Fatalf("want extra lanes dialled, got %d dials", dials)
	}
	if pipelines.Load() < 2 {
		t.Fatalf("want the LITERAL+ APPEND pipeline used on the lanes, got %d", pipelines.Load())
	}
	stale := snaps[len(snaps)-21]
	cp, st, err := pass(ctx, stale, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Matched == 0 {
		t.Fatalf("resume matched nothing: %+v", st)
	}
	rep, err := estate.Verify(ctx, src.Account(mb), tgt.Account(mb), estate.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatal(rep.String())
	}
	// A no-op pass over three lanes reads nothing.
	_, st, err = pass(ctx, cp, Options{SyncFlags: true})
	if err != nil || st.BodiesRead != 0 || st.Copied != 0 {
		t.Fatalf("no-op pass: %+v %v", st, err)
	}
}
