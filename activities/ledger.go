package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

func (a *Activities) loadLedger(ctx context.Context, name string) (transfer.Checkpoint, error) {
	var cp transfer.Checkpoint
	b, err := a.readStaging(ctx, name)
	if errors.Is(err, staging.ErrNotFound) {
		return cp, nil
	}
	if errors.Is(err, staging.ErrCorrupt) {
		// A ledger torn by a crash is no reason to stop: without it the pass
		// reconciles every folder against the target, which never duplicates.
		a.logger().Warn("ledger unreadable; reconciling from scratch", "ledger", name, "error", err)
		return transfer.Checkpoint{}, nil
	}
	if err != nil {
		return cp, err
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Errorf("ledger %s: %w", name, err)
	}
	sort.Slice(cp.Folders, func(i, j int) bool { return cp.Folders[i].Source < cp.Folders[j].Source })
	return cp, nil
}

// readStaging reads a whole small object (a ledger, a seal). Its errors
// wrap staging.ErrNotFound and staging.ErrCorrupt, which callers decide
// on; others are the store's, as activity errors.
func (a *Activities) readStaging(ctx context.Context, name string) ([]byte, error) {
	rc, _, err := a.Staging.Get(ctx, name)
	if errors.Is(err, staging.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, temporalError("staging "+name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil && !errors.Is(err, staging.ErrCorrupt) {
		return nil, fmt.Errorf("staging %s: %w", name, err)
	}
	return b, err
}

func (a *Activities) saveJSON(ctx context.Context, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if _, err := a.putStaging(ctx, name, bytes.NewReader(b), map[string]string{"kind": "ledger"}); err != nil {
		return temporalError("staging "+name, err)
	}
	return nil
}

// putStaging writes an object to the staging store, counting the bytes
// written in the metrics.
func (a *Activities) putStaging(ctx context.Context, name string, r io.Reader, meta map[string]string) (staging.Object, error) {
	cr := &countingReader{r: r}
	obj, err := a.Staging.Put(ctx, name, cr, meta)
	if err == nil {
		a.Metrics.StagingWritten(cr.n)
	}
	return obj, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// recordFailure saves why a pass over a mailbox failed, next to its pass
// reports (report.FailurePass), so a report read from the store alone
// shows the mailbox Failed with this error instead of the state of its
// last finished pass. Every failed attempt overwrites it; a pass that
// finishes later supersedes it. A failure to save it is logged only: the
// pass's own error is what the workflow must see.
func (a *Activities) recordFailure(ctx context.Context, m MailboxRef, pass string, err error) {
	if a.Staging == nil || err == nil {
		return
	}
	f := report.Failure{Pass: pass, Error: rootMessage(err), At: time.Now().UTC()}
	name := staging.ReportName(m.Org, m.Address, report.FailurePass)
	if serr := a.saveJSON(context.WithoutCancel(ctx), name, f); serr != nil {
		a.logger().Warn("could not record a failed pass", "org", m.Org, "mailbox", m.Address, "pass", pass, "error", serr)
	}
}

// rootMessage is an error's message without the wrapping of an
// application error's type: what an operator reads in the report.
func rootMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if app.Type() != "" {
			return app.Type() + ": " + app.Message()
		}
		return app.Message()
	}
	return err.Error()
}

// digestName names the segment of d: its folder (hashed: a folder name is
// no one's business in an object name), its numbering on both sides and
// its first and last source UID, so an attempt run again overwrites its
// own segment.
func digestName(org, mailbox string, d transfer.FolderDigests) string {
	sum := sha256.Sum256([]byte(d.Source))
	first, last := d.Digests[0].UID, d.Digests[len(d.Digests)-1].UID
	return staging.DigestPrefix(org, mailbox) + fmt.Sprintf("%s-%d-%d-%010d-%010d.json", hex.EncodeToString(sum[:8]), d.UIDValidity, d.TargetUIDValidity, first, last)
}

// saveDigests keeps a folder pass's digests.
func (a *Activities) saveDigests(ctx context.Context, org, mailbox string, d transfer.FolderDigests) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	name := digestName(org, mailbox, d)
	if _, err := a.putStaging(ctx, name, bytes.NewReader(b), map[string]string{"kind": "digests"}); err != nil {
		return temporalError("staging "+name, err)
	}
	return nil
}

// loadDigests reads every digest segment of a mailbox. A segment that
// cannot be read is left out with a note: its messages are then checked
// by metadata alone.
func (a *Activities) loadDigests(ctx context.Context, org, mailbox string) ([]transfer.FolderDigests, []string, error) {
	out, notes, err := report.Digests(ctx, a.Staging, org, mailbox)
	if err != nil {
		return nil, nil, temporalError("digests", err)
	}
	return out, notes, nil
}
