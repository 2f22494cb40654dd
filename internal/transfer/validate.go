package transfer

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailshift/mailshift/internal/imapconn"
)

// FolderCheck is the validation of one folder.
type FolderCheck struct {
	Source         string `json:"source"`
	Target         string `json:"target"`
	SourceMessages int    `json:"source_messages"`
	TargetMessages int    `json:"target_messages"`
	Skipped        int    `json:"skipped"`
	Missing        int    `json:"missing"`
	Duplicates     int    `json:"duplicates"`
	FlagMismatch   int    `json:"flag_mismatch"`
	DateMismatch   int    `json:"date_mismatch"`
	// Extra messages exist only on the target (e.g. mail delivered there
	// after the routing switch); they are reported, never a failure.
	Extra int `json:"extra"`
	// Altered target messages differ from what the copy appended (their
	// size, or at LevelSample a sampled body, does not match the ledger's
	// digest).
	Altered int `json:"altered,omitempty"`
	// Sampled is how many target bodies LevelSample read; SampledUIDs are
	// their target UIDs.
	Sampled     int      `json:"sampled,omitempty"`
	SampledUIDs []uint32 `json:"sampled_uids,omitempty"`
}

// Totals adds up the folders' counts (Source and Target stay empty).
func (v Validation) Totals() FolderCheck {
	var t FolderCheck
	for _, f := range v.Folders {
		t.SourceMessages += f.SourceMessages
		t.TargetMessages += f.TargetMessages
		t.Skipped += f.Skipped
		t.Missing += f.Missing
		t.Duplicates += f.Duplicates
		t.FlagMismatch += f.FlagMismatch
		t.DateMismatch += f.DateMismatch
		t.Extra += f.Extra
		t.Altered += f.Altered
		t.Sampled += f.Sampled
	}
	return t
}

// OK reports whether the folder matches.
func (f FolderCheck) OK() bool {
	return f.Missing == 0 && f.Duplicates == 0 && f.FlagMismatch == 0 && f.DateMismatch == 0 && f.Altered == 0
}

// Validation is the comparison of a whole mailbox.
type Validation struct {
	// Level is how deep it looked.
	Level Level `json:"level,omitempty"`
	// Rerendered: the target re-renders MIME and was compared by identity
	// and content (ValidateOptions.Target).
	Rerendered bool          `json:"rerendered,omitempty"`
	Folders    []FolderCheck `json:"folders"`
	Messages   int           `json:"messages"`
	Bytes      int64         `json:"bytes"`
	Problems   []string      `json:"problems,omitempty"`
}

// OK reports whether every folder matches.
func (v Validation) OK() bool {
	for _, f := range v.Folders {
		if !f.OK() {
			return false
		}
	}
	return len(v.Problems) == 0
}

type digest struct {
	uid   imap.UID
	hash  string
	flags string
	date  int64
	size  int64
	// keys and content identify a message on a re-rendering target: its
	// identities (its own first) and its ContentDigest ("" when not read).
	keys    []string
	content string
}

// ValidateOptions choose how deep a validation looks.
type ValidateOptions struct {
	Level Level
	// Sample is how many messages per folder LevelSample reads (default
	// DefaultSample).
	Sample int
	// Digests are the ledger's digest segments by source folder
	// (IndexDigests).
	Digests map[string][]FolderDigests
	// Target says what the target keeps. A re-rendering target is compared
	// by Message-ID (or the fallback identity), INTERNALDATE, the flags it
	// keeps and, at LevelSample and LevelFull, ContentDigest: never by size
	// or bytes.
	Target Target
}

// SampleSize is how many messages per folder LevelSample reads.
func (o ValidateOptions) SampleSize() int {
	if o.Sample > 0 {
		return o.Sample
	}
	return DefaultSample
}

// Validate compares every source folder with its target folder by content
// hash (SHA-256 of the exact bytes), flags and INTERNALDATE. Items listed as
// skipped in the checkpoint are expected to be absent.
func Validate(ctx context.Context, src, tgt *imapconn.Conn, cp Checkpoint, rules FolderRules) (Validation, error) {
	return ValidateWith(ctx, src, tgt, cp, rules, ValidateOptions{Level: LevelFull})
}

