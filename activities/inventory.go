package activities

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/staging"
)

// MailboxSpec is one inventory row of an organization.
type MailboxSpec struct {
	Address    string `json:"address"`
	SourceUser string `json:"source_user"`
	TargetUser string `json:"target_user"`
}

// InventoryRef names an organization's mailbox list held in the staging
// store (one JSON MailboxSpec per line). Large organizations travel this way:
// 50,000 rows would not fit a workflow input, and the workflow only ever
// needs one page of them at a time.
type InventoryRef struct {
	Object string `json:"object"`
	Count  int    `json:"count"`
	SHA256 string `json:"sha256"`
}

// InventoryObjectName is where an organization's mailbox list is staged; the
// content hash in the name makes a changed list a new object, so a running
// workflow never sees its pages shift.
func InventoryObjectName(org, sha string) string {
	return staging.Name("inventories", org, sha+".jsonl")
}

// StageInventory writes an organization's mailboxes to the store and returns
// the reference an OrganizationInput carries instead of the list.
func StageInventory(ctx context.Context, store staging.Store, org string, specs []MailboxSpec) (InventoryRef, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, s := range specs {
		if err := enc.Encode(s); err != nil {
			return InventoryRef{}, err
		}
	}
	sum := sha256.Sum256(buf.Bytes())
	ref := InventoryRef{Count: len(specs), SHA256: hex.EncodeToString(sum[:])}
	ref.Object = InventoryObjectName(org, ref.SHA256)
	if _, err := store.Put(ctx, ref.Object, &buf, map[string]string{"kind": "inventory", "org": org}); err != nil {
		return InventoryRef{}, fmt.Errorf("organization %s: staging its inventory: %w", org, err)
	}
	return ref, nil
}

// ListMailboxesInput asks for one page of a staged inventory.
type ListMailboxesInput struct {
	Ref    InventoryRef `json:"ref"`
	Offset int          `json:"offset"`
	Limit  int          `json:"limit"`
}

// ListMailboxes returns mailboxes [Offset, Offset+Limit) of a staged
// inventory. Each page reads the object from its start; the store's hash
// check, which runs at the end of the object, covers only the last page.
func (a *Activities) ListMailboxes(ctx context.Context, in ListMailboxesInput) ([]MailboxSpec, error) {
	var out []MailboxSpec
	err := a.scanInventory(ctx, in.Ref, func(i int, line []byte) (bool, error) {
		if i < in.Offset {
			return true, nil
		}
		if len(out) >= in.Limit {
			return false, nil
		}
		var s MailboxSpec
		if err := json.Unmarshal(line, &s); err != nil {
			return false, temporal.NewNonRetryableApplicationError(fmt.Sprintf("inventory %s line %d: %v", in.Ref.Object, i+1, err), ErrTypeConfig, nil)
		}
		out = append(out, s)
		return true, nil
	})
	return out, err
}

// FindMailboxInput looks an address up in an organization's inventory.
type FindMailboxInput struct {
	Ref     InventoryRef `json:"ref"`
	Address string       `json:"address"`
}

// FindMailbox returns the index of an address in a staged inventory, or a
// non-retryable MailboxNotFound error.
func (a *Activities) FindMailbox(ctx context.Context, in FindMailboxInput) (int, error) {
	found := -1
	want := `"` + strings.ToLower(in.Address) + `"`
	err := a.scanInventory(ctx, in.Ref, func(i int, line []byte) (bool, error) {
		// Cheap filter first: only lines that mention the address are decoded.
		if !bytes.Contains(bytes.ToLower(line), []byte(want)) {
			return true, nil
		}
		var s MailboxSpec
		if json.Unmarshal(line, &s) == nil && strings.EqualFold(s.Address, in.Address) {
			found = i
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	if found < 0 {
		return 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("mailbox %s is not in this organization's inventory", in.Address), ErrTypeNotFound, nil)
	}
	return found, nil
}

func (a *Activities) scanInventory(ctx context.Context, ref InventoryRef, fn func(i int, line []byte) (bool, error)) error {
	if a.Staging == nil {
		return temporal.NewNonRetryableApplicationError("no staging store configured: a staged inventory cannot be read", ErrTypeConfig, nil)
	}
	rc, _, err := a.Staging.Get(ctx, ref.Object)
	if err != nil {
		return fmt.Errorf("inventory %s: %w", ref.Object, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	i := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		more, err := fn(i, sc.Bytes())
		if err != nil || !more {
			return err
		}
		i++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("inventory %s: %w", ref.Object, err)
	}
	return nil
}
