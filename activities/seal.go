package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// A seal records that a mailbox validated: what each folder of both sides
// looked like (STATUS) just before the check that found them consistent,
// and that check's result. While both sides still look exactly so, and
// the organization asks for no more than was checked, the mailbox has
// nothing to copy and nothing new to validate: a re-run leaves it alone
// and books the sealed result. Any message appended, expunged or (where
// the source offers CONDSTORE) flagged on the source, and any message
// appended or expunged on the target, or a folder re-created (a new
// UIDVALIDITY), breaks the seal.

// Seal is a mailbox's seal, kept in staging beside its ledger.
type Seal struct {
	// Mailbox is whose seal it is: the same organization and address on
	// other endpoints or users is another mailbox.
	Mailbox MailboxRef `json:"mailbox"`
	// Level and Sample are the validation that sealed it; Policy is the
	// fingerprint of the policy it was copied under.
	Level  string `json:"level"`
	Sample int    `json:"sample,omitempty"`
	Policy string `json:"policy"`
	// Source and Target are every selectable folder's STATUS, by name.
	Source []FolderMark `json:"source"`
	Target []FolderMark `json:"target"`
	// Result is the validation's result as the organization booked it.
	Result ValidateResult `json:"result"`
	At     time.Time      `json:"at"`
}

