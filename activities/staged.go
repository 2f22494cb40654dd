package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// keepAlive heartbeats every few seconds until stop is called, for an
// activity whose work has no natural progress points (validation digests
// whole folders): a pause or rollback then reaches it within seconds, and
// a dead worker is noticed.
func keepAlive(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// heartbeatReader heartbeats while a large body streams to staging, so a
// 150 MB item on a slow link does not look like a dead worker.
func heartbeatReader(ctx context.Context, r io.Reader) io.Reader {
	if !activity.IsActivity(ctx) {
		return r
	}
	return &hbReader{ctx: ctx, r: r}
}

type hbReader struct {
	ctx  context.Context
	r    io.Reader
	n    int64
	last int64
}

func (h *hbReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += int64(n)
	if h.n-h.last >= 4<<20 {
		h.last = h.n
		activity.RecordHeartbeat(h.ctx)
	}
	return n, err
}

// ImportStagedItems appends staged items that fit under the policy's
// maximum message size to the target, verified against their recorded hash
// first, and records them as imported in the mailbox ledger.
func (a *Activities) ImportStagedItems(ctx context.Context, in ImportInput) (ImportResult, error) {
	var res ImportResult
	opts := a.policy(in.Policy)
	ledger := staging.LedgerName(in.Mailbox.Org, in.Mailbox.Address)
	cp, err := a.loadLedger(ctx, ledger)
	if err != nil {
		return res, err
	}
	pending := 0
	for _, s := range cp.Skipped {
		if s.StagedAs != "" && !s.Imported {
			pending++
		}
	}
	if pending == 0 {
		return res, nil
	}
	tgt, release, err := a.dialSide(ctx, in.Mailbox, false, true)
	if err != nil {
		return res, err
	}
	defer release()
	open := func(ctx context.Context, name string) (io.ReadCloser, int64, error) {
		// Verify the whole object before an APPEND starts: a literal cannot be
		// taken back once the target has it.
		if _, err := staging.Verify(ctx, a.Staging, name); err != nil {
			return nil, 0, err
		}
		rc, obj, err := a.Staging.Get(ctx, name)
		if err != nil {
			return nil, 0, err
		}
		return readCloser{heartbeatReader(ctx, rc), rc}, obj.Size, nil
	}
	st, err := transfer.ImportStaged(ctx, tgt, &cp, opts.MaxMessageSize, open)
	if serr := a.saveJSON(context.WithoutCancel(ctx), ledger, cp); serr != nil && err == nil {
		err = serr
	}
	res = ImportResult{Imported: st.Imported, Bytes: st.Bytes, Present: st.Present, Remaining: st.Remaining}
	if err != nil {
		return res, wrapIMAP("mailbox "+in.Mailbox.Address, err)
	}
	return res, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// ArchiveMailbox exports every source message to the staging store under
// <org>/<mailbox>/archive/<folder>/<uidvalidity>/<uid>.eml with its flags,
// INTERNALDATE and retention date, then writes an index built from what the
// store holds. The source is only read.
func (a *Activities) ArchiveMailbox(ctx context.Context, in ArchiveInput) (ArchiveResult, error) {
	var res ArchiveResult
	done := map[string][2]uint32{}
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &done)
	}
	if in.RetainDays <= 0 {
		in.RetainDays = 90
	}
	res.RetainUntil = time.Now().UTC().AddDate(0, 0, in.RetainDays).Truncate(24 * time.Hour)
	src, release, err := a.dialSide(ctx, in.Mailbox, true, true)
	if err != nil {
		return res, err
	}
	defer release()
	prefix := staging.Name(in.Mailbox.Org, in.Mailbox.Address, "archive") + "/"
	put := func(ctx context.Context, it transfer.ArchiveItem, body io.Reader) error {
		name := prefix + staging.Name(it.Folder, fmt.Sprint(it.UIDValidity), fmt.Sprintf("%d.eml", it.UID))
		_, err := a.Staging.Put(ctx, name, heartbeatReader(ctx, body), map[string]string{
			"organization": in.Mailbox.Org, "mailbox": in.Mailbox.Address, "folder": it.Folder,
			"uid": fmt.Sprint(it.UID), "uidvalidity": fmt.Sprint(it.UIDValidity), "size": fmt.Sprint(it.Size),
			"messageid": it.MessageID, "flags": strings.Join(it.Flags, " "), "internaldate": it.Date.Format(time.RFC3339),
			"kind": "archive", "retain_until": res.RetainUntil.Format(time.DateOnly),
		})
		return err
	}
	progress := func(folder string, uv, last uint32) {
		done[folder] = [2]uint32{uv, last}
		activity.RecordHeartbeat(ctx, done)
	}
	if _, _, err := transfer.Archive(ctx, src, done, put, progress, a.SpoolDir); err != nil {
		return res, wrapIMAP("archive "+in.Mailbox.Address, err)
	}
	// The index is what the store holds, so a resumed export lists everything.
	objs, err := a.Staging.List(ctx, prefix)
	if err != nil {
		return res, wrapIMAP("archive "+in.Mailbox.Address, err)
	}
	index := struct {
		Mailbox     string           `json:"mailbox"`
		RetainUntil time.Time        `json:"retain_until"`
		Objects     []staging.Object `json:"objects"`
	}{Mailbox: in.Mailbox.Address, RetainUntil: res.RetainUntil}
	for _, o := range objs {
		if strings.HasSuffix(o.Name, ".eml") {
			index.Objects = append(index.Objects, o)
			res.Messages++
			res.Bytes += o.Size
		}
	}
	res.Index = staging.Name(in.Mailbox.Org, in.Mailbox.Address, "archive-index.json")
	b, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return res, err
	}
	if err := a.saveJSON(ctx, res.Index, json.RawMessage(b)); err != nil {
		return res, err
	}
	return res, nil
}
