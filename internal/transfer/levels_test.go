package transfer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/transfer"
)

// TestValidationLevelsCatchWhatTheyClaim copies three mailboxes between
// two Dovecots, recording the digests, then breaks each target in one way
// and validates it at every level: a missing message and a changed flag
// are caught at every level; a body altered in the target's storage (same
// size, same UID) is caught by sample when it is sampled and by full, and
// by design not by metadata, which reads no body.
func TestValidationLevelsCatchWhatTheyClaim(t *testing.T) {
	src, tgt := dcStartPair(t, dovecottest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := estate.Generate(estate.Spec{Seed: 31, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "LV", Mailboxes: 3, MeanMessages: 40}}})
	mbs := e.Mailboxes()
	if err := dovecottest.LoadEstate(src, mbs); err != nil {
		t.Fatal(err)
	}
	type copied struct {
		cp   transfer.Checkpoint
		segs []transfer.FolderDigests
	}
	var all []copied
	for _, mb := range mbs {
		if err := tgt.AddUser(mb.User, mb.Password); err != nil {
			t.Fatal(err)
		}
		var c copied
		opts := dcOptions()
		opts.Digests = func(d transfer.FolderDigests) error { c.segs = append(c.segs, d); return nil }
		cp, st, err := dcRun(t, ctx, src, tgt, mb, transfer.Checkpoint{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		c.cp = cp
		var n int64
		for _, s := range c.segs {
			n += int64(len(s.Digests))
			if s.Hash != transfer.DigestHash {
				t.Fatalf("%s: segment %s hashed with %q, want %q", mb.User, s.Source, s.Hash, transfer.DigestHash)
			}
		}
		if n != st.Copied {
			t.Fatalf("%s: %d digests for %d messages copied", mb.User, n, st.Copied)
		}
		all = append(all, c)
	}
	levels := []transfer.ValidateOptions{{Level: transfer.LevelMetadata}, {Level: transfer.LevelSample, Sample: 1000}, {Level: transfer.LevelFull}}
	validate := func(i int, o transfer.ValidateOptions) transfer.Validation {
		t.Helper()
		o.Digests = transfer.IndexDigests(all[i].segs)
		v, err := transfer.ValidateWith(ctx, dcDial(t, ctx, src, mbs[i]), dcDial(t, ctx, tgt, mbs[i]), all[i].cp, transfer.FolderRules{}, o)
		if err != nil {
			t.Fatal(err)
		}
		if v.Level != o.Level {
			t.Fatalf("validated at %s, asked %s", v.Level, o.Level)
		}
		return v
	}
	for i := range mbs {
		for _, o := range levels {
			if v := validate(i, o); !v.OK() {
				t.Fatalf("%s before any change, %s: %+v", mbs[i].User, o.Level, v.Totals())
			} else if o.Level == transfer.LevelSample && v.Totals().Sampled != v.Messages {
				t.Errorf("%s: sampled %d of %d", mbs[i].User, v.Totals().Sampled, v.Messages)
			}
		}
	}

	// Mailbox 0 loses a message, mailbox 1 gets a flag, mailbox 2 has a
	// body altered in place.
	c := dcDial(t, ctx, tgt, mbs[0])
	if _, err := c.Select("INBOX", false); err != nil {
		t.Fatal(err)
	}
	if err := c.C.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.C.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	c = dcDial(t, ctx, tgt, mbs[1])
	if _, err := c.Select("INBOX", false); err != nil {
		t.Fatal(err)
	}
	if err := c.C.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	alterOneBody(t, tgt.MaildirOf(mbs[2].User))

	// A sample smaller than the folder: as many bodies as asked per folder
	// with enough mail, the same ones every time.
	small := transfer.ValidateOptions{Level: transfer.LevelSample, Sample: 2}
	a, b := validate(0, small), validate(0, small)
	for i, f := range a.Folders {
		if want := min(2, f.TargetMessages); f.Sampled != want {
			t.Errorf("folder %s: sampled %d, want %d", f.Source, f.Sampled, want)
		}
		if !slices.Equal(f.SampledUIDs, b.Folders[i].SampledUIDs) {
			t.Errorf("folder %s: sampled %v, then %v", f.Source, f.SampledUIDs, b.Folders[i].SampledUIDs)
		}
	}

	for _, o := range levels {
		if tt := validate(0, o).Totals(); tt.Missing != 1 {
			t.Errorf("missing message at %s: %+v", o.Level, tt)
		}
		if tt := validate(1, o).Totals(); tt.FlagMismatch != 1 {
			t.Errorf("changed flag at %s: %+v", o.Level, tt)
		}
		v := validate(2, o)
		tt := v.Totals()
		switch o.Level {
		case transfer.LevelMetadata:
			if !v.OK() {
				t.Errorf("metadata reads no body, so it cannot see an altered one; it found %+v", tt)
			}
		case transfer.LevelSample:
			if tt.Altered != 1 || v.OK() {
				t.Errorf("altered body at sample: %+v", tt)
			}
			// A ledger written before digests named their algorithm holds
			// SHA-256 sums: the same body is found altered, and no other.
			legacy := sha256Segments(t, ctx, dcDial(t, ctx, src, mbs[2]), all[2].segs)
			o.Digests = transfer.IndexDigests(legacy)
			lv, err := transfer.ValidateWith(ctx, dcDial(t, ctx, src, mbs[2]), dcDial(t, ctx, tgt, mbs[2]), all[2].cp, transfer.FolderRules{}, o)
			if err != nil {
				t.Fatal(err)
			}
			if lt := lv.Totals(); lt.Altered != 1 || lt.Sampled != tt.Sampled {
				t.Errorf("altered body at sample against SHA-256 digests: %+v, want 1 altered of %d sampled", lt, tt.Sampled)
			}
		case transfer.LevelFull:
			if tt.Missing != 1 || v.OK() {
				t.Errorf("altered body at full: %+v", tt)
			}
		}
	}
}

// sha256Segments rewrites segs as a ledger from before digests named their
// algorithm: no Hash, and the SHA-256 of each source body as the sum.
func sha256Segments(t *testing.T, ctx context.Context, src *imapconn.Conn, segs []transfer.FolderDigests) []transfer.FolderDigests {
	t.Helper()
	var out []transfer.FolderDigests
	for _, seg := range segs {
		if _, err := src.Select(seg.Source, true); err != nil {
			t.Fatal(err)
		}
		sums := map[imap.UID]string{}
		msgs, err := src.C.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			for _, b := range m.BodySection {
				sum := sha256.Sum256(b.Bytes)
				sums[m.UID] = hex.EncodeToString(sum[:])
			}
		}
		seg.Hash = ""
		seg.Digests = slices.Clone(seg.Digests)
		for i := range seg.Digests {
			seg.Digests[i].Sum = sums[imap.UID(seg.Digests[i].UID)]
		}
		out = append(out, seg)
	}
	return out
}

// alterOneBody changes one byte of the body of one message file of the
// maildir's INBOX, in place: same size, same UID, other content.
func alterOneBody(t *testing.T, maildir string) {
	t.Helper()
	var files []string
	for _, sub := range []string{"cur", "new"} {
		m, _ := filepath.Glob(filepath.Join(maildir, "Maildir", sub, "*"))
		files = append(files, m...)
		m, _ = filepath.Glob(filepath.Join(maildir, sub, "*"))
		files = append(files, m...)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte("\n\n"))
		if j := bytes.Index(b, []byte("\r\n\r\n")); j >= 0 && (i < 0 || j < i) {
			i = j
		}
		if i < 0 || i+10 >= len(b) {
			continue
		}
		k := i + 4 + bytes.IndexAny(b[i+4:], "abcdefghijklmnopqrstuvwxyz")
		if k < i+4 {
			continue
		}
		b[k] = 'a' + (b[k]-'a'+1)%26
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no message file with a body under %s: %v", maildir, files)
}
