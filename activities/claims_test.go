package activities

import (
	"context"
	"testing"

	"github.com/mailshift/mailshift/internal/staging"
)

func TestClaimsHoldReleaseAndTakeOver(t *testing.T) {
	ctx := context.Background()
	store, err := staging.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Staging: store}
	box := func(org string) MailboxRef {
		return MailboxRef{Org: org, Address: "alice@" + org + ".example", TargetEndpoint: "target", TargetUser: "Alice@cloud.example"}
	}
	if h, err := a.claim(ctx, box("RXH")); err != nil || h != nil {
		t.Fatalf("first claim: holder %v, %v", h, err)
	}
	if h, err := a.claim(ctx, box("RXH")); err != nil || h != nil {
		t.Fatalf("the holder claims again (a re-run): holder %v, %v", h, err)
	}
	other := box("GP7")
	other.TargetUser = "alice@CLOUD.example" // the same mailbox, other case
	h, err := a.claim(ctx, other)
	if err != nil || h == nil || h.Organization != "RXH" {
		t.Fatalf("a second organization must be refused with the holder: %+v, %v", h, err)
	}
	if n, err := ReleaseClaims(ctx, store, "GP7"); err != nil || n != 0 {
		t.Fatalf("GP7 holds nothing to release: %d, %v", n, err)
	}
	if n, err := ReleaseClaims(ctx, store, "RXH"); err != nil || n != 1 {
		t.Fatalf("RXH releases its one claim: %d, %v", n, err)
	}
	if h, err := a.claim(ctx, other); err != nil || h != nil {
		t.Fatalf("once released, GP7 may claim: holder %v, %v", h, err)
	}
	if MailboxKey("target", "Alice@cloud.example") != MailboxKey("target", "alice@cloud.example") || MailboxKey("target", "a@b") == MailboxKey("other", "a@b") {
		t.Fatal("a key is the target endpoint and the target user, case-insensitive")
	}
}
