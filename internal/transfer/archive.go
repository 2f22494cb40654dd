package transfer

import (
	"context"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailshift/mailshift/internal/imapconn"
)

// ArchiveItem describes one source message being archived.
type ArchiveItem struct {
	Folder      string
	UIDValidity uint32
	UID         uint32
	Size        int64
	MessageID   string
	Flags       []string
	Date        time.Time
}

// ArchivePut stores one message body.
type ArchivePut func(ctx context.Context, it ArchiveItem, body io.Reader) error

// ArchiveProgress is called after every stored message with the folder's
// UIDVALIDITY and highest archived UID, for heartbeats.
type ArchiveProgress func(folder string, uidValidity, lastUID uint32)

// Archive streams every message of every selectable source folder to put,
// read-only on the source (EXAMINE, BODY.PEEK). done maps folder to
// "uidvalidity:lastUID" already archived (from a heartbeat), so a retry
// continues where it stopped; put must be idempotent for the rest.
func Archive(ctx context.Context, src *imapconn.Conn, done map[string][2]uint32, put ArchivePut, progress ArchiveProgress, spoolDir string) (messages int, bytes int64, err error) {
	folders, err := src.Folders()
	if err != nil {
		return 0, 0, err
	}
	for _, f := range folders {
		if f.NoSelect {
			continue
		}
		sel, err := src.Select(f.Name, true)
		if err != nil {
			return messages, bytes, err
		}
		var from uint32
		if d, ok := done[f.Name]; ok && d[0] == sel.UIDValidity {
			from = d[1]
		}
		if sel.NumMessages == 0 || (sel.UIDNext != 0 && uint32(sel.UIDNext) <= from+1) {
			continue
		}
		metas, err := fetchMeta(src.C, imap.UIDSet{{Start: imap.UID(from + 1), Stop: 0}})
		if err != nil {
			return messages, bytes, imapconn.Classify("fetch "+f.Name, err)
		}
		byUID := map[imap.UID]meta{}
		var uids []imap.UID
		for _, m := range metas {
			if uint32(m.uid) > from {
				byUID[m.uid] = m
				uids = append(uids, m.uid)
			}
		}
		slices.Sort(uids)
		for start := 0; start < len(uids); start += 500 {
			chunk := uids[start:min(start+500, len(uids))]
			n, b, err := archiveChunk(ctx, src.C, f.Name, sel.UIDValidity, chunk, byUID, put, progress, spoolDir)
			messages += n
			bytes += b
			if err != nil {
				return messages, bytes, err
			}
		}
	}
	return messages, bytes, nil
}

func archiveChunk(ctx context.Context, c *imapclient.Client, folder string, uidValidity uint32, uids []imap.UID, byUID map[imap.UID]meta, put ArchivePut, progress ArchiveProgress, spoolDir string) (int, int64, error) {
	var n int
	var bytes int64
	cmd := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	defer cmd.Close()
	store := func(uid imap.UID, body io.Reader, size int64) error {
		m := byUID[uid]
		it := ArchiveItem{Folder: folder, UIDValidity: uidValidity, UID: uint32(uid), Size: size, MessageID: m.messageID, Date: m.date}
		for _, fl := range m.flags {
			if !strings.EqualFold(string(fl), flagRecent) {
				it.Flags = append(it.Flags, string(fl))
			}
		}
		if err := put(ctx, it, body); err != nil {
			return err
		}
		n++
		bytes += size
		if progress != nil {
			progress(folder, uidValidity, uint32(uid))
		}
		return nil
	}
	if err := eachBody(ctx, cmd, spoolDir, store); err != nil {
		return n, bytes, err
	}
	return n, bytes, imapconn.Classify("fetch "+folder, cmd.Close())
}
