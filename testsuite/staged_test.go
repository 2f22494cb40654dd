package testsuite

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/workflows"
)

// TestArchiveThenImportStagedItemsWhenTheLimitAllows archives every
// mailbox before cutover, migrates with a small target limit (large items
// staged), then re-runs the organizations with a raised limit and
// import-staged: the staged items land in the target byte for byte and
// nothing is duplicated.
func TestArchiveThenImportStagedItemsWhenTheLimitAllows(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env, err := demo.Setup(ctx, demo.Options{Seed: 5, Scale: 0.15, TemporalAddr: "127.0.0.1:0", UIAddr: "off",
		WorkDir: t.TempDir(), MaxMessageSize: 256 << 10})
	require.NoError(t, err)
	defer env.Close()
	for i := range env.Inputs {
		env.Inputs[i].Archive = true
		env.Inputs[i].ArchiveRetainDays = 30
	}
	ps, err := env.Migrate(ctx, nil)
	require.NoError(t, err)
	var staged, archived int
	_, total, _ := env.Estate.Totals()
	for _, p := range ps {
		require.True(t, p.Validated(), "%s %s %v", p.Organization, p.Phase, p.Failures)
		staged += p.Skipped
		archived += int(p.ArchivedMessages)
	}
	require.Equal(t, 4, staged)
	require.Equal(t, total, archived, "the archive holds every source message")

	// One archive index, checked object by object against the estate.
	mb := env.Estate.Orgs[0].Mailboxes[0]
	rc, _, err := env.Activities.Staging.Get(ctx, staging.Name(env.Estate.Orgs[0].Code, mb.Address, "archive-index.json"))
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	var index struct {
		Objects []staging.Object `json:"objects"`
	}
	require.NoError(t, json.Unmarshal(b, &index))
	n := 0
	for _, f := range mb.Folders {
		n += len(f.Messages)
	}
	require.Len(t, index.Objects, n)
	for _, o := range index.Objects {
		_, err := staging.Verify(ctx, env.Activities.Staging, o.Name)
		require.NoError(t, err)
		require.NotEmpty(t, o.Metadata["retain_until"])
		require.NotEmpty(t, o.Metadata["internaldate"])
	}

	// Raise the limit and import what was staged.
	for _, in := range env.Inputs {
		in.Archive = false
		in.ImportStaged = true
		in.Policy.MaxMessageSize = 10 << 20
		_, err := control.Start(ctx, env.Client, workflows.TaskQueue, in)
		require.NoError(t, err)
	}
	var codes []string
	for _, in := range env.Inputs {
		codes = append(codes, in.Code)
	}
	ps, err = control.Watch(ctx, env.Client, codes, 200*time.Millisecond, nil)
	require.NoError(t, err)
	imported := 0
	for _, p := range ps {
		require.True(t, p.Validated(), "%s %s %v", p.Organization, p.Phase, p.Failures)
		require.Zero(t, p.Skipped)
		imported += p.ImportedItems
	}
	require.Equal(t, 4, imported)
	rep, err := estate.VerifyEstate(ctx, env.Estate, env.Source.Addr(), env.Target.Addr(), estate.VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, total, rep.Messages)
}