// ValidateWith compares every source folder with its target folder at
// o.Level. Every level counts missing, duplicated and extra messages and
// flag and date mismatches: LevelFull identifies a message by the SHA-256
// of its bytes, read on both sides; the others by its size and Message-ID
// from FETCH metadata (a size changed on the target shows as missing);
// LevelSample also hashes a few target bodies per folder against the
// digests the copy recorded. Items listed as skipped in the checkpoint are
// expected to be absent.
func ValidateWith(ctx context.Context, src, tgt *imapconn.Conn, cp Checkpoint, rules FolderRules, o ValidateOptions) (Validation, error) {
	if o.Level == "" {
		o.Level = DefaultLevel
	}
	o.Sample = o.SampleSize()
	v := Validation{Level: o.Level, Rerendered: o.Target.Rerenders}
	read := func(c *imapconn.Conn, name string) ([]digest, uint32, error) {
		if o.Level == LevelFull && !o.Target.Rerenders {
			return digestFolder(c, name, o.Target)
		}
		return metaFolder(c, name, o.Target, o.Level == LevelFull)
	}
	srcFolders, err := src.Folders()
	if err != nil {
		return v, err
	}
	tgtFolders, err := tgt.Folders()
	if err != nil {
		return v, err
	}
	plan, err := Plan(srcFolders, tgtFolders, src.Delim, tgt.Delim, rules)
	if err != nil {
		return v, err
	}
	tgtExists := map[string]bool{}
	for _, f := range tgtFolders {
		tgtExists[f.Name] = true
	}
	for _, p := range plan {
		if err := ctx.Err(); err != nil {
			return v, err
		}
		if !tgtExists[p.Target] {
			v.Problems = append(v.Problems, fmt.Sprintf("target folder %q (from %q) does not exist", p.Target, p.Source))
			continue
		}
		if p.NoSelect {
			continue
		}
		sd, uidValidity, err := read(src, p.Source)
		if err != nil {
			return v, err
		}
		// A skipped item recorded under another UIDVALIDITY names a UID that
		// now belongs to another message (or to none).
		skipped := map[uint32]bool{}
		for _, s := range cp.Skipped {
			if s.Folder == p.Source && !s.Imported && (s.UIDValidity == 0 || s.UIDValidity == uidValidity) {
				skipped[s.UID] = true
			}
		}
		td, tgtUIDValidity, err := read(tgt, p.Target)
		if err != nil {
			return v, err
		}
		fc := FolderCheck{Source: p.Source, Target: p.Target, SourceMessages: len(sd), TargetMessages: len(td)}
		if o.Target.Rerenders {
			var want []digest
			for _, d := range sd {
				if skipped[uint32(d.uid)] {
					fc.Skipped++
					continue
				}
				want = append(want, d)
				v.Messages++
				v.Bytes += d.size
			}
			matchIdentities(want, td, &fc)
			if o.Level == LevelSample {
				if err := checkContent(tgt, p, td, byTargetUID(o.Digests[p.Source], uidValidity, tgtUIDValidity), o, &fc); err != nil {
					return v, err
				}
			}
			v.Folders = append(v.Folders, fc)
			continue
		}
		want := map[string][]digest{}
		for _, d := range sd {
			if skipped[uint32(d.uid)] {
				fc.Skipped++
				continue
			}
			want[d.hash] = append(want[d.hash], d)
			v.Messages++
			v.Bytes += d.size
		}
		have := map[string][]digest{}
		for _, d := range td {
			have[d.hash] = append(have[d.hash], d)
		}
		hashes := make([]string, 0, len(want))
		for h := range want {
			hashes = append(hashes, h)
		}
		sort.Strings(hashes)
		for _, h := range hashes {
			w, got := want[h], have[h]
			switch {
			case len(got) < len(w):
				fc.Missing += len(w) - len(got)
			case len(got) > len(w):
				fc.Duplicates += len(got) - len(w)
			}
			// Compare attributes of identical bodies as multisets: cancel exact
			// matches first, then pair what is left.
			wk, gk := attrKeys(w), attrKeys(got)
			wk = slices.DeleteFunc(wk, func(k string) bool {
				if i := slices.Index(gk, k); i >= 0 {
					gk = slices.Delete(gk, i, i+1)
					return true
				}
				return false
			})
			for _, k := range wk {
				if len(gk) == 0 {
					break // already counted as missing
				}
				if strings.SplitN(k, "|", 2)[0] != strings.SplitN(gk[0], "|", 2)[0] {
					fc.DateMismatch++
				} else {
					fc.FlagMismatch++
				}
				gk = gk[1:]
			}
			delete(have, h)
		}
		for _, ds := range have {
			fc.Extra += len(ds)
		}
		if o.Level == LevelSample {
			if err := checkDigests(tgt, p, td, byTargetUID(o.Digests[p.Source], uidValidity, tgtUIDValidity), o, &fc); err != nil {
				return v, err
			}
		}
		v.Folders = append(v.Folders, fc)
	}
	return v, nil
}

