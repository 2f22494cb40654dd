package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/workflows"
)

// attachment is what migrate does with an organization that is running
// already: it never starts a second copy (the workflow id is the
// organization's) and never pretends it started one. It says what it
// attached to, applies what a running organization can take (a new
// concurrency through set-concurrency, new mailboxes through
// add-mailboxes) and refuses the rest with the reason and the control to
// use.
type attachment struct {
	c        client.Client
	store    staging.Store // nil: the added mailboxes travel inline
	operator string
	given    map[string]bool // flags set on the command line
	out      io.Writer
	refused  int
}

func (a *attachment) say(format string, args ...any) { fmt.Fprintf(a.out, format+"\n", args...) }

func (a *attachment) refuse(format string, args ...any) {
	a.refused++
	a.say("  refused: "+format, args...)
}

// attach handles one running organization; want is the input migrate
// would have started it with and specs its inventory's mailboxes.
func (a *attachment) attach(ctx context.Context, run *control.RunningOrganization, want workflows.OrganizationInput, specs []workflows.MailboxSpec) error {
	p := run.Progress
	a.say("attached to running organization %s (not started again): workflow %s run %s, this run started %s, phase %s, %d mailboxes",
		want.Code, run.WorkflowID, run.RunID, run.StartedAt.UTC().Format(time.RFC3339), p.Phase, p.MailboxesTotal)
	for _, s := range control.ChangedSettings(run, want, a.given) {
		if s.Name == "concurrency" {
			a.concurrency(ctx, want.Code, s)
			continue
		}
		how := "a running organization keeps the settings it started with"
		if s.Control != "" {
			how += "; use " + s.Control
		} else {
			how += "; it takes effect for an organization started after this one ends"
		}
		a.refuse("--%s %s: the running organization has %s: %s", s.Name, s.Wanted, s.Running, how)
	}
	have, err := runningMailboxes(ctx, a.store, run.Input, run.Added)
	if err != nil {
		a.refuse("mailboxes not compared: %v", err)
		return nil
	}
	added, removed := control.MailboxDiff(have, specs)
	if len(removed) > 0 {
		a.refuse("%d mailbox(es) are no longer in the inventory but stay in the running organization (it never drops a mailbox): %s; take one out with: starter skip-mailbox --operator NAME --reason WHY %s ADDRESS",
			len(removed), list(removed), want.Code)
	}
	if len(added) > 0 {
		a.add(ctx, want.Code, added)
	}
	return nil
}

func (a *attachment) concurrency(ctx context.Context, org string, s control.Setting) {
	if a.operator == "" {
		a.refuse("--concurrency %s: the running organization runs %s at once; set-concurrency records who changed it: give --operator (default $USER)", s.Wanted, s.Running)
		return
	}
	var n int
	fmt.Sscan(s.Wanted, &n)
	was, err := control.SetConcurrency(ctx, a.c, org, n, a.operator)
	if err != nil {
		a.refuse("--concurrency %s: set-concurrency: %v", s.Wanted, err)
		return
	}
	a.say("  applied: concurrency %d -> %d through %s, operator %s", was, n, workflows.UpdateSetConcurrency, a.operator)
}

func (a *attachment) add(ctx context.Context, org string, added []workflows.MailboxSpec) {
	addrs := make([]string, len(added))
	for i, m := range added {
		addrs[i] = m.Address
	}
	if a.operator == "" {
		a.refuse("%d new mailbox(es) not added: add-mailboxes records who added them: give --operator (default $USER): %s", len(added), list(addrs))
		return
	}
	req := workflows.AddMailboxesRequest{Operator: a.operator, Reason: "starter migrate: new in the inventory", Mailboxes: added}
	if a.store != nil {
		// Like the organization's own list: only a reference travels.
		ref, err := activities.StageInventory(ctx, a.store, org, added)
		if err != nil {
			a.refuse("%d new mailbox(es) not added: staging them: %v", len(added), err)
			return
		}
		req.Mailboxes, req.Inventory = nil, &ref
	}
	res, err := control.AddMailboxes(ctx, a.c, org, req)
	if err != nil {
		a.refuse("%d new mailbox(es) not added: %v: %s", len(added), err, list(addrs))
		return
	}
	a.say("  added: %d mailbox(es) through %s (now %d, phase %s), operator %s: %s", res.Added, workflows.UpdateAddMailboxes, res.Total, res.Phase, a.operator, list(addrs))
}

// runningMailboxes lists the running organization's mailboxes: its input's
// (inline or staged) and those earlier runs added.
func runningMailboxes(ctx context.Context, store staging.Store, in workflows.OrganizationInput, added []workflows.AddedMailboxes) ([]workflows.MailboxSpec, error) {
	out := append([]workflows.MailboxSpec(nil), in.Mailboxes...)
	refs := []*activities.InventoryRef{in.Inventory}
	for _, b := range added {
		out = append(out, b.Mailboxes...)
		refs = append(refs, b.Inventory)
	}
	for _, ref := range refs {
		if ref == nil {
			continue
		}
		if store == nil {
			return nil, fmt.Errorf("the running organization's list is staged (%s): give --config (the worker's configuration) to read it", ref.Object)
		}
		a := &activities.Activities{Staging: store}
		page, err := a.ListMailboxes(ctx, activities.ListMailboxesInput{Ref: *ref, Offset: 0, Limit: ref.Count})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
	}
	return out, nil
}

// list shows up to 10 addresses.
func list(addrs []string) string {
	if len(addrs) > 10 {
		return strings.Join(addrs[:10], ", ") + fmt.Sprintf(" and %d more", len(addrs)-10)
	}
	return strings.Join(addrs, ", ")
}
