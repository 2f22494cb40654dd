package activities

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/transfer"
)

func TestTargetFolderRules(t *testing.T) {
	plans := []transfer.FolderPlan{{Target: "INBOX"}, {Target: "Archive"}, {Target: "Archive/2024"}}
	if got := targetFolderProblems(plans, '/', Policy{}); len(got) != 0 {
		t.Fatalf("a small tree is fine under Exchange's limits, got %v", got)
	}
	deep := strings.Repeat("a/", 5) + "b"
	long := "Projects/" + strings.Repeat("x", 40)
	got := targetFolderProblems(append(plans, transfer.FolderPlan{Target: deep}, transfer.FolderPlan{Target: long}), '/',
		Policy{TargetMaxFolders: 4, TargetMaxDepth: 5, TargetMaxNameLength: 32})
	want := []string{
		"folders: 5 folders, the target allows 4",
		fmt.Sprintf("folders: 1 folders nested deeper than 5 levels (e.g. %q)", deep),
		fmt.Sprintf("folders: 1 folder names longer than 32 characters (e.g. %q)", long),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range got {
		if ProblemKind(p) != ProblemFolders {
			t.Fatalf("%q is not a folders problem", p)
		}
	}
}

func TestQuotaHeadroom(t *testing.T) {
	const gb = 1 << 30
	if p := quotaProblem(40*gb, 5*gb, 50*gb); p != "" {
		t.Fatalf("40 GB fits 45 GB free with 10%% margin: %s", p)
	}
	p := quotaProblem(42*gb, 5*gb, 50*gb)
	if !strings.HasPrefix(p, "quota: the mailbox holds") || ProblemKind(p) != ProblemQuota {
		t.Fatalf("42 GB (+10%%) does not fit 45 GB: %q", p)
	}
	if p := quotaProblem(42*gb, 0, 0); p != "" {
		t.Fatalf("no limit means no problem: %q", p)
	}
	if ProblemKind("something odd") != "other" {
		t.Fatal("unknown problems are 'other'")
	}
}