// FolderMark is what STATUS says of one folder.
type FolderMark struct {
	Name        string `json:"name"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	Messages    uint32 `json:"messages"`
	// ModSeq is HIGHESTMODSEQ, 0 where the server has no CONDSTORE.
	ModSeq uint64 `json:"highestmodseq,omitempty"`
}

// SealName is where a mailbox's seal is kept.
func SealName(org, mailbox string) string { return staging.Name(org, mailbox, "seal.json") }

// policyFingerprint names what a copy under policy p depends on, with the
// worker's limits where p sets none: a copy under other limits or folder
// rules might have left other messages behind. The validation settings
// are compared apart (a seal at full serves a run that asks for metadata).
func (a *Activities) policyFingerprint(m MailboxRef, p Policy) string {
	o := a.policy(m, p)
	var target *transfer.Target // absent for a plain target, as before profiles
	if o.Target != (transfer.Target{}) {
		target = &o.Target
	}
	b, _ := json.Marshal(struct {
		MaxMessageSize             int64
		MaxLargeItems, MaxBadItems int
		Rules                      transfer.FolderRules
		Target                     *transfer.Target `json:",omitempty"`
	}{o.MaxMessageSize, o.MaxLargeItems, o.MaxBadItems, o.Rules, target})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// marks reads every selectable folder's STATUS, in one round trip where
// the server offers LIST-STATUS (RFC 5819).
func marks(c *imapconn.Conn) ([]FolderMark, error) {
	opts := &imap.StatusOptions{UIDValidity: true, UIDNext: true, NumMessages: true, HighestModSeq: c.Has(imap.CapCondStore)}
	var out []FolderMark
	mark := func(name string, d *imap.StatusData) {
		m := FolderMark{Name: name, UIDValidity: d.UIDValidity, UIDNext: uint32(d.UIDNext), ModSeq: d.HighestModSeq}
		if d.NumMessages != nil {
			m.Messages = *d.NumMessages
		}
		out = append(out, m)
	}
	if c.Has(imap.CapListStatus) {
		list, err := c.C.List("", "*", &imap.ListOptions{ReturnStatus: opts}).Collect()
		if err != nil {
			return nil, imapconn.Classify("list-status", err)
		}
		for _, l := range list {
			if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
				continue
			}
			if l.Status == nil {
				// RFC 5819 lets a server leave out a folder whose STATUS
				// failed; a folder not looked at cannot be vouched for.
				return nil, fmt.Errorf("list-status: no STATUS for folder %q", l.Mailbox)
			}
			mark(l.Mailbox, l.Status)
		}
	} else {
		folders, err := c.Folders()
		if err != nil {
			return nil, err
		}
		for _, f := range folders {
			if f.NoSelect {
				continue
			}
			d, err := c.C.Status(f.Name, opts).Wait()
			if err != nil {
				return nil, imapconn.Classify("status "+f.Name, err)
			}
			mark(f.Name, d)
		}
	}
	slices.SortFunc(out, func(a, b FolderMark) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// sameMarks: every folder is there with the same STATUS. The target's
// HIGHESTMODSEQ is not compared: after the routing switch its user reads
// and files mail there, and flags on the target are theirs.
func sameMarks(was, now []FolderMark, modSeq bool) bool {
	if len(was) != len(now) {
		return false
	}
	for i := range was {
		a, b := was[i], now[i]
		if !modSeq {
			a.ModSeq, b.ModSeq = 0, 0
		}
		if a != b {
			return false
		}
	}
	return true
}

// sealMarks reads both sides' marks before a validation; nil if either
// cannot be read (the mailbox is then simply not sealed).
func sealMarks(src, tgt *imapconn.Conn) (source, target []FolderMark) {
	s, err := marks(src)
	if err != nil {
		return nil, nil
	}
	t, err := marks(tgt)
	if err != nil {
		return nil, nil
	}
	return s, t
}

// seal records a validation that found the mailbox consistent, or drops
// the seal of one that did not.
func (a *Activities) seal(ctx context.Context, m MailboxRef, p Policy, vo transfer.ValidateOptions, source, target []FolderMark, res ValidateResult) error {
	name := SealName(m.Org, m.Address)
	if !res.OK || source == nil {
		err := a.Staging.Delete(ctx, name)
		if err != nil && !errors.Is(err, staging.ErrNotFound) {
			return temporalError("staging "+name, err)
		}
		return nil
	}
	res.Problems = nil
	s := Seal{Mailbox: m, Level: string(vo.Level), Policy: a.policyFingerprint(m, p), Source: source, Target: target, Result: res, At: time.Now().UTC()}
	if vo.Level == transfer.LevelSample {
		s.Sample = vo.SampleSize()
	}
	return a.saveJSON(ctx, name, s)
}

// unchanged returns the mailbox's seal if it still holds for policy p: the
// validation it asks for is no deeper than the sealed one, and both
// sides look as they did. nil otherwise, or if there is no seal.
func (a *Activities) unchanged(ctx context.Context, m MailboxRef, p Policy, src, tgt *imapconn.Conn) (*Seal, error) {
	if a.Staging == nil {
		return nil, nil
	}
	s, err := a.loadSeal(ctx, m)
	if s == nil || err != nil {
		return nil, err
	}
	vo, err := a.validation(p)
	if err != nil {
		return nil, nil // the check that follows reports the bad level
	}
	if s.Mailbox != m || s.Policy != a.policyFingerprint(m, p) || !transfer.LevelCovers(transfer.Level(s.Level), s.Sample, vo.Level, vo.SampleSize()) {
		return nil, nil
	}
	now, err := marks(src)
	if err != nil {
		return nil, err
	}
	if !sameMarks(s.Source, now, true) {
		return nil, nil
	}
	if now, err = marks(tgt); err != nil {
		return nil, err
	}
	if !sameMarks(s.Target, now, false) {
		return nil, nil
	}
	return s, nil
}

func (a *Activities) loadSeal(ctx context.Context, m MailboxRef) (*Seal, error) {
	name := SealName(m.Org, m.Address)
	b, err := a.readStaging(ctx, name)
	if errors.Is(err, staging.ErrNotFound) {
		return nil, nil
	}
	var s Seal
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		// A torn or unreadable seal only costs the mailbox its shortcut.
		a.logger().Warn("seal unreadable; the mailbox is checked in full", "seal", name, "error", err)
		return nil, nil
	}
	return &s, nil
}

// UnchangedInput asks which of some mailboxes, found unchanged by
// readiness, still are (after the routing switch).
type UnchangedInput struct {
	Org            string        `json:"org"`
	SourceEndpoint string        `json:"source_endpoint"`
	TargetEndpoint string        `json:"target_endpoint"`
	Mailboxes      []MailboxSpec `json:"mailboxes"`
	Policy         Policy        `json:"policy"`
	Parallel       int           `json:"parallel"`
}

// UnchangedBrief is one mailbox's answer: still unchanged, with its sealed
// validation, or not (it then takes the post-switch pass).
type UnchangedBrief struct {
	Unchanged  bool            `json:"u,omitempty"`
	Validation *ValidateResult `json:"v,omitempty"`
}

// CheckUnchanged checks again, after the routing switch, that mailboxes
// readiness found unchanged still are. Mail that reached the source
// between readiness and the switch breaks a mailbox's seal; that mailbox
// then takes the post-switch pass like any other. It reads only; an error
// on one mailbox answers "changed" for it.
func (a *Activities) CheckUnchanged(ctx context.Context, in UnchangedInput) ([]UnchangedBrief, error) {
	out := make([]UnchangedBrief, len(in.Mailboxes))
	eachInParallel(ctx, len(in.Mailboxes), in.Parallel, func(i int) {
		s := in.Mailboxes[i]
		m := MailboxRef{Org: in.Org, Address: s.Address, SourceEndpoint: in.SourceEndpoint, SourceUser: s.SourceUser, TargetEndpoint: in.TargetEndpoint, TargetUser: s.TargetUser}
		seal, err := whileThrottled(ctx, func() (*Seal, error) { return a.stillUnchanged(ctx, m, in.Policy) })
		switch {
		case err != nil:
			a.logger().Warn("unchanged check failed; the mailbox takes the passes", "org", in.Org, "mailbox", s.Address, "error", err)
		case seal != nil:
			r := seal.Result
			out[i] = UnchangedBrief{Unchanged: true, Validation: &r}
		}
	})
	return out, ctx.Err()
}

func (a *Activities) stillUnchanged(ctx context.Context, m MailboxRef, p Policy) (*Seal, error) {
	src, tgt, release, err := a.connect(ctx, m)
	if err != nil {
		return nil, err
	}
	defer release()
	s, err := a.unchanged(ctx, m, p, src, tgt)
	if err != nil {
		return nil, fmt.Errorf("mailbox %s: %w", m.Address, err)
	}
	return s, nil
}
