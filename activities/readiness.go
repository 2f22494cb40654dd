package activities

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"go.temporal.io/sdk/activity"

	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/transfer"
)

// Target folder rules checked by readiness. The defaults are Exchange
// Online's mailbox limits; a Policy can set others.
const (
	DefaultTargetMaxFolders    = 10000
	DefaultTargetMaxDepth      = 300
	DefaultTargetMaxNameLength = 255
)

// Readiness problem kinds, the prefix of each problem text, so an
// organization can count its mailboxes by kind.
const (
	ProblemLogin      = "login"
	ProblemFolders    = "folders"
	ProblemLargeItems = "large-items"
	ProblemQuota      = "quota"
)

// ProblemKind returns the kind a readiness problem text starts with.
func ProblemKind(problem string) string {
	kind, _, _ := strings.Cut(problem, ":")
	switch kind {
	case ProblemLogin, ProblemFolders, ProblemLargeItems, ProblemQuota, ProblemClaimed:
		return kind
	}
	return "other"
}

// targetFolderProblems checks the folders the plan would create on the
// target against the target's rules.
func targetFolderProblems(plans []transfer.FolderPlan, delim rune, p Policy) []string {
	maxFolders, maxDepth, maxName := p.TargetMaxFolders, p.TargetMaxDepth, p.TargetMaxNameLength
	if maxFolders <= 0 {
		maxFolders = DefaultTargetMaxFolders
	}
	if maxDepth <= 0 {
		maxDepth = DefaultTargetMaxDepth
	}
	if maxName <= 0 {
		maxName = DefaultTargetMaxNameLength
	}
	var out []string
	if len(plans) > maxFolders {
		out = append(out, fmt.Sprintf("%s: %d folders, the target allows %d", ProblemFolders, len(plans), maxFolders))
	}
	deep, long := 0, 0
	var deepest, longest string
	for _, f := range plans {
		parts := []string{f.Target}
		if delim != 0 {
			parts = strings.Split(f.Target, string(delim))
		}
		if len(parts) > maxDepth {
			deep++
			deepest = f.Target
		}
		for _, s := range parts {
			if utf8.RuneCountInString(s) > maxName {
				long++
				longest = f.Target
				break
			}
		}
	}
	if deep > 0 {
		out = append(out, fmt.Sprintf("%s: %d folders nested deeper than %d levels (e.g. %q)", ProblemFolders, deep, maxDepth, deepest))
	}
	if long > 0 {
		out = append(out, fmt.Sprintf("%s: %d folder names longer than %d characters (e.g. %q)", ProblemFolders, long, maxName, longest))
	}
	return out
}

// wellKnownMissing reports source folders planned into a well-known
// folder the target does not have: Exchange Online creates its own in the
// mailbox's language, so a missing one means the organization's
// target_language (or target_folders) is not the mailbox's, and the copy
// would create a second, unlocalised folder beside the real one.
func wellKnownMissing(plans []transfer.FolderPlan, tgt []imapconn.Folder, rules transfer.FolderRules) []string {
	if len(rules.WellKnown) == 0 {
		return nil
	}
	have := map[string]bool{}
	for _, f := range tgt {
		have[strings.ToLower(f.Name)] = true
	}
	named := map[string]bool{}
	for _, name := range rules.WellKnown {
		named[strings.ToLower(name)] = true
	}
	var out []string
	for _, p := range plans {
		t := strings.ToLower(p.Target)
		if named[t] && !have[t] {
			out = append(out, fmt.Sprintf("%s: %q would go to %q, which the target does not have: its well-known folders have other names (set the organization's target_language or target_folders to the mailbox's)", ProblemFolders, p.Source, p.Target))
		}
	}
	return out
}

// targetUsage is what the target's folders hold, by RFC822.SIZE.
func targetUsage(c *imapconn.Conn, folders []imapconn.Folder) (int64, error) {
	var used int64
	for _, f := range folders {
		if f.NoSelect {
			continue
		}
		_, bytes, _, err := transfer.Measure(c, f.Name, 0)
		if err != nil {
			return 0, err
		}
		used += bytes
	}
	return used, nil
}

// quotaHeadroom asks the target for the INBOX quota root's storage (RFC
// 9208). ok is false when the target does not offer QUOTA or sets no
// storage limit; then the headroom is unknown, which is not a problem.
func quotaHeadroom(c *imapconn.Conn) (usedBytes, limitBytes int64, ok bool, err error) {
	if !c.Has(imap.CapQuota) {
		return 0, 0, false, nil
	}
	roots, err := c.C.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		return 0, 0, false, imapconn.Classify("getquotaroot INBOX", err)
	}
	for _, r := range roots {
		if res, found := r.Resources[imap.QuotaResourceStorage]; found {
			// STORAGE is counted in units of 1024 octets.
			return res.Usage * 1024, res.Limit * 1024, true, nil
		}
	}
	return 0, 0, false, nil
}

