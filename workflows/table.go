package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/transfer"
)

// Mailbox states, one byte per mailbox so that 50,000 mailboxes cost 50 KB
// of continue-as-new input.
const (
	mbActive    byte = 'a'
	mbFailed    byte = 'f'
	mbSkipped   byte = 's' // taken out by an operator
	mbValidated byte = 'v'
)

var statusNames = map[byte]string{mbActive: "active", mbFailed: "failed", mbSkipped: "skipped", mbValidated: "validated"}

// mailboxTable is what an organization knows of each of its mailboxes, by
// inventory index: its state, whether readiness found it small (local
// passes) or moved it direct (post-switch pass alone), its latest
// skipped-item counts, and its inventory row (inline, or a staged
// inventory read a page at a time). Everything is packed so that 50,000
// mailboxes fit a continue-as-new input.
type mailboxTable struct {
	status     []byte
	small      []byte
	direct     []byte
	copied     []byte
	unchanged  []byte
	skipCounts []byte

	inline    []MailboxSpec
	inventory *activities.InventoryRef
	// The staged inventory page read last.
	page       []MailboxSpec
	pageOffset int

	// base is the input's mailbox count; added are the batches that
	// add-mailboxes appended after it (versionTruth), and addedPage the
	// page of a staged batch read last (batch index, offset in it).
	base                   int
	added                  []addedBatch
	addedPage              []MailboxSpec
	addedBatch, addedStart int
}

func newMailboxTable(in OrganizationInput, st *OrganizationState) *mailboxTable {
	t := &mailboxTable{inline: in.Mailboxes, inventory: in.Inventory, base: in.MailboxCount(), addedBatch: -1}
	if st != nil {
		t.status, t.small, t.direct, t.copied, t.skipCounts = st.Status, st.Small, st.Direct, st.Copied, st.SkipCounts
		t.unchanged = st.Unchanged
		t.added = st.Added
		return t
	}
	t.status = make([]byte, in.MailboxCount())
	for i := range t.status {
		t.status[i] = mbActive
	}
	return t
}

func (t *mailboxTable) save(st *OrganizationState) {
	st.Status, st.Small, st.Direct, st.Copied, st.SkipCounts = t.status, t.small, t.direct, t.copied, t.skipCounts
	st.Unchanged = t.unchanged
	st.Added = t.added
}

// addedCount is how many mailboxes add-mailboxes appended.
func (t *mailboxTable) addedCount() int {
	n := 0
	for _, b := range t.added {
		n += b.count()
	}
	return n
}

// add appends a batch of mailboxes, active, and grows every per-mailbox
// structure with them; it returns the first new index.
func (t *mailboxTable) add(b addedBatch) int {
	first := t.len()
	n := b.count()
	t.added = append(t.added, b)
	for range n {
		t.status = append(t.status, mbActive)
	}
	grow := func(bits []byte) []byte {
		if len(bits) == 0 {
			return bits // allocated at its first bit, for the new length
		}
		for len(bits) < (t.len()+7)/8 {
			bits = append(bits, 0)
		}
		return bits
	}
	t.small, t.direct, t.copied, t.unchanged = grow(t.small), grow(t.direct), grow(t.copied), grow(t.unchanged)
	if len(t.skipCounts) > 0 {
		t.skipCounts = append(t.skipCounts, make([]byte, n*slotBytes)...)
	}
	return first
}

// addedSpec returns mailbox i (i >= base) from the added batches.
func (t *mailboxTable) addedSpec(ctx workflow.Context, i int) (MailboxSpec, error) {
	k := i - t.base
	for bi, b := range t.added {
		if k >= b.count() {
			k -= b.count()
			continue
		}
		if b.Inventory == nil {
			return b.Mailboxes[k], nil
		}
		if bi == t.addedBatch && k >= t.addedStart && k < t.addedStart+len(t.addedPage) {
			return t.addedPage[k-t.addedStart], nil
		}
		off := k / inventoryPage * inventoryPage
		page, err := listPage(ctx, *b.Inventory, off)
		if err != nil {
			return MailboxSpec{}, err
		}
		if k-off >= len(page) {
			return MailboxSpec{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("added inventory %s has %d mailboxes, not %d", b.Inventory.Object, off+len(page), b.count()), activities.ErrTypeConfig, nil)
		}
		t.addedPage, t.addedBatch, t.addedStart = page, bi, off
		return page[k-off], nil
	}
	return MailboxSpec{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox index %d is outside the organization's %d mailboxes", i, t.len()), activities.ErrTypeConfig, nil)
}

func listPage(ctx workflow.Context, ref activities.InventoryRef, off int) ([]MailboxSpec, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 20, NonRetryableErrorTypes: activities.NonRetryable},
	})
	var a *activities.Activities
	var page []MailboxSpec
	err := workflow.ExecuteActivity(actx, a.ListMailboxes, activities.ListMailboxesInput{Ref: ref, Offset: off, Limit: inventoryPage}).Get(ctx, &page)
	return page, err
}

