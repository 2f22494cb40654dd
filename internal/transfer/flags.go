package transfer

import (
	"context"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/imapconn"
)

// syncFlags brings the flags and keywords of messages copied by an earlier
// pass in line with the source. With CONDSTORE on the source it asks only
// for messages changed since the last pass (and for nothing when the
// folder's HIGHESTMODSEQ did not move); otherwise it compares metadata of
// both sides, which reads no bodies. Target messages are matched by the same
// fingerprint the crash reconciliation uses.
func (r *runner) syncFlags(ctx context.Context, p FolderPlan, st *FolderState, sel *imap.SelectData) error {
	if !r.opts.SyncFlags || st.LastUID == 0 {
		return nil
	}
	var since uint64
	if r.src.Has(imap.CapCondStore) && sel.HighestModSeq > 0 {
		if st.HighestModSeq == sel.HighestModSeq {
			return nil
		}
		since = st.HighestModSeq
	}
	changed, err := fetchMetaOpts(r.src.C, imap.UIDSet{{Start: 1, Stop: imap.UID(st.LastUID)}}, since, r.idFields())
	if err != nil {
		return imapconn.Classify("fetch flags "+p.Source, err)
	}
	if len(changed) == 0 {
		return nil
	}
	if _, err := r.tgt.Select(p.Target, false); err != nil {
		return err
	}
	defer func() { r.tgt.C.Unselect().Wait() }()
	targets, err := fetchMetaOpts(r.tgt.C, imap.UIDSet{{Start: 1, Stop: 0}}, 0, r.idFields())
	if err != nil {
		return imapconn.Classify("fetch flags "+p.Target, err)
	}
	byUID := map[imap.UID]meta{}
	var known pendingSet
	for _, t := range targets {
		known.add(r.opts.Target.keys(t), t.uid)
		byUID[t.uid] = t
	}
	for _, m := range changed {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, ok := known.takeMeta(r.opts.Target.keys(m), byUID)
		if !ok {
			continue // skipped item, or removed from the target by its user
		}
		flags := r.opts.Target.keptFlags(m.flags)
		if flagKey(flags) == flagKey(t.flags) {
			continue
		}
		store := r.tgt.C.Store(imap.UIDSetNum(t.uid), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: flags}, nil)
		if err := store.Close(); err != nil {
			return imapconn.Classify("store flags "+p.Target, err)
		}
		st.FlagUpdates++
		r.st.FlagsUpdated++
	}
	return nil
}
