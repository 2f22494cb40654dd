package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/mailshift/mailshift/internal/staging"
)

// One writer per target mailbox. Readiness claims each mailbox it finds
// ready for its organization, in the staging store that every worker of a
// programme shares: a claim is created only if none exists (staging.Creator,
// atomic across workers), so when two organizations (or two campaigns) list
// one target mailbox, the first to check it holds it and the other's
// readiness reports it not ready, naming the holder. The claim lasts until
// its organization's final report is written (completed, rolled back or
// failed); an organization run again finds its own claims and goes on.

// ProblemClaimed is the readiness problem of a mailbox another
// organization holds.
const ProblemClaimed = "claimed"

// MailboxKey is a target mailbox's stable opaque id: the same target
// endpoint and user (case-insensitive) give the same key in every
// organization, and the key does not show the address.
func MailboxKey(targetEndpoint, targetUser string) string {
	sum := sha256.Sum256([]byte("mailshift-mailbox\x00" + targetEndpoint + "\x00" + strings.ToLower(targetUser)))
	return hex.EncodeToString(sum[:16])
}

// ClaimName is where a target mailbox's claim is kept.
func ClaimName(key string) string { return staging.Name("claims", "mailboxes", key) }

// claimIndexName lists an organization's claims, so its final report can
// release them without knowing its target users.
func claimIndexName(org, key string) string { return staging.Name("claims", "organizations", org, key) }

// MailboxClaim is the content of a claim.
type MailboxClaim struct {
	Organization   string    `json:"organization"`
	TargetEndpoint string    `json:"target_endpoint"`
	ClaimedAt      time.Time `json:"claimed_at"`
}

// claimWait bounds how long a reader waits for a claim that another worker
// has just created but not yet described (see staging.Local.Create).
const claimWait = 3 * time.Second

// claim makes m's organization the one writer of m's target mailbox. It
// returns the claim of another organization that holds it (nil when m's
// organization does).
func (a *Activities) claim(ctx context.Context, m MailboxRef) (*MailboxClaim, error) {
	c, ok := a.Staging.(staging.Creator)
	if !ok {
		return nil, fmt.Errorf("staging store %s cannot hold mailbox claims", a.Staging.Describe())
	}
	key := MailboxKey(m.TargetEndpoint, m.TargetUser)
	// The index first: an index entry without its claim is harmless, a
	// claim without one would outlive its organization.
	if _, err := a.Staging.Put(ctx, claimIndexName(m.Org, key), bytes.NewReader(nil), map[string]string{"kind": "claim_index"}); err != nil {
		return nil, temporalError("claim index", err)
	}
	body, err := json.Marshal(MailboxClaim{Organization: m.Org, TargetEndpoint: m.TargetEndpoint, ClaimedAt: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	_, err = c.Create(ctx, ClaimName(key), body, map[string]string{"kind": "claim", "organization": m.Org})
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, staging.ErrExists) {
		return nil, temporalError("claim", err)
	}
	holder, err := a.readClaim(ctx, key, claimWait)
	if err != nil {
		return nil, err
	}
	if holder.Organization == m.Org {
		return nil, nil // this organization's, from an earlier run
	}
	return &holder, nil
}

// readClaim reads key's claim, waiting up to wait for one that is being
// created.
func (a *Activities) readClaim(ctx context.Context, key string, wait time.Duration) (MailboxClaim, error) {
	deadline := time.Now().Add(wait)
	for {
		r, _, err := a.Staging.Get(ctx, ClaimName(key))
		if errors.Is(err, staging.ErrNotFound) && time.Now().Before(deadline) {
			// Created a moment ago by another worker, not yet described.
			select {
			case <-time.After(50 * time.Millisecond):
				continue
			case <-ctx.Done():
				return MailboxClaim{}, ctx.Err()
			}
		}
		if err != nil {
			return MailboxClaim{}, temporalError("claim "+key, err)
		}
		var cl MailboxClaim
		err = json.NewDecoder(r).Decode(&cl)
		r.Close()
		if err != nil {
			return MailboxClaim{}, fmt.Errorf("claim %s: %w", key, err)
		}
		return cl, nil
	}
}

// claimProblem is the readiness problem text for a mailbox held elsewhere.
func claimProblem(m MailboxRef, holder *MailboxClaim) string {
	return fmt.Sprintf("%s: target mailbox %s on %s is being migrated by organization %s (claimed %s); one organization writes a mailbox at a time: it is released when %s ends, or with `starter release-mailboxes %s` if that organization was terminated",
		ProblemClaimed, m.TargetUser, m.TargetEndpoint, holder.Organization, holder.ClaimedAt.Format(time.RFC3339), holder.Organization, holder.Organization)
}

// ReleaseClaims drops every claim org holds; it returns how many. Claims
// another organization took over are left alone.
func ReleaseClaims(ctx context.Context, store staging.Store, org string) (int, error) {
	prefix := staging.Name("claims", "organizations", org) + "/"
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	a := &Activities{Staging: store}
	var (
		mu       sync.Mutex
		released int
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 16)
	)
	for _, o := range objs {
		key := path.Base(o.Name)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := func() error {
				cl, err := a.readClaim(ctx, key, 0)
				switch {
				case errors.Is(err, staging.ErrNotFound): // the index outlived a claim never made
				case err != nil:
					return err
				case cl.Organization == org:
					if err := store.Delete(ctx, ClaimName(key)); err != nil && !errors.Is(err, staging.ErrNotFound) {
						return err
					}
					mu.Lock()
					released++
					mu.Unlock()
				}
				if err := store.Delete(ctx, o.Name); err != nil && !errors.Is(err, staging.ErrNotFound) {
					return err
				}
				return nil
			}()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return released, firstErr
}