// findAdded looks for address among the added mailboxes: -1 if absent.
func (t *mailboxTable) findAdded(ctx workflow.Context, address string) (int, error) {
	at := t.base
	for _, b := range t.added {
		if b.Inventory == nil {
			for k, m := range b.Mailboxes {
				if strings.EqualFold(m.Address, address) {
					return at + k, nil
				}
			}
		} else {
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: 2 * time.Minute,
				RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: activities.NonRetryable},
			})
			var a *activities.Activities
			var k int
			err := workflow.ExecuteActivity(actx, a.FindMailbox, activities.FindMailboxInput{Ref: *b.Inventory, Address: address}).Get(ctx, &k)
			if err == nil {
				return at + k, nil
			}
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != activities.ErrTypeNotFound {
				return 0, err
			}
		}
		at += b.count()
	}
	return -1, nil
}

func (t *mailboxTable) len() int { return len(t.status) }

func (t *mailboxTable) state(i int) byte { return t.status[i] }

func (t *mailboxTable) set(i int, st byte) { t.status[i] = st }

// count is how many mailboxes are in state st.
func (t *mailboxTable) count(st byte) int {
	n := 0
	for _, s := range t.status {
		if s == st {
			n++
		}
	}
	return n
}

func (t *mailboxTable) any(st byte) bool { return slices.Contains(t.status, st) }

func (t *mailboxTable) isSmall(i int) bool  { return hasBit(t.small, i) }
func (t *mailboxTable) markSmall(i int)     { setBit(&t.small, t.len(), i) }
func (t *mailboxTable) isDirect(i int) bool { return hasBit(t.direct, i) }
func (t *mailboxTable) markDirect(i int)    { setBit(&t.direct, t.len(), i) }

func (t *mailboxTable) isCopied(i int) bool { return hasBit(t.copied, i) }
func (t *mailboxTable) markCopied(i int)    { setBit(&t.copied, t.len(), i) }
func (t *mailboxTable) unmarkCopied(i int) {
	if hasBit(t.copied, i) {
		t.copied[i/8] &^= 1 << (i % 8)
	}
}

// A mailbox is unchanged while its seal holds (versionSealed).
func (t *mailboxTable) isUnchanged(i int) bool { return hasBit(t.unchanged, i) }
func (t *mailboxTable) markUnchanged(i int)    { setBit(&t.unchanged, t.len(), i) }
func (t *mailboxTable) unmarkUnchanged(i int) {
	if hasBit(t.unchanged, i) {
		t.unchanged[i/8] &^= 1 << (i % 8)
	}
}

// anyDirect: some mailbox was ever marked direct.
func (t *mailboxTable) anyDirect() bool { return len(t.direct) > 0 }

func hasBit(bits []byte, i int) bool { return i/8 < len(bits) && bits[i/8]&(1<<(i%8)) != 0 }

// setBit sets bit i of a bitmap of n bits, allocating it at the first bit.
func setBit(bits *[]byte, n, i int) {
	if len(*bits) == 0 {
		*bits = make([]byte, (n+7)/8)
	}
	(*bits)[i/8] |= 1 << (i % 8)
}

// spec returns mailbox i, from the input or from a staged inventory page.
func (t *mailboxTable) spec(ctx workflow.Context, i int) (MailboxSpec, error) {
	if i >= t.base && len(t.added) > 0 {
		return t.addedSpec(ctx, i)
	}
	if t.inventory == nil {
		return t.inline[i], nil
	}
	if i >= t.pageOffset && i < t.pageOffset+len(t.page) {
		return t.page[i-t.pageOffset], nil
	}
	off := i / inventoryPage * inventoryPage
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 20, NonRetryableErrorTypes: activities.NonRetryable},
	})
	var a *activities.Activities
	var page []MailboxSpec
	if err := workflow.ExecuteActivity(actx, a.ListMailboxes, activities.ListMailboxesInput{Ref: *t.inventory, Offset: off, Limit: inventoryPage}).Get(ctx, &page); err != nil {
		return MailboxSpec{}, err
	}
	if i-off >= len(page) {
		return MailboxSpec{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("inventory %s has %d mailboxes, not %d", t.inventory.Object, off+len(page), t.len()), activities.ErrTypeConfig, nil)
	}
	t.page, t.pageOffset = page, off
	return page[i-off], nil
}

