// Package testsuite holds mailshift's end-to-end tests: real workflows on
// the embedded Temporal server, a real worker, real IMAP servers, and an
// independent byte-for-byte comparison of source and target.
package testsuite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/routing"
	"github.com/mailshift/mailshift/workflows"
)

func TestEndToEndMigrationIsExactAndRerunSafe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env, err := demo.Setup(ctx, demo.Options{
		Seed: 11, Scale: 0.3, TemporalAddr: "127.0.0.1:0", UIAddr: "127.0.0.1:0",
		WorkDir: t.TempDir(), MaxMessageSize: 512 << 10,
		// A workflow whose activity fails quoting a mailbox: the failure
		// events its history gets must not show the address either.
		Register: func(w worker.Worker) {
			w.RegisterWorkflowWithOptions(failingWorkflow, workflow.RegisterOptions{Name: failingWorkflowName})
			w.RegisterActivityWithOptions(failingActivity, activity.RegisterOptions{Name: failingWorkflowName})
		},
	})
	require.NoError(t, err)
	defer env.Close()
	require.True(t, env.Codec.Encrypts(), "the demo encrypts payloads by default")

	ps, err := env.Migrate(ctx, nil)
	require.NoError(t, err)
	require.Len(t, ps, len(env.Estate.Orgs))
	var copied int64
	for _, p := range ps {
		require.True(t, p.Validated(), "organization %s: phase %s, failures %v, reason %s", p.Organization, p.Phase, p.Failures, p.Reason)
		copied += p.Messages
	}

	// Independent check: every message byte for byte, flags, dates.
	rep, err := env.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	_, total, _ := env.Estate.Totals()
	require.Equal(t, total, rep.Messages)
	require.Equal(t, rep.ExpectedMissing, 4, "the four large items are staged, not copied")
	require.EqualValues(t, total-4, copied)

	// Each large item is staged byte-exact under its deterministic name.
	staged := 0
	for _, org := range env.Estate.Orgs {
		for _, mb := range org.Mailboxes {
			for _, f := range mb.Folders {
				for _, m := range f.Messages {
					if int64(len(m.Raw)) <= int64(env.Config.Limits.MaxMessageSize) {
						continue
					}
					objs, err := env.Activities.Staging.List(ctx, org.Code+"/"+mb.Address+"/")
					require.NoError(t, err)
					sum := sha256.Sum256(m.Raw)
					found := false
					for _, o := range objs {
						found = found || (o.SHA256 == hex.EncodeToString(sum[:]) && strings.HasSuffix(o.Name, ".eml"))
					}
					require.True(t, found, "large item of %s in %s is staged", mb.Address, f.Name)
					staged++
				}
			}
		}
	}
	require.Equal(t, 4, staged)

	// Routing switched for every mailbox.
	entries, err := (&routing.File{Path: env.Config.Routing.Path}).Entries()
	require.NoError(t, err)
	require.Len(t, entries, len(env.Estate.Mailboxes()))

	// Visibility: the Web UI serves, and organizations are found by phase.
	resp, err := http.Get(env.Server.UIURL() + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	var listed int
	for i := 0; i < 100 && listed != len(ps); i++ {
		r, err := env.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: `MigrationPhase = "Completed"`})
		require.NoError(t, err)
		listed = len(r.Executions)
		if listed != len(ps) {
			time.Sleep(100 * time.Millisecond) // visibility is eventually consistent
		}
	}
	require.Equal(t, len(ps), listed)

	// No address, folder name or password enters a history in clear, and
	// histories replay deterministically (through the codec).
	requireHistoriesEncrypted(t, ctx, env)

	// A re-run of the finished migration copies nothing and duplicates nothing.
	ps2, err := env.Migrate(ctx, nil)
	require.NoError(t, err)
	for _, p := range ps2 {
		require.True(t, p.Validated(), "re-run of %s: %s %v", p.Organization, p.Phase, p.Failures)
		require.Zero(t, p.Messages, "re-run of %s copied messages again", p.Organization)
	}
	rep, err = env.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())

	// The same organization cannot run twice at once: starting it again
	// while it runs attaches to the running workflow.
	in := env.Inputs[0]
	in.Approval = workflows.ApprovalManual
	run1, err := control.Start(ctx, env.Client, workflows.TaskQueue, in)
	require.NoError(t, err)
	run2, err := control.Start(ctx, env.Client, workflows.TaskQueue, in)
	require.NoError(t, err)
	require.Equal(t, run1.GetRunID(), run2.GetRunID())
	waitPhase(t, ctx, env, in.Code, workflows.PhaseAwaitingCutover)
	_, err = control.ApproveCutover(ctx, env.Client, in.Code, "", "")
	require.ErrorContains(t, err, "approver is required")
	a, err := control.ApproveCutover(ctx, env.Client, in.Code, "e2e-operator", "test")
	require.NoError(t, err)
	require.Equal(t, "e2e-operator", a.Approver)
	final, err := control.Result(ctx, env.Client, in.Code)
	require.NoError(t, err)
	require.True(t, final.Validated())
	require.Equal(t, "e2e-operator", final.Approval.Approver)
}

func waitPhase(t *testing.T, ctx context.Context, env *demo.Env, org string, want workflows.Phase) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		p, err := control.Progress(ctx, env.Client, org)
		if err == nil && p.Phase == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("organization %s never reached %s", org, want)
}

func TestDemoCommandRunsToValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	dir := t.TempDir()
	err := demo.Run(ctx, demo.Options{Seed: 3, Scale: 0.15, TemporalAddr: "127.0.0.1:0", UIAddr: "off", WorkDir: dir}, &out)
	require.NoError(t, err, out.String())
	s := out.String()
	for _, want := range []string{"ORG", "Completed", "TOTAL", "staged", ", 0 problems", "demo finished"} {
		require.Contains(t, s, want)
	}
	// Ledgers and reports are written for every mailbox.
	ledgers, _ := filepath.Glob(filepath.Join(dir, "staging", "*", "*", "ledger.json"))
	require.NotEmpty(t, ledgers)
	b, err := os.ReadFile(ledgers[0])
	require.NoError(t, err)
	require.Contains(t, string(b), `"uidvalidity"`)
	fmt.Fprintln(os.Stderr, s)
}
