package transfer_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/transfer"
)

// The test estate: one mailbox of ~120 messages over the standard folder tree
// (INBOX, special-use folders, nested "Archive/2023/Q1", non-ASCII
// "Réunions/Été 2024" and "Ärzte", "Clinical & Admin", empty "Projects" and
// "Réunions") plus two large items (INBOX and Archive) over maxSize.
const (
	testSeed = 2
	maxSize  = 64 << 10
)

func testEstate(t *testing.T) *estate.Estate {
	t.Helper()
	e := estate.Generate(estate.Spec{
		Seed:          testSeed,
		Orgs:          []estate.OrgSpec{{Code: "T1", Name: "Transfer Test", Mailboxes: 1, MeanMessages: 120}},
		LargeItems:    2,
		LargeItemSize: maxSize,
	})
	mb := e.Mailboxes()[0]
	var large, empty int
	for _, f := range mb.Folders {
		if len(f.Messages) == 0 {
			empty++
		}
		for _, m := range f.Messages {
			if len(m.Raw) > maxSize {
				large++
			}
		}
	}
	// The tests below rely on this shape; fail loudly if the generator changes.
	require.Equal(t, 2, large, "large items")
	require.GreaterOrEqual(t, empty, 2, "empty folders")
	require.NotNil(t, mb.Folder("Réunions/Été 2024"))
	require.NotNil(t, mb.Folder("Clinical & Admin"))
	return e
}

