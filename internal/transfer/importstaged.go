package transfer

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/imapconn"
)

// ImportStats summarise an import of staged items.
type ImportStats struct {
	Imported  int   `json:"imported"`
	Bytes     int64 `json:"bytes"`
	Present   int   `json:"already_present"`
	Remaining int   `json:"remaining"`
}

// OpenStaged returns a verified reader of a staged item and its size.
type OpenStaged func(ctx context.Context, name string) (io.ReadCloser, int64, error)

// ImportStaged appends staged items that now fit under maxSize to their
// target folders, byte for byte with their flags and INTERNALDATE, and marks
// them imported in cp. An item already on the target (same fingerprint, e.g.
// after a crash between APPEND and the ledger write) is marked without a
// second APPEND.
//
// On a re-rendering target an item is recognised by its Message-ID and
// INTERNALDATE (one without a Message-ID cannot be, and is appended); on a
// target without keywords, its keywords are not sent.
func ImportStaged(ctx context.Context, tgt *imapconn.Conn, cp *Checkpoint, maxSize int64, target Target, open OpenStaged) (ImportStats, error) {
	var st ImportStats
	targetOf := map[string]string{}
	for _, f := range cp.Folders {
		targetOf[f.Source] = f.Target
	}
	present := map[string]map[string][]imap.UID{} // target folder -> fingerprint -> uids
	for i := range cp.Skipped {
		it := &cp.Skipped[i]
		if it.StagedAs == "" || it.Imported {
			continue
		}
		if maxSize > 0 && it.Size > maxSize {
			st.Remaining++
			continue
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		folder := targetOf[it.Folder]
		if folder == "" {
			return st, fmt.Errorf("staged item %s: folder %q has no target in the ledger", it.StagedAs, it.Folder)
		}
		fps, ok := present[folder]
		if !ok {
			if _, err := tgt.Select(folder, true); err != nil {
				return st, err
			}
			fields := messageIDField
			if target.Rerenders {
				fields = identityFields
			}
			metas, err := fetchMetaOpts(tgt.C, imap.UIDSet{{Start: 1, Stop: 0}}, 0, fields)
			tgt.C.Unselect().Wait()
			if err != nil {
				return st, imapconn.Classify("fetch "+folder, err)
			}
			fps = map[string][]imap.UID{}
			for _, m := range metas {
				k := target.keys(m)[0]
				fps[k] = append(fps[k], m.uid)
			}
			present[folder] = fps
		}
		date, err := time.Parse(time.RFC3339, it.Date)
		if err != nil {
			return st, fmt.Errorf("staged item %s: date %q: %w", it.StagedAs, it.Date, err)
		}
		fp := target.keys(meta{date: date, size: it.Size, messageID: it.MessageID})[0]
		if uids := fps[fp]; len(uids) > 0 {
			it.Imported, it.ImportedUID = true, uint32(uids[0])
			fps[fp] = uids[1:]
			st.Present++
			continue
		}
		rc, size, err := open(ctx, it.StagedAs)
		if err != nil {
			return st, fmt.Errorf("staged item %s: %w", it.StagedAs, err)
		}
		flags := make([]imap.Flag, len(it.Flags))
		for i, f := range it.Flags {
			flags[i] = imap.Flag(f)
		}
		flags = target.keptFlags(flags)
		app := tgt.C.Append(folder, size, &imap.AppendOptions{Flags: flags, Time: date})
		n, err := io.Copy(app, rc)
		rc.Close()
		if err != nil || n != size {
			tgt.C.Close()
			if err == nil {
				err = fmt.Errorf("staging delivered %d of %d bytes", n, size)
			}
			return st, &imapconn.Error{Kind: imapconn.KindUnavailable, Op: "import " + it.StagedAs, Err: err}
		}
		if err := app.Close(); err != nil {
			return st, imapconn.Classify("append", err)
		}
		data, err := app.Wait()
		if err != nil {
			return st, imapconn.Classify("import "+it.StagedAs, err)
		}
		it.Imported = true
		if data != nil {
			it.ImportedUID = uint32(data.UID)
		}
		st.Imported++
		st.Bytes += size
	}
	return st, nil
}
