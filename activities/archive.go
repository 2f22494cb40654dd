package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

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
		_, err := a.putStaging(ctx, name, heartbeatReader(ctx, body), map[string]string{
			"organization": in.Mailbox.Org, "mailbox": in.Mailbox.Address, "folder": it.Folder,
			"uid": fmt.Sprint(it.UID), "uidvalidity": fmt.Sprint(it.UIDValidity), "size": fmt.Sprint(it.Size),
			"messageid": it.MessageID, "flags": strings.Join(it.Flags, " "), "internaldate": it.Date.Format(time.RFC3339),
			"kind": "archive", "retain_until": res.RetainUntil.Format(time.DateOnly),
		})
		return err
	}
	beats := startPulse(ctx)
	defer beats.stop()
	progress := func(folder string, uv, last uint32) {
		done[folder] = [2]uint32{uv, last}
		beats.beat(maps.Clone(done)) // the pulse repeats it; done changes on
	}
	if _, _, err := transfer.Archive(ctx, src, done, put, progress, a.SpoolDir); err != nil {
		return res, temporalError("archive "+in.Mailbox.Address, err)
	}
	// The index is what the store holds, so a resumed export lists everything.
	objs, err := a.Staging.List(ctx, prefix)
	if err != nil {
		return res, temporalError("archive "+in.Mailbox.Address, err)
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