// checkDigests checks the target's messages against the digests the copy
// recorded for them: the size of each, and at LevelSample the SHA-256 of
// a sample of bodies.
func checkDigests(tgt *imapconn.Conn, p FolderPlan, td []digest, ledger map[uint32]Digest, o ValidateOptions, fc *FolderCheck) error {
	present := map[uint32]Digest{}
	altered := map[uint32]bool{}
	for _, d := range td {
		ld, ok := ledger[uint32(d.uid)]
		if !ok {
			continue
		}
		present[uint32(d.uid)] = ld
		if d.size != ld.Size {
			altered[uint32(d.uid)] = true
		}
	}
	// A digest without a sum is a message the copy found already there
	// (recorded for its keywords): its size is known, its bytes are not.
	for u, d := range present {
		if d.Sum == "" {
			delete(present, u)
		}
	}
	if o.Level == LevelSample && len(present) > 0 {
		pick := sampleOf(p.Target, present, o.Sample)
		sums, err := hashBodies(tgt, p.Target, pick, func(u uint32) string { return present[u].Hash })
		if err != nil {
			return err
		}
		for _, u := range pick {
			if sum, ok := sums[u]; ok && sum != present[u].Sum {
				altered[u] = true
			}
		}
		fc.Sampled, fc.SampledUIDs = len(pick), pick
	}
	fc.Altered = len(altered)
	return nil
}

// hashBodies reads the bodies of uids in folder name and returns their
// hashes by UID, each with the algorithm algo gives for it (its digest's).
func hashBodies(c *imapconn.Conn, name string, uids []uint32, algo func(uint32) string) (map[uint32]string, error) {
	out := map[uint32]string{}
	if len(uids) == 0 {
		return out, nil
	}
	if _, err := c.Select(name, true); err != nil {
		return nil, err
	}
	defer func() { c.C.Unselect().Wait() }()
	// A server may send a message's body before its UID, so every body is
	// hashed with each algorithm the sample's digests use (one, unless the
	// ledger spans a change of algorithm) and the UID picks the sum after.
	var algos []string
	for _, u := range uids {
		if a := algo(u); NewHash(a) != nil && !slices.Contains(algos, a) {
			algos = append(algos, a)
		}
	}
	sums, err := bodiesBy(c, name, uids, func(body io.Reader) (map[string]string, error) {
		hs := make([]hash.Hash, len(algos))
		ws := make([]io.Writer, len(algos))
		for i, a := range algos {
			hs[i] = NewHash(a)
			ws[i] = hs[i]
		}
		if _, err := io.Copy(io.MultiWriter(ws...), body); err != nil {
			return nil, err
		}
		by := map[string]string{}
		for i, a := range algos {
			by[a] = hex.EncodeToString(hs[i].Sum(nil))
		}
		return by, nil
	})
	if err != nil {
		return nil, err
	}
	for u, by := range sums {
		if sum := by[algo(u)]; sum != "" {
			out[u] = sum
		}
	}
	return out, nil
}

