package workflows

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestHistoriesOfShippedVersionsReplay replays histories that earlier
// versions recorded on the embedded server (testdata/histories/<version>:
// every run of an organization that continued as new, every pass of one
// of its mailboxes and, from lean-lifecycle on, every run of a campaign)
// with today's code. A change that would break the
// runs in flight at an upgrade fails here, not in production.
func TestHistoriesOfShippedVersionsReplay(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(Organization, workflow.RegisterOptions{Name: OrganizationWorkflowName})
	r.RegisterWorkflowWithOptions(Mailbox, workflow.RegisterOptions{Name: MailboxWorkflowName})
	r.RegisterWorkflowWithOptions(Campaign, workflow.RegisterOptions{Name: CampaignWorkflowName})
	logger := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	for _, f := range files {
		require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(logger, f), f)
	}
}
