package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

func (a *Activities) loadLedger(ctx context.Context, name string) (transfer.Checkpoint, error) {
	var cp transfer.Checkpoint
	rc, _, err := a.Staging.Get(ctx, name)
	if errors.Is(err, staging.ErrNotFound) {
		return cp, nil
	}
	if err != nil {
		return cp, temporalError("ledger "+name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if errors.Is(err, staging.ErrCorrupt) {
		// A ledger torn by a crash is no reason to stop: without it the pass
		// reconciles every folder against the target, which never duplicates.
		a.logger().Warn("ledger unreadable; reconciling from scratch", "ledger", name, "error", err)
		return transfer.Checkpoint{}, nil
	}
	if err != nil {
		return cp, fmt.Errorf("ledger %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Errorf("ledger %s: %w", name, err)
	}
	sort.Slice(cp.Folders, func(i, j int) bool { return cp.Folders[i].Source < cp.Folders[j].Source })
	return cp, nil
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
