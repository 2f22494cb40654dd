package transfer

import (
	"fmt"
	"testing"
)

func TestPassTalliesAddUpAndStayBounded(t *testing.T) {
	var cp Checkpoint
	if got := cp.Tally("run-1"); got.Copied != 0 || got.ID != "run-1" {
		t.Fatalf("a new pass starts at zero: %+v", got)
	}
	cp.SetTally(PassTally{ID: "run-1", Copied: 4, Bytes: 400})
	// The same pass again (its first result lost): it adds to the tally.
	tl := cp.Tally("run-1")
	tl.Copied += 6
	tl.Bytes += 600
	cp.SetTally(tl)
	if got := cp.Tally("run-1"); got.Copied != 10 || got.Bytes != 1000 || len(cp.Passes) != 1 {
		t.Fatalf("got %+v in %d tallies", got, len(cp.Passes))
	}
	for i := range 40 {
		cp.SetTally(PassTally{ID: fmt.Sprint("run-x", i), Copied: 1})
	}
	if len(cp.Passes) != maxPassTallies || cp.Passes[len(cp.Passes)-1].ID != "run-x39" {
		t.Fatalf("kept %d tallies, last %q", len(cp.Passes), cp.Passes[len(cp.Passes)-1].ID)
	}
	if got := cp.Tally("run-1"); got.Copied != 0 {
		t.Fatalf("the oldest tallies are dropped: %+v", got)
	}
}
