package testsuite

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/mailshift/mailshift/internal/demo"
)

// fetchHistory reads a run's history; runID "" is the latest run.
func fetchHistory(t *testing.T, ctx context.Context, env *demo.Env, id, runID string) *historypb.History {
	t.Helper()
	iter := env.Client.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	return h
}