// bodiesBy reads the bodies of uids in the selected folder name and
// returns what fn makes of each, by UID.
func bodiesBy[T any](c *imapconn.Conn, name string, uids []uint32, fn func(body io.Reader) (T, error)) (map[uint32]T, error) {
	out := map[uint32]T{}
	if len(uids) == 0 {
		return out, nil
	}
	set := make([]imap.UID, len(uids))
	for i, u := range uids {
		set[i] = imap.UID(u)
	}
	cmd := c.C.Fetch(imap.UIDSetNum(set...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		var v T
		got := false
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				r, err := fn(it.Literal)
				if err != nil {
					return nil, imapconn.Classify("fetch "+name, err)
				}
				v, got = r, true
			}
		}
		if uid != 0 && got {
			out[uint32(uid)] = v
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, imapconn.Classify("fetch "+name, err)
	}
	return out, nil
}

// metaFolder is digestFolder from FETCH metadata alone: a message is
// identified by its size and Message-ID. On a re-rendering target it is
// known by its identities instead (Message-ID, or the fallback of Subject,
// From and Date) and, with content, by its ContentDigest, read from its
// body.
func metaFolder(c *imapconn.Conn, name string, t Target, content bool) ([]digest, uint32, error) {
	sel, err := c.Select(name, true)
	if err != nil {
		return nil, 0, err
	}
	defer func() { c.C.Unselect().Wait() }()
	if sel.NumMessages == 0 {
		return nil, sel.UIDValidity, nil
	}
	fields := messageIDField
	if t.Rerenders {
		fields = identityFields
	}
	metas, err := fetchMetaOpts(c.C, imap.UIDSet{{Start: 1, Stop: 0}}, 0, fields)
	if err != nil {
		return nil, 0, imapconn.Classify("fetch "+name, err)
	}
	var sums map[uint32]string
	if content {
		uids := make([]uint32, len(metas))
		for i, m := range metas {
			uids[i] = uint32(m.uid)
		}
		if sums, err = contentDigests(c, name, uids); err != nil {
			return nil, 0, err
		}
	}
	out := make([]digest, len(metas))
	for i, m := range metas {
		out[i] = digest{uid: m.uid, flags: flagKey(t.keptFlags(m.flags)), date: m.date.Unix(), size: m.size}
		if t.Rerenders {
			out[i].keys, out[i].content = identities(m), sums[uint32(m.uid)]
		} else {
			out[i].hash = fmt.Sprintf("%d|%s", m.size, m.messageID)
		}
	}
	return out, sel.UIDValidity, nil
}

func attrKeys(ds []digest) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%d|%s", d.date, d.flags)
	}
	sort.Strings(out)
	return out
}

func digestFolder(c *imapconn.Conn, name string, t Target) ([]digest, uint32, error) {
	sel, err := c.Select(name, true)
	if err != nil {
		return nil, 0, err
	}
	defer func() { c.C.Unselect().Wait() }()
	if sel.NumMessages == 0 {
		return nil, sel.UIDValidity, nil
	}
	cmd := c.C.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	var out []digest
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var d digest
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				d.uid = it.UID
			case imapclient.FetchItemDataFlags:
				d.flags = flagKey(t.keptFlags(it.Flags))
			case imapclient.FetchItemDataInternalDate:
				d.date = it.Time.Unix()
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					h := NewHash(DigestHash)
					n, err := io.Copy(h, it.Literal)
					if err != nil {
						return nil, 0, imapconn.Classify("fetch "+name, err)
					}
					d.size = n
					d.hash = hex.EncodeToString(h.Sum(nil))
				}
			}
		}
		out = append(out, d)
	}
	if err := cmd.Close(); err != nil {
		return nil, 0, imapconn.Classify("fetch "+name, err)
	}
	return out, sel.UIDValidity, nil
}

func flagKey(flags []imap.Flag) string {
	var fs []string
	for _, f := range flags {
		if strings.EqualFold(string(f), flagRecent) {
			continue
		}
		fs = append(fs, strings.ToLower(string(f)))
	}
	sort.Strings(fs)
	return strings.Join(fs, " ")
}

