package activities

import (
	"testing"

	"github.com/mailshift/mailshift/internal/transfer"
)

func TestSealHoldsOnlyForWhatItChecked(t *testing.T) {
	inbox := FolderMark{Name: "INBOX", UIDValidity: 7, UIDNext: 41, Messages: 40, ModSeq: 90}
	sent := FolderMark{Name: "Sent", UIDValidity: 7, UIDNext: 11, Messages: 10, ModSeq: 12}
	was := []FolderMark{inbox, sent}
	with := func(f func(*FolderMark)) []FolderMark {
		m := inbox
		f(&m)
		return []FolderMark{m, sent}
	}
	for _, c := range []struct {
		name   string
		now    []FolderMark
		modSeq bool
		same   bool
	}{
		{"nothing changed", []FolderMark{inbox, sent}, true, true},
		{"a message appended", with(func(m *FolderMark) { m.UIDNext++; m.Messages++ }), true, false},
		{"a message expunged", with(func(m *FolderMark) { m.Messages-- }), true, false},
		{"one expunged, one appended", with(func(m *FolderMark) { m.UIDNext++ }), true, false},
		{"folder re-created", with(func(m *FolderMark) { m.UIDValidity++ }), true, false},
		{"a flag changed (CONDSTORE)", with(func(m *FolderMark) { m.ModSeq++ }), true, false},
		{"a flag changed on the target", with(func(m *FolderMark) { m.ModSeq++ }), false, true},
		{"a folder created", []FolderMark{inbox, sent, {Name: "New", UIDValidity: 9, UIDNext: 1}}, true, false},
		{"a folder deleted", []FolderMark{inbox}, true, false},
	} {
		if got := sameMarks(was, c.now, c.modSeq); got != c.same {
			t.Errorf("%s: same = %v, want %v", c.name, got, c.same)
		}
	}

	for _, c := range []struct {
		had        transfer.Level
		hadSample  int
		want       transfer.Level
		wantSample int
		covers     bool
	}{
		{transfer.LevelMetadata, 0, transfer.LevelMetadata, 0, true},
		{transfer.LevelMetadata, 0, transfer.LevelSample, 10, false},
		{transfer.LevelSample, 10, transfer.LevelSample, 10, true},
		{transfer.LevelSample, 10, transfer.LevelSample, 20, false},
		{transfer.LevelSample, 20, transfer.LevelMetadata, 0, true},
		{transfer.LevelFull, 0, transfer.LevelSample, 50, true},
		{transfer.LevelSample, 50, transfer.LevelFull, 0, false},
		{"", 0, transfer.LevelMetadata, 0, false},
	} {
		if got := transfer.LevelCovers(c.had, c.hadSample, c.want, c.wantSample); got != c.covers {
			t.Errorf("sealed at %s/%d, asked %s/%d: covers = %v, want %v", c.had, c.hadSample, c.want, c.wantSample, got, c.covers)
		}
	}

	// A copy under another size limit (the policy's or, where it sets
	// none, the worker's) or other folder rules is another copy.
	a := &Activities{Limits: Limits{MaxMessageSize: 35 << 20}}
	base := a.policyFingerprint(MailboxRef{}, Policy{})
	if a.policyFingerprint(MailboxRef{}, Policy{Validation: "full", ValidationSample: 3}) != base {
		t.Error("the validation settings changed the fingerprint")
	}
	if a.policyFingerprint(MailboxRef{}, Policy{MaxMessageSize: 150 << 20}) == base {
		t.Error("a larger size limit kept the fingerprint")
	}
	if a.policyFingerprint(MailboxRef{}, Policy{Exclude: []string{"Junk"}}) == base {
		t.Error("another folder rule kept the fingerprint")
	}
	other := &Activities{Limits: Limits{MaxMessageSize: 150 << 20}}
	if other.policyFingerprint(MailboxRef{}, Policy{}) == base {
		t.Error("another worker size limit kept the fingerprint")
	}
}
