package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// ValidateMailbox compares source and target by content hash, flags and dates.
func (a *Activities) ValidateMailbox(ctx context.Context, in ValidateInput) (ValidateResult, error) {
	res, err := whileThrottled(ctx, func() (ValidateResult, error) { return a.validateMailbox(ctx, in) })
	// A local attempt that fails is followed by a regular one, which
	// records the failure if it fails too.
	local := activity.IsActivity(ctx) && activity.GetInfo(ctx).IsLocalActivity
	if err != nil && ctx.Err() == nil && !local {
		a.recordFailure(ctx, in.Mailbox, report.ValidationPass, err)
	}
	return res, err
}

func (a *Activities) validateMailbox(ctx context.Context, in ValidateInput) (ValidateResult, error) {
	var res ValidateResult
	opts := a.policy(in.Mailbox, in.Policy)
	cp, err := a.loadLedger(ctx, staging.LedgerName(in.Mailbox.Org, in.Mailbox.Address))
	if err != nil {
		return res, err
	}
	vo, err := a.validation(in.Policy)
	vo.Target = opts.Target
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox %s: %v", in.Mailbox.Address, err), ErrTypeConfig, nil)
	}
	var notes []string
	if vo.Level == transfer.LevelSample {
		segs, n, err := a.loadDigests(ctx, in.Mailbox.Org, in.Mailbox.Address)
		if err != nil {
			return res, err
		}
		vo.Digests, notes = transfer.IndexDigests(segs), n
	}
	src, tgt, release, err := a.connect(ctx, in.Mailbox)
	if err != nil {
		return res, err
	}
	defer release()
	stop := keepAlive(ctx)
	// Both sides as they are before the check: what a seal vouches for.
	source, target := sealMarks(src, tgt)
	v, err := transfer.ValidateWith(ctx, src, tgt, cp, opts.Rules, vo)
	stop()
	if err != nil {
		return res, temporalError("mailbox "+in.Mailbox.Address, err)
	}
	res.Folders, res.Messages, res.Bytes = len(v.Folders), v.Messages, v.Bytes
	res.Problems = append(v.Problems, notes...)
	res.Level, res.Rerendered = string(v.Level), v.Rerendered
	for _, f := range cp.Folders {
		res.KeywordsDropped += int(f.KeywordsDropped)
	}
	_, res.SkippedByReason, res.Staged = skippedSummary(cp.Skipped)
	t := v.Totals()
	res.Skipped, res.Missing, res.Duplicates = t.Skipped, t.Missing, t.Duplicates
	res.FlagMismatch, res.DateMismatch, res.Extra = t.FlagMismatch, t.DateMismatch, t.Extra
	res.Altered, res.Sampled = t.Altered, t.Sampled
	for _, f := range v.Folders {
		if !f.OK() {
			res.Problems = append(res.Problems, fmt.Sprintf("folder %q -> %q: %d missing, %d duplicates, %d altered, %d flag and %d date mismatches",
				f.Source, f.Target, f.Missing, f.Duplicates, f.Altered, f.FlagMismatch, f.DateMismatch))
		}
	}
	if len(res.Problems) > MaxReportedItems {
		res.Problems = res.Problems[:MaxReportedItems]
	}
	res.OK = v.OK()
	res.Report = staging.ReportName(in.Mailbox.Org, in.Mailbox.Address, report.ValidationPass)
	if err := a.saveJSON(ctx, res.Report, v); err != nil {
		return res, err
	}
	if err := a.seal(ctx, in.Mailbox, in.Policy, vo, source, target, res); err != nil {
		return res, err
	}
	return res, nil
}