// Measure counts a folder's messages and bytes from RFC822.SIZE alone (no
// bodies read, nothing changed) and how many exceed maxSize.
func Measure(c *imapconn.Conn, name string, maxSize int64) (n, bytes int64, large int, err error) {
	sel, err := c.Select(name, true)
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() { c.C.Unselect().Wait() }()
	if sel.NumMessages == 0 {
		return 0, 0, 0, nil
	}
	cmd := c.C.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if s, ok := item.(imapclient.FetchItemDataRFC822Size); ok {
				n++
				bytes += s.Size
				if maxSize > 0 && s.Size > maxSize {
					large++
				}
			}
		}
	}
	return n, bytes, large, imapconn.Classify("fetch "+name, cmd.Close())
}

// contentDigests reads the bodies of uids in the selected folder name and
// returns their ContentDigest by UID.
func contentDigests(c *imapconn.Conn, name string, uids []uint32) (map[uint32]string, error) {
	return bodiesBy(c, name, uids, ContentDigest)
}

// matchIdentities compares a folder of a re-rendering target with what its
// source folder should have put there. Each source message takes an unused
// target message known by its own identity (Message-ID, or the fallback for
// a message without one: a target that gave it a Message-ID still knows it
// by the fallback), one with the same INTERNALDATE, flags and content first.
// A source message left without one is missing; a target message left over
// is a duplicate when a source message has its identity, else extra.
func matchIdentities(want, have []digest, fc *FolderCheck) {
	byKey := map[string][]int{}
	for i, d := range have {
		for _, k := range d.keys {
			byKey[k] = append(byKey[k], i)
		}
	}
	used := make([]bool, len(have))
	wanted := map[string]bool{}
	type pair struct{ w, h digest }
	var pending []digest
	var pairs []pair
	// Exact matches first, so an altered message never takes the place of
	// an intact copy of its twin.
	for _, w := range want {
		wanted[w.keys[0]] = true
		found := false
		for _, i := range byKey[w.keys[0]] {
			h := have[i]
			if !used[i] && h.date == w.date && h.flags == w.flags && (w.content == "" || h.content == "" || h.content == w.content) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			pending = append(pending, w)
		}
	}
	for _, w := range pending {
		found := false
		for _, i := range byKey[w.keys[0]] {
			if !used[i] {
				used[i], found = true, true
				pairs = append(pairs, pair{w, have[i]})
				break
			}
		}
		if !found {
			fc.Missing++
		}
	}
	for _, p := range pairs {
		switch {
		case p.w.date != p.h.date:
			fc.DateMismatch++
		case p.w.content != "" && p.h.content != "" && p.w.content != p.h.content:
			fc.Altered++
		default:
			fc.FlagMismatch++
		}
	}
	for i, h := range have {
		if used[i] {
			continue
		}
		dup := false
		for _, k := range h.keys {
			if wanted[k] {
				dup = true
			}
		}
		if dup {
			fc.Duplicates++
		} else {
			fc.Extra++
		}
	}
}

// checkContent is checkDigests for a re-rendering target: sizes mean
// nothing there, so LevelSample reads a sample of target bodies and
// compares their ContentDigest with the one the copy recorded.
func checkContent(tgt *imapconn.Conn, p FolderPlan, td []digest, ledger map[uint32]Digest, o ValidateOptions, fc *FolderCheck) error {
	present := map[uint32]Digest{}
	for _, d := range td {
		if ld, ok := ledger[uint32(d.uid)]; ok && ld.Content != "" {
			present[uint32(d.uid)] = ld
		}
	}
	if len(present) == 0 {
		return nil
	}
	pick := sampleOf(p.Target, present, o.Sample)
	if _, err := tgt.Select(p.Target, true); err != nil {
		return err
	}
	defer func() { tgt.C.Unselect().Wait() }()
	sums, err := contentDigests(tgt, p.Target, pick)
	if err != nil {
		return err
	}
	for _, u := range pick {
		if sum, ok := sums[u]; ok && sum != present[u].Content {
			fc.Altered++
		}
	}
	fc.Sampled, fc.SampledUIDs = len(pick), pick
	return nil
}