// quotaProblem says whether a mailbox of need bytes fits the headroom,
// keeping a margin for the mail that still arrives before cutover.
func quotaProblem(need, used, limit int64) string {
	const margin = 1.1
	if limit <= 0 {
		return ""
	}
	free := limit - used
	if float64(need)*margin > float64(free) {
		return fmt.Sprintf("%s: the mailbox holds %d bytes; the target has %d of %d bytes free (%.0f%% margin needed)", ProblemQuota, need, max(free, 0), limit, (margin-1)*100)
	}
	return ""
}

// CheckReadiness logs in to both sides and measures the source without
// changing anything (EXAMINE and FETCH RFC822.SIZE only).
func (a *Activities) CheckReadiness(ctx context.Context, m MailboxRef, p Policy) (ReadinessResult, error) {
	return whileThrottled(ctx, func() (ReadinessResult, error) { return a.checkReadiness(ctx, m, p, false) })
}

// checkReadiness is CheckReadiness; with sealed, a mailbox whose seal
// still holds is ready and unchanged, without being measured again.
func (a *Activities) checkReadiness(ctx context.Context, m MailboxRef, p Policy, sealed bool) (ReadinessResult, error) {
	var res ReadinessResult
	opts := a.policy(m, p)
	src, tgt, release, err := a.connect(ctx, m)
	if err != nil {
		if ae := nonRetryable(err); ae != nil {
			// A mailbox that cannot log in is not ready; that is an answer, not a fault.
			res.Problems = append(res.Problems, ProblemLogin+": "+ae.Error())
			return res, nil
		}
		return res, err
	}
	defer release()
	// Measuring a folder of a million messages can outlast the heartbeat
	// timeout; the pulse keeps a live check from looking dead.
	defer keepAlive(ctx)()
	if sealed {
		s, err := a.unchanged(ctx, m, p, src, tgt)
		if err != nil {
			// The shortcut failed, not the mailbox: measure it in full.
			a.logger().Warn("seal not checked; measuring the mailbox in full", "org", m.Org, "mailbox", m.Address, "error", err)
		}
		if s != nil {
			res.Unchanged = true
			res.Folders, res.Messages, res.Bytes = s.Result.Folders, int64(s.Result.Messages), s.Result.Bytes
			res.LargeItems = s.Result.SkippedByReason[transfer.ReasonTooLarge]
			return a.claimReady(ctx, m, res)
		}
	}
	folders, err := src.Folders()
	if err != nil {
		return res, temporalError("mailbox "+m.Address, err)
	}
	for _, f := range folders {
		if f.NoSelect {
			continue
		}
		res.Folders++
		n, bytes, large, err := transfer.Measure(src, f.Name, opts.MaxMessageSize)
		if err != nil {
			return res, temporalError("mailbox "+m.Address, err)
		}
		res.Messages += n
		res.Bytes += bytes
		res.LargeItems += large
		activity.RecordHeartbeat(ctx, res.Folders)
	}
	tf, err := tgt.Folders()
	if err != nil {
		return res, temporalError("mailbox "+m.Address, err)
	}
	if problem := a.wellKnownProblem(m, p); problem != "" {
		res.Problems = append(res.Problems, ProblemFolders+": "+problem)
	}
	plans, err := transfer.Plan(folders, tf, src.Delim, tgt.Delim, opts.Rules)
	if err != nil {
		res.Problems = append(res.Problems, ProblemFolders+": "+err.Error())
	}
	res.Problems = append(res.Problems, targetFolderProblems(plans, tgt.Delim, p)...)
	res.Problems = append(res.Problems, wellKnownMissing(plans, tf, opts.Rules)...)
	if opts.MaxLargeItems >= 0 && res.LargeItems > opts.MaxLargeItems {
		res.Problems = append(res.Problems, fmt.Sprintf("%s: %d items over %d bytes exceed the large-item limit %d", ProblemLargeItems, res.LargeItems, opts.MaxMessageSize, opts.MaxLargeItems))
	}
	used, limit, known, err := quotaHeadroom(tgt)
	if err != nil {
		return res, temporalError("mailbox "+m.Address, err)
	}
	if !known && p.TargetQuotaBytes > 0 {
		// The target does not say; what it holds is measured instead.
		if used, err = targetUsage(tgt, tf); err != nil {
			return res, temporalError("mailbox "+m.Address, err)
		}
		limit, known = p.TargetQuotaBytes, true
	}
	if known {
		res.QuotaUsed, res.QuotaLimit = used, limit
		if q := quotaProblem(res.Bytes, used, limit); q != "" {
			res.Problems = append(res.Problems, q)
		}
	}
	res.Ready = len(res.Problems) == 0
	if !res.Ready {
		return res, nil
	}
	return a.claimReady(ctx, m, res)
}

// claimReady claims a ready mailbox for its organization; claimed by
// another, it is not ready.
func (a *Activities) claimReady(ctx context.Context, m MailboxRef, res ReadinessResult) (ReadinessResult, error) {
	res.Ready = true
	if a.Staging == nil {
		return res, nil
	}
	holder, err := a.claim(ctx, m)
	if err != nil {
		return res, err
	}
	if holder != nil {
		res.Problems = append(res.Problems, claimProblem(m, holder))
		res.Ready = false
	}
	return res, nil
}