func startServer(t *testing.T, opts estate.ServerOptions) *estate.Server {
	t.Helper()
	s, err := estate.StartServer(opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fixture is a loaded source server and an empty target for one mailbox.
type fixture struct {
	e        *estate.Estate
	mb       *estate.Mailbox
	src, tgt *estate.Server
}

func newFixture(t *testing.T, e *estate.Estate, tgtOpts estate.ServerOptions) *fixture {
	t.Helper()
	src := startServer(t, estate.ServerOptions{Name: "source", IMAP4rev2: tgtOpts.IMAP4rev2})
	require.NoError(t, src.Load(e))
	x := &fixture{e: e, mb: e.Mailboxes()[0], src: src}
	x.newTarget(t, tgtOpts)
	return x
}

func (x *fixture) newTarget(t *testing.T, opts estate.ServerOptions) {
	t.Helper()
	opts.Name = "target"
	x.tgt = startServer(t, opts)
	require.NoError(t, x.tgt.AddUsers(x.e))
}

func dial(t *testing.T, ctx context.Context, addr string, mb *estate.Mailbox) *imapconn.Conn {
	t.Helper()
	a, err := imapconn.ParseAddress("imap://" + addr)
	require.NoError(t, err)
	c, err := imapconn.Dial(ctx, a, imapconn.Login{Username: mb.User, Password: mb.Password}, imapconn.Options{DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	return c
}

// run dials both sides with ctx (cancelling ctx tears the connections down,
// as a worker crash would) and runs one pass.
func (x *fixture) run(t *testing.T, ctx context.Context, cp transfer.Checkpoint, opts transfer.Options) (transfer.Checkpoint, transfer.Stats, error) {
	t.Helper()
	return x.runVia(t, ctx, x.tgt.Addr(), cp, opts)
}

func (x *fixture) runVia(t *testing.T, ctx context.Context, tgtAddr string, cp transfer.Checkpoint, opts transfer.Options) (transfer.Checkpoint, transfer.Stats, error) {
	t.Helper()
	src := dial(t, ctx, x.src.Addr(), x.mb)
	defer src.Close()
	tgt := dial(t, ctx, tgtAddr, x.mb)
	defer tgt.Close()
	return transfer.Run(ctx, src, tgt, cp, opts)
}

func (x *fixture) verify(t *testing.T, maxMessageSize int64) estate.Report {
	t.Helper()
	rep, err := estate.Verify(testCtx(t), x.src.Account(x.mb), x.tgt.Account(x.mb), estate.VerifyOptions{MaxMessageSize: maxMessageSize})
	require.NoError(t, err)
	return rep
}

func (x *fixture) validate(t *testing.T, cp transfer.Checkpoint) transfer.Validation {
	t.Helper()
	ctx := testCtx(t)
	src := dial(t, ctx, x.src.Addr(), x.mb)
	defer src.Close()
	tgt := dial(t, ctx, x.tgt.Addr(), x.mb)
	defer tgt.Close()
	v, err := transfer.Validate(ctx, src, tgt, cp, transfer.FolderRules{})
	require.NoError(t, err)
	return v
}

// client is a raw IMAP session for tampering with a server.
func client(t *testing.T, srv *estate.Server, mb *estate.Mailbox) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Login(mb.User, mb.Password).Wait())
	return c
}

func appendMsg(t *testing.T, c *imapclient.Client, folder string, m estate.Message) {
	t.Helper()
	app := c.Append(folder, int64(len(m.Raw)), &imap.AppendOptions{Flags: m.Flags, Time: m.Date})
	_, err := app.Write(m.Raw)
	require.NoError(t, err)
	require.NoError(t, app.Close())
	_, err = app.Wait()
	require.NoError(t, err)
}

// uidOf returns the UID of the first message in the selected-able folder
// whose body is exactly raw.
func uidOf(t *testing.T, c *imapclient.Client, folder string, raw []byte) imap.UID {
	t.Helper()
	_, err := c.Select(folder, nil).Wait()
	require.NoError(t, err)
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	require.NoError(t, err)
	for _, m := range msgs {
		if bytes.Equal(m.FindBodySection(section), raw) {
			return m.UID
		}
	}
	t.Fatalf("no message with that body in %q", folder)
	return 0
}

// --- expectations derived from the estate ---------------------------------

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func messageID(raw []byte) string {
	hdr, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(hdr), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

type largeItem struct {
	folder    string
	uid       uint32
	size      int64
	messageID string
	sum       string
}

// counts returns the number of messages, of those at most limit bytes, and
// the items over limit (UIDs follow Folder.Messages order from 1).
func counts(mb *estate.Mailbox, limit int64) (total, ordinary int64, large []largeItem) {
	for _, f := range mb.Folders {
		for i, m := range f.Messages {
			total++
			if int64(len(m.Raw)) > limit {
				large = append(large, largeItem{f.Name, uint32(i + 1), int64(len(m.Raw)), messageID(m.Raw), sum(m.Raw)})
				continue
			}
			ordinary++
		}
	}
	return
}

// planOrder is the order in which Run visits the folders (by target name,
// which equals the source name between two estate servers).
func planOrder(mb *estate.Mailbox) []estate.Folder {
	fs := append([]estate.Folder(nil), mb.Folders...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	return fs
}

func cloneCP(t *testing.T, cp transfer.Checkpoint) transfer.Checkpoint {
	t.Helper()
	b, err := json.Marshal(cp)
	require.NoError(t, err)
	var out transfer.Checkpoint
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func folderState(t *testing.T, cp transfer.Checkpoint, source string) transfer.FolderState {
	t.Helper()
	for _, f := range cp.Folders {
		if f.Source == source {
			return f
		}
	}
	t.Fatalf("no folder state for %q", source)
	return transfer.FolderState{}
}

func skippedIn(cp transfer.Checkpoint, folder string) []transfer.SkippedItem {
	var out []transfer.SkippedItem
	for _, s := range cp.Skipped {
		if s.Folder == folder {
			out = append(out, s)
		}
	}
	return out
}

// stager is a Stage callback that hashes what it is given.
type stager struct {
	mu    sync.Mutex
	calls int
	sums  map[string]string // staged name -> sha256 of the bytes received
}

func (s *stager) stage(_ context.Context, item transfer.SkippedItem, body io.Reader) (string, error) {
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return "", err
	}
	if n != item.Size {
		return "", fmt.Errorf("stage got %d bytes, item says %d", n, item.Size)
	}
	name := fmt.Sprintf("%s/%d/%d.eml", item.Folder, item.UIDValidity, item.UID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sums == nil {
		s.sums = map[string]string{}
	}
	s.calls++
	s.sums[name] = hex.EncodeToString(h.Sum(nil))
	return name, nil
}

func baseOptions(st *stager) transfer.Options {
	o := transfer.Options{MaxMessageSize: maxSize, MaxLargeItems: -1, MaxBadItems: 0, BatchSize: 16}
	if st != nil {
		o.Stage = st.stage
	}
	return o
}

func settled(st transfer.Stats) int64 { return st.Copied + st.Matched + int64(st.Skipped) }

// --- 1. a full pass --------------------------------------------------------

func TestRunFullPass(t *testing.T) {
	for _, rev2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("IMAP4rev2=%v", rev2), func(t *testing.T) {
			ctx := testCtx(t)
			e := testEstate(t)
			x := newFixture(t, e, estate.ServerOptions{IMAP4rev2: rev2})
			total, ordinary, large := counts(x.mb, maxSize)

			st := &stager{}
			opts := baseOptions(st)
			var commits []transfer.Checkpoint
			opts.Commit = func(cp transfer.Checkpoint) error {
				commits = append(commits, cloneCP(t, cp))
				return nil
			}
			progressCalls := 0
			opts.Progress = func(transfer.Checkpoint, transfer.Stats) { progressCalls++ }

			cp, stats, err := x.run(t, ctx, transfer.Checkpoint{}, opts)
			require.NoError(t, err)

			require.Equal(t, len(x.mb.Folders), stats.Folders)
			require.Equal(t, total, stats.SourceTotal)
			require.Equal(t, ordinary, stats.Copied)
			require.Equal(t, total, stats.BodiesRead)
			require.Zero(t, stats.Matched)
			require.Equal(t, len(large), stats.Skipped)
			require.GreaterOrEqual(t, int64(progressCalls), total)
			require.Len(t, commits, len(x.mb.Folders), "one commit per finished folder")
			require.Equal(t, cp, commits[len(commits)-1])

			// Every folder is settled to its last UID.
			require.Len(t, cp.Folders, len(x.mb.Folders))
			for _, f := range x.mb.Folders {
				fs := folderState(t, cp, f.Name)
				require.Equal(t, f.Name, fs.Target)
				require.Equal(t, uint32(len(f.Messages)), fs.LastUID, f.Name)
				require.NotZero(t, fs.UIDValidity, f.Name)
				require.Zero(t, fs.UIDValidityResets)
			}

			// Oversized items: staged with their exact bytes and recorded.
			require.Len(t, cp.Skipped, len(large))
			require.Equal(t, len(large), st.calls)
			for _, want := range large {
				var got *transfer.SkippedItem
				for i := range cp.Skipped {
					if cp.Skipped[i].Folder == want.folder && cp.Skipped[i].UID == want.uid {
						got = &cp.Skipped[i]
					}
				}
				require.NotNil(t, got, "skipped item %s uid %d", want.folder, want.uid)
				require.Equal(t, transfer.ReasonTooLarge, got.Reason)
				require.True(t, got.IsLarge())
				require.Equal(t, want.size, got.Size)
				require.Equal(t, want.messageID, got.MessageID)
				require.NotEmpty(t, want.messageID)
				require.Equal(t, folderState(t, cp, want.folder).UIDValidity, got.UIDValidity)
				require.Contains(t, got.Detail, fmt.Sprint(maxSize))
				require.Equal(t, fmt.Sprintf("%s/%d/%d.eml", want.folder, got.UIDValidity, want.uid), got.StagedAs)
				require.Equal(t, want.sum, st.sums[got.StagedAs], "staged bytes of %s", got.StagedAs)
			}

			// Every folder arrived, empty, nested and non-ASCII ones included.
			tgt := dial(t, ctx, x.tgt.Addr(), x.mb)
			defer tgt.Close()
			folders, err := tgt.Folders()
			require.NoError(t, err)
			var names []string
			for _, f := range folders {
				names = append(names, f.Name)
			}
			for _, f := range x.mb.Folders {
				require.Contains(t, names, f.Name)
			}

			// Independent witness: byte-exact, flags, dates; large items absent.
			rep := x.verify(t, maxSize)
			require.True(t, rep.OK(), rep.String())
			require.Equal(t, int(total), rep.Messages)
			require.Equal(t, len(large), rep.ExpectedMissing)
			require.Equal(t, len(x.mb.Folders), rep.Folders)
		})
	}
}

// --- 2. re-runs ------------------------------------------------------------

func TestRerunIsIdempotent(t *testing.T) {
	ctx := testCtx(t)
	e := testEstate(t)
	x := newFixture(t, e, estate.ServerOptions{})
	total, ordinary, large := counts(x.mb, maxSize)

	st := &stager{}
	cp, _, err := x.run(t, ctx, transfer.Checkpoint{}, baseOptions(st))
	require.NoError(t, err)
	first := cloneCP(t, cp)

	t.Run("with the checkpoint", func(t *testing.T) {
		calls := st.calls
		cp2, stats, err := x.run(t, ctx, first, baseOptions(st))
		require.NoError(t, err)
		require.Zero(t, stats.Copied)
		require.Zero(t, stats.BodiesRead, "no body may be read when nothing is new")
		require.Zero(t, stats.Matched)
		require.Zero(t, stats.Skipped)
		require.Zero(t, stats.Reconciled)
		require.Equal(t, total, stats.SourceTotal)
		require.Equal(t, calls, st.calls, "nothing staged again")
		require.Equal(t, first, cp2)
		rep := x.verify(t, maxSize)
		require.True(t, rep.OK(), rep.String())
	})

	t.Run("ledger lost", func(t *testing.T) {
		cp3, stats, err := x.run(t, ctx, transfer.Checkpoint{}, baseOptions(st))
		require.NoError(t, err)
		require.Zero(t, stats.Copied, "nothing may be appended twice")
		require.Equal(t, ordinary, stats.Matched)
		require.Equal(t, len(large), stats.Skipped)
		require.Equal(t, int64(len(large)), stats.BodiesRead, "only the unmatched (large) bodies are read")
		require.Len(t, cp3.Skipped, len(large))
		for _, f := range x.mb.Folders {
			require.Equal(t, uint32(len(f.Messages)), folderState(t, cp3, f.Name).LastUID)
		}
		rep := x.verify(t, maxSize)
		require.True(t, rep.OK(), rep.String())

		// And once more from the rebuilt checkpoint: nothing at all.
		_, stats, err = x.run(t, ctx, cp3, baseOptions(st))
		require.NoError(t, err)
		require.Zero(t, stats.BodiesRead)
		require.Zero(t, stats.Copied)
	})
}

// The checkpoint handed to Progress/Commit is the caller's to keep, and the
// one passed in to Run is not modified.
func TestCheckpointsAreSnapshots(t *testing.T) {
	ctx := testCtx(t)
	e := testEstate(t)
	x := newFixture(t, e, estate.ServerOptions{})

	type kept struct {
		cp   transfer.Checkpoint
		json string
	}
	var seen []kept
	opts := baseOptions(&stager{})
	opts.Progress = func(cp transfer.Checkpoint, _ transfer.Stats) {
		b, _ := json.Marshal(cp)
		seen = append(seen, kept{cp, string(b)})
	}
	_, _, err := x.run(t, ctx, transfer.Checkpoint{}, opts)
	require.NoError(t, err)
	require.NotEmpty(t, seen)
	for i, k := range seen {
		b, _ := json.Marshal(k.cp)
		require.JSONEq(t, k.json, string(b), "checkpoint #%d changed after Progress returned", i)
	}

	// Run must not write into the checkpoint it was given.
	in := seen[len(seen)/2].cp
	before, _ := json.Marshal(in)
	x.newTarget(t, estate.ServerOptions{})
	_, _, err = x.run(t, ctx, in, baseOptions(&stager{}))
	require.NoError(t, err)
	after, _ := json.Marshal(in)
	require.JSONEq(t, string(before), string(after))
}

// --- 3. crash safety -------------------------------------------------------

type snapshot struct {
	n  int64
	cp transfer.Checkpoint
	st transfer.Stats
}

func TestCrashAndResumeFromStaleCheckpoint(t *testing.T) {
	e := testEstate(t)
	mb := e.Mailboxes()[0]
	total, ordinary, _ := counts(mb, maxSize)

	// Folder boundary: the last message of the first non-empty folder that
	// is followed by a non-empty folder.
	var boundary int64
	order := planOrder(mb)
	for i, f := range order[:len(order)-1] {
		boundary += int64(len(f.Messages))
		if len(f.Messages) > 0 && len(order[i+1].Messages) > 0 {
			break
		}
	}
	require.Greater(t, boundary, int64(2))

	cases := []struct {
		name   string
		n, lag int64 // crash after n settled messages; resume from n-lag
	}{
		{"first message", 1, 0},
		{"first message, checkpoint lost", 1, 1},
		{"7 lag 3", 7, 3},
		{"50 lag 5", 50, 5},
		{"folder end", boundary, 0},
		{"folder end lag 1", boundary, 1},
		{"next folder start lag 3", boundary + 1, 3},
		{"near the end lag 4", total - 1, 4},
	}
	src := startServer(t, estate.ServerOptions{Name: "source"})
	require.NoError(t, src.Load(e))

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := &fixture{e: e, mb: mb, src: src}
			x.newTarget(t, estate.ServerOptions{})
			st := &stager{}

			crashCtx, crash := context.WithCancel(testCtx(t))
			defer crash()
			var snaps []snapshot
			opts := baseOptions(st)
			opts.BatchSize = 10
			opts.Progress = func(cp transfer.Checkpoint, s transfer.Stats) {
				n := settled(s)
				if len(snaps) == 0 || snaps[len(snaps)-1].n != n {
					snaps = append(snaps, snapshot{n, cloneCP(t, cp), s})
				}
				if n >= tc.n {
					crash() // the worker dies: connections and all
				}
			}
			_, st1, err := x.run(t, crashCtx, transfer.Checkpoint{}, opts)
			require.Error(t, err, "the run must stop at the crash")
			var ie *imapconn.Error
			require.True(t, errors.Is(err, context.Canceled) || (errors.As(err, &ie) && !ie.Permanent), "%v", err)
			require.Equal(t, tc.n, settled(st1), "the crash stops the run before the next message")

			// The heartbeat that survived is `lag` messages old.
			stale := snapshot{}
			for _, s := range snaps {
				if s.n <= tc.n-tc.lag {
					stale = s
				}
			}
			require.Equal(t, tc.n-tc.lag, stale.n)

			opts = baseOptions(st)
			opts.BatchSize = 10
			_, st2, err := x.run(t, testCtx(t), stale.cp, opts)
			require.NoError(t, err)

			// The messages appended after the stale checkpoint are recognised
			// on the target, not appended again.
			require.Equal(t, st1.Copied-stale.st.Copied, st2.Matched)
			require.Equal(t, ordinary, st1.Copied+st2.Copied, "every ordinary message appended exactly once")
			rep := x.verify(t, maxSize)
			require.True(t, rep.OK(), rep.String())
		})
	}
}

