package activities

import (
	"context"
	"fmt"
	"time"
)

// ReadinessBatchInput asks for the readiness of one page of an
// organization's mailboxes: from its staged inventory (Inventory, Offset,
// Limit) or listed inline (Mailboxes, for small organizations).
type ReadinessBatchInput struct {
	Org            string        `json:"org"`
	SourceEndpoint string        `json:"source_endpoint"`
	TargetEndpoint string        `json:"target_endpoint"`
	Inventory      *InventoryRef `json:"inventory,omitempty"`
	Offset         int           `json:"offset"`
	Limit          int           `json:"limit"`
	Mailboxes      []MailboxSpec `json:"mailboxes,omitempty"`
	Policy         Policy        `json:"policy"`
	// Parallel is how many mailboxes are checked at once; the endpoints'
	// connection limits apply on top.
	Parallel int `json:"parallel"`
	// Sealed asks whether each mailbox's seal still holds (see Seal).
	Sealed bool `json:"sealed,omitempty"`
}

// ReadinessBrief is one mailbox's readiness in a batch, kept short: a page
// of 500 of them lands in the organization's history.
type ReadinessBrief struct {
	// Address is set for a mailbox that is not ready, for its failure.
	Address    string   `json:"a,omitempty"`
	Ready      bool     `json:"r,omitempty"`
	Messages   int64    `json:"m,omitempty"`
	Bytes      int64    `json:"b,omitempty"`
	LargeItems int      `json:"l,omitempty"`
	Problems   []string `json:"p,omitempty"`
	// Unchanged: the mailbox's seal holds; it has nothing to copy.
	Unchanged bool `json:"u,omitempty"`
	// Error is why the check itself failed after its retries (the mailbox
	// is then not ready; the others of the page are not affected).
	Error string `json:"e,omitempty"`
}

// maxBriefProblems bounds the problems a brief or a mailbox's outcome
// carries; the first ones name the kind of each that matters.
const maxBriefProblems = 5

// BriefProblems keeps the first problems and says how many more there are.
func BriefProblems(problems []string) []string {
	if len(problems) <= maxBriefProblems {
		return problems
	}
	return append(problems[:maxBriefProblems:maxBriefProblems], fmt.Sprintf("and %d more", len(problems)-maxBriefProblems))
}

// readinessAttempts is how often a mailbox's check is tried within a batch
// (after 1, 2, 4 and 8 s) before its error is reported for that mailbox
// alone; readinessTimeout bounds one check, so a hung connection cannot
// hold up its page.
const (
	readinessAttempts = 5
	readinessTimeout  = 30 * time.Minute
)

// CheckReadinessBatch checks a page of mailboxes, the same checks as
// CheckReadiness, in one activity: for an organization of thousands of
// small mailboxes a workflow per check would cost the server far more than
// the check. Results are in page order. It reads only, so a retried batch
// simply checks again.
func (a *Activities) CheckReadinessBatch(ctx context.Context, in ReadinessBatchInput) ([]ReadinessBrief, error) {
	specs := in.Mailboxes
	if in.Inventory != nil {
		var err error
		if specs, err = a.ListMailboxes(ctx, ListMailboxesInput{Ref: *in.Inventory, Offset: in.Offset, Limit: in.Limit}); err != nil {
			return nil, err
		}
	}
	out := make([]ReadinessBrief, len(specs))
	eachInParallel(ctx, len(specs), in.Parallel, func(i int) {
		out[i] = a.briefReadiness(ctx, in, specs[i])
	})
	if err := ctx.Err(); err != nil {
		return nil, err // canceled (pause, rollback) or timed out: the page is checked again
	}
	return out, nil
}

func (a *Activities) briefReadiness(ctx context.Context, in ReadinessBatchInput, s MailboxSpec) ReadinessBrief {
	m := MailboxRef{
		Org: in.Org, Address: s.Address,
		SourceEndpoint: in.SourceEndpoint, SourceUser: s.SourceUser,
		TargetEndpoint: in.TargetEndpoint, TargetUser: s.TargetUser,
	}
	var err error
	for attempt := 1; attempt <= readinessAttempts; attempt++ {
		var r ReadinessResult
		cctx, cancel := context.WithTimeout(ctx, readinessTimeout)
		r, err = whileThrottled(cctx, func() (ReadinessResult, error) { return a.checkReadiness(cctx, m, in.Policy, in.Sealed) })
		cancel()
		if err == nil {
			b := ReadinessBrief{Ready: r.Ready, Messages: r.Messages, Bytes: r.Bytes, LargeItems: r.LargeItems, Problems: BriefProblems(r.Problems), Unchanged: r.Unchanged && r.Ready}
			if !b.Ready {
				b.Address = s.Address
			}
			return b
		}
		if nonRetryable(err) != nil || ctx.Err() != nil {
			break
		}
		if attempt == readinessAttempts {
			break
		}
		select {
		case <-time.After(time.Duration(1<<(attempt-1)) * time.Second):
		case <-ctx.Done():
			attempt = readinessAttempts // no further try: the batch is over
		}
	}
	return ReadinessBrief{Address: s.Address, Error: fmt.Sprintf("mailbox %s: readiness check: %v", s.Address, err)}
}