// find returns a mailbox's index: from the input, or by asking an activity
// to look through the staged inventory.
func (t *mailboxTable) find(ctx workflow.Context, org, address string) (int, error) {
	if len(t.added) > 0 {
		// Only runs that took add-mailboxes (versionTruth) get here.
		i, err := t.baseIndex(ctx, org, address)
		if err == nil || !isNotFound(err) {
			return i, err
		}
		if j, ferr := t.findAdded(ctx, address); ferr != nil || j >= 0 {
			return j, ferr
		}
		return i, err
	}
	return t.baseIndex(ctx, org, address)
}

func isNotFound(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == activities.ErrTypeNotFound
}

// baseIndex finds a mailbox among the input's.
func (t *mailboxTable) baseIndex(ctx workflow.Context, org, address string) (int, error) {
	if t.inventory == nil {
		for i, m := range t.inline {
			if strings.EqualFold(m.Address, address) {
				return i, nil
			}
		}
		return 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox %s is not in organization %s", address, org), activities.ErrTypeNotFound, nil)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: activities.NonRetryable},
	})
	var a *activities.Activities
	var i int
	err := workflow.ExecuteActivity(actx, a.FindMailbox, activities.FindMailboxInput{Ref: *t.inventory, Address: address}).Get(ctx, &i)
	return i, err
}

type skipCount struct {
	Total    int            `json:"t"`
	ByReason map[string]int `json:"r,omitempty"`
	Staged   int            `json:"s,omitempty"`
}

// skipSlots are the counters packed per mailbox in skipCounts: one per
// skip reason mailshift records, one for any other reason, and the number
// of items kept in the staging store.
var skipSlots = []string{transfer.ReasonTooLarge, transfer.ReasonRejected, transfer.ReasonCorrupt, transfer.ReasonTooBig, reasonOther}

const (
	reasonOther = "other"
	slotStaged  = 5
	slotBytes   = 2 * (slotStaged + 1)
)

// skips is mailbox i's latest skipped-item counts, as stored.
func (t *mailboxTable) skips(i int) skipCount {
	var c skipCount
	if len(t.skipCounts) < (i+1)*slotBytes {
		return c
	}
	b := t.skipCounts[i*slotBytes:]
	get := func(k int) int { return int(b[2*k])<<8 | int(b[2*k+1]) }
	for k, r := range skipSlots {
		if n := get(k); n > 0 {
			if c.ByReason == nil {
				c.ByReason = map[string]int{}
			}
			c.ByReason[r] = n
			c.Total += n
		}
	}
	c.Staged = get(slotStaged)
	return c
}

// setSkips replaces mailbox i's counts and returns what was stored before
// and what is stored now, so the organization's totals can move by the
// difference.
func (t *mailboxTable) setSkips(i int, c skipCount) (was, now skipCount) {
	// Reasons outside skipSlots are counted as "other", and a total the
	// reasons do not explain too, so what is added here can be taken away
	// exactly when the mailbox reports again.
	norm := map[string]int{}
	sum := 0
	for r, n := range c.ByReason {
		if !slices.Contains(skipSlots, r) {
			r = reasonOther
		}
		norm[r] += n
		sum += n
	}
	if c.Total > sum {
		norm[reasonOther] += c.Total - sum
	}
	// What is stored saturates at 0xFFFF per counter (exact figures are in
	// the mailbox reports); the organization's totals add what is stored,
	// so the next report of this mailbox takes away exactly that.
	c.Total = 0
	for r, n := range norm {
		norm[r] = min(n, 0xFFFF)
		c.Total += norm[r]
	}
	c.ByReason = norm
	c.Staged = min(max(c.Staged, 0), 0xFFFF)
	was = t.skips(i)
	if c.Total == 0 && c.Staged == 0 && len(t.skipCounts) == 0 {
		return was, c
	}
	if len(t.skipCounts) == 0 {
		t.skipCounts = make([]byte, t.len()*slotBytes)
	}
	b := t.skipCounts[i*slotBytes : (i+1)*slotBytes]
	put := func(k, n int) {
		n = min(max(n, 0), 0xFFFF)
		b[2*k], b[2*k+1] = byte(n>>8), byte(n)
	}
	for k, r := range skipSlots {
		put(k, c.ByReason[r])
	}
	put(slotStaged, c.Staged)
	return was, c
}