// lossyProxy forwards one client connection to an IMAP server and, when the
// server's nth "OK [APPENDUID" answer arrives, cuts both sides without
// forwarding it: the message is on the target, the client never learns it.
type lossyProxy struct {
	ln      net.Listener
	dropped chan struct{}
}

func startLossyProxy(t *testing.T, server string, nth int) *lossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &lossyProxy{ln: ln, dropped: make(chan struct{})}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		cc, err := ln.Accept()
		if err != nil {
			return
		}
		defer cc.Close()
		sc, err := net.Dial("tcp", server)
		if err != nil {
			return
		}
		defer sc.Close()
		up := make(chan struct{})
		go func() {
			defer close(up)
			io.Copy(sc, cc)
			sc.Close()
		}()
		defer func() { cc.Close(); sc.Close(); <-up }()
		br := bufio.NewReader(sc)
		seen := 0
		for {
			line, err := br.ReadBytes('\n')
			if bytes.Contains(line, []byte(" OK [APPENDUID ")) {
				if seen++; seen == nth {
					close(p.dropped)
					return
				}
			}
			if _, werr := cc.Write(line); werr != nil || err != nil {
				return
			}
		}
	}()
	return p
}

func (p *lossyProxy) Addr() string { return p.ln.Addr().String() }

func TestCrashAfterAppendBeforeCheckpoint(t *testing.T) {
	e := testEstate(t)
	mb := e.Mailboxes()[0]
	_, ordinary, _ := counts(mb, maxSize)
	src := startServer(t, estate.ServerOptions{Name: "source"})
	require.NoError(t, src.Load(e))

	for _, tc := range []struct {
		nth int   // the APPEND whose answer is lost
		lag int64 // and the heartbeat is this many messages older still
	}{{1, 0}, {11, 0}, {40, 0}, {40, 4}} {
		t.Run(fmt.Sprintf("append %d lag %d", tc.nth, tc.lag), func(t *testing.T) {
			x := &fixture{e: e, mb: mb, src: src}
			x.newTarget(t, estate.ServerOptions{})
			proxy := startLossyProxy(t, x.tgt.Addr(), tc.nth)

			var snaps []snapshot
			opts := baseOptions(&stager{})
			opts.Progress = func(cp transfer.Checkpoint, s transfer.Stats) {
				snaps = append(snaps, snapshot{settled(s), cloneCP(t, cp), s})
			}
			cp1, st1, err := x.runVia(t, testCtx(t), proxy.Addr(), transfer.Checkpoint{}, opts)
			require.Error(t, err)
			select {
			case <-proxy.dropped:
			default:
				t.Fatalf("the APPEND answer was never dropped; run ended with %v", err)
			}
			var ie *imapconn.Error
			require.ErrorAs(t, err, &ie)
			require.False(t, ie.Permanent, "a lost connection is transient: %v", err)
			require.Equal(t, int64(tc.nth-1), st1.Copied, "the lost APPEND is not counted")

			resume := cp1
			appendedAfter := int64(1) // the lost one
			if tc.lag > 0 {
				var stale snapshot
				for _, s := range snaps {
					if s.n <= settled(st1)-tc.lag {
						stale = s
					}
				}
				resume = stale.cp
				appendedAfter += st1.Copied - stale.st.Copied
			}
			_, st2, err := x.run(t, testCtx(t), resume, baseOptions(&stager{}))
			require.NoError(t, err)
			require.Equal(t, appendedAfter, st2.Matched)
			require.Equal(t, ordinary, st1.Copied+1+st2.Copied)
			rep := x.verify(t, maxSize)
			require.True(t, rep.OK(), rep.String())
		})
	}
}

