package activities

import (
	"context"
	"io"

	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// ImportStagedItems appends staged items that fit under the policy's
// maximum message size to the target, verified against their recorded hash
// first, and records them as imported in the mailbox ledger.
func (a *Activities) ImportStagedItems(ctx context.Context, in ImportInput) (ImportResult, error) {
	var res ImportResult
	opts := a.policy(in.Mailbox, in.Policy)
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
	st, err := transfer.ImportStaged(ctx, tgt, &cp, opts.MaxMessageSize, opts.Target, open)
	if serr := a.saveJSON(context.WithoutCancel(ctx), ledger, cp); serr != nil && err == nil {
		err = serr
	}
	res = ImportResult{Imported: st.Imported, Bytes: st.Bytes, Present: st.Present, Remaining: st.Remaining}
	if err != nil {
		return res, temporalError("mailbox "+in.Mailbox.Address, err)
	}
	return res, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
