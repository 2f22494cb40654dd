package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
)

// OrganizationState is an organization's progress carried from one run to
// the next by continue-as-new. Operators never set it.
//
// It is a wire format: a run started by the previous release continues
// into this one through these bytes, so field names, order and encoding
// are pinned by TestCarriedStateIsByteCompatible. In memory each part
// belongs to the type that uses it (load and carried): the mailbox table,
// the pass window, the step runner and the organization's own records.
type OrganizationState struct {
	P      Progress `json:"progress"`
	Status []byte   `json:"status"`
	// Small has a bit per mailbox that readiness found small enough for
	// local passes (see LocalPassMaxBytes): 6 KB for 50,000 mailboxes.
	Small []byte `json:"small,omitempty"`
	// Direct has a bit per mailbox moved in the post-switch pass alone
	// (see DirectMaxBytes).
	Direct []byte `json:"direct,omitempty"`
	// Copied has a bit per mailbox counted in Progress.MailboxesCopied
	// (versionLiveProgress), so a failure or skip takes it out once.
	Copied []byte `json:"copied,omitempty"`
	// Unchanged has a bit per mailbox whose seal held at readiness and
	// that takes no copy pass while it still holds (versionSealed).
	Unchanged []byte `json:"unchanged,omitempty"`
	// The current pass: its sequence number (outcomes of older passes are
	// ignored), the next mailbox index to start, mailboxes to start again
	// first (paused, retried), and those started and not yet reported.
	PassSeq  int      `json:"pass_seq"`
	PassOpen bool     `json:"pass_open"`
	Next     int      `json:"next"`
	Requeue  []int    `json:"requeue,omitempty"`
	InFlight []flight `json:"in_flight,omitempty"`
	// Step is the position inside a multi-step phase; Cursor a mailbox
	// index inside a step that walks the inventory (routing).
	Step   string `json:"step,omitempty"`
	Cursor int    `json:"cursor,omitempty"`
	// SkipCounts packs each mailbox's latest skipped-item counts (see
	// skipSlots): a fixed 12 bytes a mailbox, allocated at the first skip,
	// so 50,000 mailboxes that all skipped something still fit a
	// continue-as-new input (a map would not).
	SkipCounts  []byte    `json:"skip_counts,omitempty"`
	LastDeltaAt time.Time `json:"last_delta_at,omitzero"`
	Switched    bool      `json:"switched,omitempty"`
	Runs        int       `json:"runs"`
	// Added are the mailboxes add-mailboxes put after the input's, in
	// order (versionTruth): table indexes from the input's count on.
	Added []addedBatch `json:"added,omitempty"`
}

// addedBatch is one add-mailboxes: inline, or a staged inventory.
type addedBatch struct {
	Mailboxes []MailboxSpec            `json:"m,omitempty"`
	Inventory *activities.InventoryRef `json:"i,omitempty"`
}

func (b addedBatch) count() int {
	if b.Inventory != nil {
		return b.Inventory.Count
	}
	return len(b.Mailboxes)
}

// flight is a Mailbox workflow started and not yet reported.
type flight struct {
	Index   int    `json:"i"`
	Address string `json:"a"`
	Seq     int    `json:"s"`
	// ID is the child's workflow id; empty in state carried from runs
	// before versionOpaqueIDs, whose children have the legacy id.
	ID string `json:"w,omitempty"`
	// RunID is the child's run once the server confirmed its start; a
	// cancel by workflow id alone could reach the mailbox's previous run.
	RunID     string `json:"r,omitempty"`
	Canceling bool   `json:"c,omitempty"`
}

// load takes over the state an earlier run carried, or starts afresh.
func (o *organization) load(ctx workflow.Context, st *OrganizationState) {
	if st == nil {
		now := workflow.Now(ctx)
		o.p = Progress{
			Organization: o.in.Code, Name: o.in.Name, Wave: o.in.Wave,
			Concurrency: o.in.Concurrency, MailboxesTotal: o.in.MailboxCount(),
			StartedAt: now, PhaseStartedAt: now,
		}
		o.table = newMailboxTable(o.in, nil)
		o.window = newPassWindow(o.in.Code, nil)
		return
	}
	o.p = st.P
	o.table = newMailboxTable(o.in, st)
	o.window = newPassWindow(o.in.Code, st)
	o.steps = steps{at: step(st.Step), cursor: st.Cursor}
	o.lastDeltaAt, o.switched, o.runs = st.LastDeltaAt, st.Switched, st.Runs
	o.paused = st.P.Paused
}

// carried is the state this run hands to the next.
func (o *organization) carried() OrganizationState {
	st := OrganizationState{
		P: o.p, Step: string(o.steps.at), Cursor: o.steps.cursor,
		LastDeltaAt: o.lastDeltaAt, Switched: o.switched, Runs: o.runs,
	}
	o.table.save(&st)
	o.window.save(&st)
	return st
}

// AddedBatches are the mailboxes add-mailboxes appended, for the starter
// to compare a running organization with an inventory.
func (st *OrganizationState) AddedBatches() []AddedMailboxes {
	out := make([]AddedMailboxes, len(st.Added))
	for i, b := range st.Added {
		out[i] = AddedMailboxes{Mailboxes: b.Mailboxes, Inventory: b.Inventory}
	}
	return out
}

// AddedMailboxes is one add-mailboxes batch: inline, or staged.
type AddedMailboxes struct {
	Mailboxes []MailboxSpec            `json:"mailboxes,omitempty"`
	Inventory *activities.InventoryRef `json:"inventory,omitempty"`
}