// --- 4. UIDVALIDITY --------------------------------------------------------

func TestCheckpointWithOtherUIDValidity(t *testing.T) {
	ctx := testCtx(t)
	e := testEstate(t)
	x := newFixture(t, e, estate.ServerOptions{})
	_, _, large := counts(x.mb, maxSize)
	cp, _, err := x.run(t, ctx, transfer.Checkpoint{}, baseOptions(&stager{}))
	require.NoError(t, err)

	// As if the checkpoint came from another source server whose INBOX had
	// another UIDVALIDITY.
	cp = cloneCP(t, cp)
	real := folderState(t, cp, "INBOX").UIDValidity
	for i := range cp.Folders {
		if cp.Folders[i].Source == "INBOX" {
			cp.Folders[i].UIDValidity = real + 1000
		}
	}
	inbox := x.mb.Folder("INBOX")
	st := &stager{}
	cp2, stats, err := x.run(t, ctx, cp, baseOptions(st))
	require.NoError(t, err)
	fs := folderState(t, cp2, "INBOX")
	require.Equal(t, 1, fs.UIDValidityResets)
	require.Equal(t, real, fs.UIDValidity)
	require.Equal(t, uint32(len(inbox.Messages)), fs.LastUID)
	require.Zero(t, stats.Copied)
	require.Equal(t, int64(len(inbox.Messages)-1), stats.Matched, "INBOX holds one large item")
	require.Len(t, cp2.Skipped, len(large), "the re-skipped large item is not listed twice")
	rep := x.verify(t, maxSize)
	require.True(t, rep.OK(), rep.String())
}

