package activities

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

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
	case ProblemLogin, ProblemFolders, ProblemLargeItems, ProblemQuota:
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