func TestSourceFolderRecreated(t *testing.T) {
	ctx := testCtx(t)
	e := testEstate(t)
	mb := e.Mailboxes()[0]
	const name = "Clinical & Admin"
	folder := mb.Folder(name)
	// Give the folder a large item of its own, at its last UID.
	var big estate.Message
	for _, m := range mb.Folder("INBOX").Messages {
		if len(m.Raw) > maxSize {
			big = m
		}
	}
	require.NotNil(t, big.Raw)
	folder.Messages = append(folder.Messages, big)
	n := len(folder.Messages)
	require.GreaterOrEqual(t, n, 3)

	x := newFixture(t, e, estate.ServerOptions{})
	cp, _, err := x.run(t, ctx, transfer.Checkpoint{}, baseOptions(&stager{}))
	require.NoError(t, err)
	oldV := folderState(t, cp, name).UIDValidity
	sk := skippedIn(cp, name)
	require.Len(t, sk, 1)
	require.Equal(t, uint32(n), sk[0].UID)

	// The source folder is deleted and re-created: new UIDVALIDITY, messages
	// in reverse order (the large item is now UID 1, the first message UID
	// n), plus one message that is really new.
	c := client(t, x.src, mb)
	require.NoError(t, c.Delete(name).Wait())
	require.NoError(t, c.Create(name, nil).Wait())
	for i := n - 1; i >= 0; i-- {
		appendMsg(t, c, name, folder.Messages[i])
	}
	fresh := estate.Message{
		Raw:   []byte("From: a@b.example\r\nTo: c@d.example\r\nSubject: after the re-creation\r\nMessage-ID: <fresh@b.example>\r\n\r\nnew\r\n"),
		Flags: []imap.Flag{imap.FlagSeen},
		Date:  time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
	}
	appendMsg(t, c, name, fresh)

	st := &stager{}
	cp2, stats, err := x.run(t, ctx, cp, baseOptions(st))
	require.NoError(t, err)
	fs := folderState(t, cp2, name)
	require.Equal(t, 1, fs.UIDValidityResets)
	require.NotEqual(t, oldV, fs.UIDValidity)
	require.Equal(t, uint32(n+1), fs.LastUID)
	require.Equal(t, int64(1), stats.Copied, "only the really new message")
	require.Equal(t, int64(n-1), stats.Matched)
	require.Equal(t, 1, st.calls, "the large item is staged under its new UID")

	// The checkpoint describes the folder as it is now: one skipped item, at
	// its new UID under the new UIDVALIDITY.
	sk = skippedIn(cp2, name)
	require.Len(t, sk, 1, "%+v", sk)
	require.Equal(t, uint32(1), sk[0].UID)
	require.Equal(t, fs.UIDValidity, sk[0].UIDValidity)
	require.Equal(t, sum(big.Raw), st.sums[sk[0].StagedAs])

	rep := x.verify(t, maxSize)
	require.True(t, rep.OK(), rep.String())
	v := x.validate(t, cp2)
	require.True(t, v.OK(), "%+v", v)

	// Validate still notices a message missing at the UID where the large
	// item used to be.
	tc := client(t, x.tgt, mb)
	uid := uidOf(t, tc, name, folder.Messages[0].Raw)
	require.NoError(t, tc.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	require.NoError(t, tc.Expunge().Close())
	v = x.validate(t, cp2)
	require.False(t, v.OK())
	for _, f := range v.Folders {
		if f.Source == name {
			require.Equal(t, 1, f.Missing, "%+v", f)
		}
	}
	// A stale checkpoint (from before the re-creation) lists UID n of the
	// old numbering as skipped: that names nothing now, so both the deleted
	// message and the large item (unknown to that checkpoint) are missing.
	require.Equal(t, []transfer.SkippedItem{{Folder: name, UIDValidity: oldV, UID: uint32(n), Size: int64(len(big.Raw)),
		MessageID: messageID(big.Raw), Reason: transfer.ReasonTooLarge, Detail: sk[0].Detail, StagedAs: fmt.Sprintf("%s/%d/%d.eml", name, oldV, n),
		Flags: sk[0].Flags, Date: sk[0].Date}},
		skippedIn(cp, name))
	v = x.validate(t, cp)
	for _, f := range v.Folders {
		if f.Source == name {
			require.Zero(t, f.Skipped, "%+v", f)
			require.Equal(t, 2, f.Missing, "%+v", f)
		}
	}
}

// --- 5. target rejects a message -------------------------------------------

func TestTargetRejectsMessage(t *testing.T) {
	const appendLimit = 20 << 10
	e := testEstate(t)
	mb := e.Mailboxes()[0]

	// The rejected items: over the target's real limit, under the configured one.
	type item struct {
		folder    string
		uid       uint32
		messageID string
	}
	var rejected []item
	for _, f := range planOrder(mb) {
		for i, m := range f.Messages {
			if len(m.Raw) > appendLimit && len(m.Raw) <= maxSize {
				rejected = append(rejected, item{f.Name, uint32(i + 1), messageID(m.Raw)})
			}
		}
	}
	require.GreaterOrEqual(t, len(rejected), 3)
	_, _, large := counts(mb, maxSize)

	x := newFixture(t, e, estate.ServerOptions{AppendLimit: appendLimit})

	t.Run("MaxBadItems 0 fails", func(t *testing.T) {
		cp, _, err := x.run(t, testCtx(t), transfer.Checkpoint{}, baseOptions(&stager{}))
		require.ErrorIs(t, err, transfer.ErrPolicy)
		// Folders are worked biggest first: the first refusal met is any of them.
		var first item
		for _, r := range rejected {
			if strings.Contains(err.Error(), fmt.Sprintf("%s uid %d:", r.folder, r.uid)) {
				first = r
			}
		}
		require.NotEmpty(t, first.folder, "error names a rejected item: %v", err)
		require.Contains(t, err.Error(), "Message too big")
		var bad []transfer.SkippedItem
		for _, s := range cp.Skipped {
			if !s.IsLarge() {
				bad = append(bad, s)
			}
		}
		require.Len(t, bad, 1)
		require.Equal(t, first.folder, bad[0].Folder)
		require.Equal(t, first.uid, bad[0].UID)

		// Retrying with the same policy fails the same way; the item is not
		// forgiven because it was recorded before.
		_, _, err = x.run(t, testCtx(t), cp, baseOptions(&stager{}))
		require.ErrorIs(t, err, transfer.ErrPolicy)
		require.Contains(t, err.Error(), fmt.Sprintf("%s uid %d", first.folder, first.uid))
	})

	t.Run("MaxBadItems -1 continues", func(t *testing.T) {
		x.newTarget(t, estate.ServerOptions{AppendLimit: appendLimit})
		opts := baseOptions(&stager{})
		opts.MaxBadItems = -1
		cp, stats, err := x.run(t, testCtx(t), transfer.Checkpoint{}, opts)
		require.NoError(t, err)
		require.Equal(t, len(rejected)+len(large), stats.Skipped)
		require.Len(t, cp.Skipped, len(rejected)+len(large))
		for _, r := range rejected {
			var got *transfer.SkippedItem
			for i := range cp.Skipped {
				if cp.Skipped[i].Folder == r.folder && cp.Skipped[i].UID == r.uid {
					got = &cp.Skipped[i]
				}
			}
			require.NotNil(t, got, "%s uid %d", r.folder, r.uid)
			require.Equal(t, transfer.ReasonTooBig, got.Reason)
			require.Equal(t, r.messageID, got.MessageID, "read from the message's own header as it streamed")
			require.Contains(t, got.Detail, "Message too big")
			require.Empty(t, got.StagedAs)
			require.False(t, got.IsLarge(), "a rejected item is lost, not staged: it counts as bad")
		}
		// Everything at most appendLimit arrived, exactly once.
		rep := x.verify(t, appendLimit)
		require.True(t, rep.OK(), rep.String())
		v := x.validate(t, cp)
		require.True(t, v.OK(), "%+v", v)
	})
}

// --- 6. Validate -----------------------------------------------------------

func TestValidate(t *testing.T) {
	ctx := testCtx(t)
	e := testEstate(t)
	x := newFixture(t, e, estate.ServerOptions{})
	total, ordinary, large := counts(x.mb, maxSize)
	cp, _, err := x.run(t, ctx, transfer.Checkpoint{}, baseOptions(&stager{}))
	require.NoError(t, err)

	v := x.validate(t, cp)
	require.True(t, v.OK(), "%+v", v)
	require.Empty(t, v.Problems)
	require.Len(t, v.Folders, len(x.mb.Folders))
	require.Equal(t, int(ordinary), v.Messages)
	skipped := 0
	for _, f := range v.Folders {
		skipped += f.Skipped
		require.Equal(t, f.SourceMessages, f.TargetMessages+f.Skipped, f.Source)
	}
	require.Equal(t, len(large), skipped)

	// Measure reads sizes only.
	src := dial(t, ctx, x.src.Addr(), x.mb)
	var n, size int64
	var over int
	for _, f := range x.mb.Folders {
		fn, fb, fl, err := transfer.Measure(src, f.Name, maxSize)
		require.NoError(t, err)
		n, size, over = n+fn, size+fb, over+fl
	}
	src.Close()
	var want int64
	for _, f := range x.mb.Folders {
		for _, m := range f.Messages {
			want += int64(len(m.Raw))
		}
	}
	require.Equal(t, total, n)
	require.Equal(t, want, size)
	require.Equal(t, len(large), over)

	check := func(t *testing.T, folder string) transfer.FolderCheck {
		t.Helper()
		v := x.validate(t, cp)
		for _, f := range v.Folders {
			if f.Source == folder {
				return f
			}
		}
		t.Fatalf("no check for %q", folder)
		return transfer.FolderCheck{}
	}
	c := client(t, x.tgt, x.mb)

	t.Run("extra message is reported, not a failure", func(t *testing.T) {
		appendMsg(t, c, "Drafts", estate.Message{Raw: []byte("Subject: delivered after cutover\r\n\r\nhi\r\n"), Date: time.Now()})
		f := check(t, "Drafts")
		require.Equal(t, 1, f.Extra)
		require.True(t, f.OK())
	})
	t.Run("duplicate", func(t *testing.T) {
		m := x.mb.Folder("Sent").Messages[0]
		appendMsg(t, c, "Sent", m)
		f := check(t, "Sent")
		require.Equal(t, 1, f.Duplicates, "%+v", f)
		require.False(t, f.OK())
		rep := x.verify(t, maxSize)
		require.False(t, rep.OK())
	})
	t.Run("flag mismatch", func(t *testing.T) {
		m := x.mb.Folder("Archive/2023").Messages[0]
		uid := uidOf(t, c, "Archive/2023", m.Raw)
		op := imap.StoreFlagsAdd
		for _, fl := range m.Flags {
			if fl == imap.FlagFlagged {
				op = imap.StoreFlagsDel
			}
		}
		require.NoError(t, c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close())
		f := check(t, "Archive/2023")
		require.Equal(t, 1, f.FlagMismatch, "%+v", f)
		require.Zero(t, f.Missing)
		require.False(t, f.OK())
	})
	t.Run("missing", func(t *testing.T) {
		m := x.mb.Folder("Ärzte").Messages[0]
		uid := uidOf(t, c, "Ärzte", m.Raw)
		require.NoError(t, c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
		require.NoError(t, c.Expunge().Close())
		f := check(t, "Ärzte")
		require.Equal(t, 1, f.Missing, "%+v", f)
		require.False(t, f.OK())
	})
	t.Run("missing folder", func(t *testing.T) {
		require.NoError(t, c.Delete("Projects").Wait())
		v := x.validate(t, cp)
		require.False(t, v.OK())
		require.Len(t, v.Problems, 1)
		require.Contains(t, v.Problems[0], `"Projects"`)
	})
}

// Identical bodies with different flags are paired exactly before any
// difference is counted.
func TestValidatePairsIdenticalBodies(t *testing.T) {
	ctx := testCtx(t)
	mk := func(flags ...imap.Flag) estate.Message {
		return estate.Message{Raw: []byte("Subject: same\r\nMessage-ID: <same@x.example>\r\n\r\nsame body\r\n"), Flags: flags, Date: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	}
	srcE := &estate.Estate{Orgs: []estate.Org{{Code: "V", Mailboxes: []estate.Mailbox{{
		Address: "v@v.example", User: "v@v.example", Password: "pw",
		Folders: []estate.Folder{{Name: "INBOX", Messages: []estate.Message{mk(imap.FlagAnswered), mk(imap.FlagFlagged)}}},
	}}}}}
	tgtE := &estate.Estate{Orgs: []estate.Org{{Code: "V", Mailboxes: []estate.Mailbox{{
		Address: "v@v.example", User: "v@v.example", Password: "pw",
		Folders: []estate.Folder{{Name: "INBOX", Messages: []estate.Message{mk(imap.FlagFlagged), mk(imap.FlagSeen)}}},
	}}}}}
	src := startServer(t, estate.ServerOptions{Name: "source"})
	require.NoError(t, src.Load(srcE))
	tgt := startServer(t, estate.ServerOptions{Name: "target"})
	require.NoError(t, tgt.Load(tgtE))
	mb := &srcE.Orgs[0].Mailboxes[0]
	sc := dial(t, ctx, src.Addr(), mb)
	defer sc.Close()
	tc := dial(t, ctx, tgt.Addr(), mb)
	defer tc.Close()
	v, err := transfer.Validate(ctx, sc, tc, transfer.Checkpoint{}, transfer.FolderRules{})
	require.NoError(t, err)
	require.Len(t, v.Folders, 1)
	require.Equal(t, 1, v.Folders[0].FlagMismatch, "one message (\\Answered vs \\Seen) differs: %+v", v.Folders[0])
	require.Zero(t, v.Folders[0].Missing)
	require.Zero(t, v.Folders[0].Duplicates)
}

// --- 7. Plan ---------------------------------------------------------------

func folder(name string, delim rune, special imap.MailboxAttr, noSelect bool) imapconn.Folder {
	f := imapconn.Folder{Name: name, Path: strings.Split(name, string(delim)), SpecialUse: special, NoSelect: noSelect}
	if special != "" {
		f.Attrs = []imap.MailboxAttr{special}
	}
	return f
}

func targets(plan []transfer.FolderPlan) map[string]string {
	out := map[string]string{}
	for _, p := range plan {
		out[p.Source] = p.Target
	}
	return out
}

func TestPlan(t *testing.T) {
	src := []imapconn.Folder{
		folder("INBOX", '/', "", false),
		folder("INBOX/Receipts", '/', "", false),
		folder("Sent Messages", '/', imap.MailboxAttrSent, false),
		folder("Deleted Messages", '/', imap.MailboxAttrTrash, false),
		folder("Archive", '/', "", true),
		folder("Archive/2023", '/', "", false),
		folder("Archive/2023/Q1", '/', "", false),
		folder("Réunions/Été 2024", '/', "", false),
		folder("Dr. Smith", '/', "", false), // '.' is the target's delimiter
		folder("Clinical & Admin", '/', "", false),
	}
	tgt := []imapconn.Folder{
		folder("INBOX", '.', "", false),
		folder("Sent Items", '.', imap.MailboxAttrSent, false),
		folder("Deleted Items", '.', imap.MailboxAttrTrash, false),
	}

	t.Run("delimiters and special use", func(t *testing.T) {
		plan, err := transfer.Plan(src, tgt, '/', '.', transfer.FolderRules{})
		require.NoError(t, err)
		require.Equal(t, map[string]string{
			"INBOX":             "INBOX",
			"INBOX/Receipts":    "INBOX.Receipts",
			"Sent Messages":     "Sent Items",
			"Deleted Messages":  "Deleted Items",
			"Archive":           "Archive",
			"Archive/2023":      "Archive.2023",
			"Archive/2023/Q1":   "Archive.2023.Q1",
			"Réunions/Été 2024": "Réunions.Été 2024",
			"Dr. Smith":         "Dr_ Smith",
			"Clinical & Admin":  "Clinical & Admin",
		}, targets(plan))
		// Parents before children, and \Noselect carried over.
		pos := map[string]int{}
		for i, p := range plan {
			pos[p.Target] = i
			if p.Source == "Archive" {
				require.True(t, p.NoSelect)
			}
		}
		require.Less(t, pos["Archive"], pos["Archive.2023"])
		require.Less(t, pos["Archive.2023"], pos["Archive.2023.Q1"])
	})

	t.Run("special use on an empty target keeps names", func(t *testing.T) {
		plan, err := transfer.Plan(src, nil, '/', '/', transfer.FolderRules{})
		require.NoError(t, err)
		require.Equal(t, "Sent Messages", targets(plan)["Sent Messages"])
		require.Equal(t, "Archive/2023/Q1", targets(plan)["Archive/2023/Q1"])
	})

	t.Run("map and exclude", func(t *testing.T) {
		rules := transfer.FolderRules{
			Map:     map[string]string{"Sent Messages": "Old/Sent", "Dr. Smith": "People/Smith"},
			Exclude: []string{"Archive/2023", "/Deleted Messages/"},
		}
		plan, err := transfer.Plan(src, tgt, '/', '.', rules)
		require.NoError(t, err)
		got := targets(plan)
		require.Equal(t, "Old.Sent", got["Sent Messages"], "Map wins over special use")
		require.Equal(t, "People.Smith", got["Dr. Smith"])
		require.NotContains(t, got, "Archive/2023")
		require.NotContains(t, got, "Archive/2023/Q1", "children of an excluded folder are excluded")
		require.NotContains(t, got, "Deleted Messages")
		require.Contains(t, got, "Archive", "only the exact path and its children are excluded")
	})

	t.Run("exclude is by path, not prefix", func(t *testing.T) {
		plan, err := transfer.Plan([]imapconn.Folder{folder("Arch", '/', "", false), folder("Archive", '/', "", false)}, nil, '/', '/',
			transfer.FolderRules{Exclude: []string{"Arch"}})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"Archive": "Archive"}, targets(plan))
	})

	t.Run("conflicts", func(t *testing.T) {
		// Two \Sent folders land in the target's one.
		_, err := transfer.Plan(append(src, folder("Sent", '/', imap.MailboxAttrSent, false)), tgt, '/', '.', transfer.FolderRules{})
		require.ErrorContains(t, err, "Sent Items")
		// A mapping onto an existing name (case-insensitively).
		_, err = transfer.Plan(src, tgt, '/', '.', transfer.FolderRules{Map: map[string]string{"Clinical & Admin": "archive/2023"}})
		require.ErrorContains(t, err, "Archive/2023")
		// On a '.' target, "A/B" becomes "A.B" and a source "A.B" becomes
		// "A_B": no collision, but a source "A_B" then collides with it.
		ab := []imapconn.Folder{folder("A/B", '/', "", false), folder("A.B", '/', "", false)}
		plan, err := transfer.Plan(ab, nil, '/', '.', transfer.FolderRules{})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"A/B": "A.B", "A.B": "A_B"}, targets(plan))
		_, err = transfer.Plan(append(ab, folder("A_B", '/', "", false)), nil, '/', '.', transfer.FolderRules{})
		require.ErrorContains(t, err, `"A_B"`)
	})
}

// The same mapping end to end: the target already has a \Sent folder of its own.
func TestRunMapsSpecialUseFolder(t *testing.T) {
	ctx := testCtx(t)
	e := testEstate(t)
	x := newFixture(t, e, estate.ServerOptions{})
	c := client(t, x.tgt, x.mb)
	require.NoError(t, c.Create("Sent Items", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}).Wait())

	cp, _, err := x.run(t, ctx, transfer.Checkpoint{}, baseOptions(&stager{}))
	require.NoError(t, err)
	require.Equal(t, "Sent Items", folderState(t, cp, "Sent").Target)

	rep, err := estate.Verify(ctx, x.src.Account(x.mb), x.tgt.Account(x.mb), estate.VerifyOptions{
		MaxMessageSize: maxSize,
		MapFolder: func(s string) string {
			if s == "Sent" {
				return "Sent Items"
			}
			return s
		},
	})
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	v := x.validate(t, cp)
	require.True(t, v.OK(), "%+v", v)
}
