package testsuite

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/metrics"
	"github.com/mailshift/mailshift/workflows"
)

// scrape fetches and parses a /metrics page.
func scrape(ctx context.Context, t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// sumBy sums a family's series values by one label's value ("" = all).
func sumBy(f *dto.MetricFamily, label string) map[string]float64 {
	out := map[string]float64{}
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		key := ""
		for _, l := range m.Label {
			if l.GetName() == label {
				key = l.GetValue()
			}
		}
		switch {
		case m.Counter != nil:
			out[key] += m.Counter.GetValue()
		case m.Gauge != nil:
			out[key] += m.Gauge.GetValue()
		case m.Histogram != nil:
			out[key] += float64(m.Histogram.GetSampleCount())
		}
	}
	return out
}

func total(m map[string]float64) (t float64) {
	for _, v := range m {
		t += v
	}
	return t
}

// TestMetricsEndpointDuringAndAfterAMigration runs the demo estate with the
// worker's metrics served on a loopback port, scrapes them over HTTP while
// the migration runs and after it, and checks that mailshift's counters
// agree with the organizations' own progress and that the Temporal SDK's
// metrics come through the adapter.
func TestMetricsEndpointDuringAndAfterAMigration(t *testing.T) {
	reg := metrics.New()
	srv, err := metrics.Serve("127.0.0.1:0", reg)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + srv.Addr() + "/metrics"

	ctx, env := startDemo(t, 3*time.Minute, demo.Options{Seed: 4, Scale: 0.15, Metrics: reg})
	type done struct {
		ps  []workflows.Progress
		err error
	}
	finished := make(chan done, 1)
	go func() {
		ps, err := env.Migrate(ctx, nil)
		finished <- done{ps, err}
	}()

	// While it runs: the copy counters move before the migration ends.
	var during float64
	var res done
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case res = <-finished:
			break wait
		case <-tick.C:
			if during == 0 {
				during = total(sumBy(scrape(ctx, t, url)[metrics.CopiedBytes], ""))
			}
		}
	}
	require.NoError(t, res.err)
	require.Positive(t, during, "no copied bytes seen while the migration ran")

	fams := scrape(ctx, t, url)
	bytes := sumBy(fams[metrics.CopiedBytes], metrics.LabelOrg)
	msgs := sumBy(fams[metrics.CopiedMessages], metrics.LabelOrg)
	skipped := sumBy(fams[metrics.SkippedItems], metrics.LabelOrg)
	for _, p := range res.ps {
		require.True(t, p.Validated(), "%s: %s %s", p.Organization, p.Phase, p.Reason)
		require.Positive(t, p.Bytes)
		require.Equal(t, float64(p.Bytes), bytes[p.Organization], "%s copied bytes", p.Organization)
		require.Equal(t, float64(p.Messages), msgs[p.Organization], "%s copied messages", p.Organization)
		require.Equal(t, float64(p.Skipped), skipped[p.Organization], "%s skipped items", p.Organization)
	}
	require.LessOrEqual(t, during, total(bytes))

	// The workflows' own metrics, through the SDK's workflow metrics
	// handler: passes by outcome, and each organization's mailboxes in the
	// phase it ended in.
	passes := sumBy(fams[metrics.MailboxPasses], metrics.LabelOrg)
	byPhase := map[string]float64{}
	if f := fams[metrics.OrganizationMailboxes]; f != nil {
		for _, m := range f.Metric {
			var org, phase string
			for _, l := range m.Label {
				switch l.GetName() {
				case metrics.LabelOrg:
					org = l.GetValue()
				case metrics.LabelPhase:
					phase = l.GetValue()
				}
			}
			byPhase[org+"/"+phase] += m.Gauge.GetValue()
		}
	}
	for _, p := range res.ps {
		require.Positive(t, passes[p.Organization], "%s mailbox passes", p.Organization)
		require.Equal(t, float64(p.MailboxesTotal), byPhase[p.Organization+"/"+string(workflows.PhaseCompleted)], "%s mailboxes in Completed", p.Organization)
		require.Zero(t, byPhase[p.Organization+"/"+string(workflows.PhasePreStage)], "%s left PreStage", p.Organization)
	}
	require.Positive(t, sumBy(fams[metrics.MailboxPasses], metrics.LabelOutcome)[metrics.OutcomeOK])
	require.Positive(t, sumBy(fams[metrics.MailboxPasses], metrics.LabelPass)[string(workflows.PassPreStage)])
	require.Positive(t, total(sumBy(fams[metrics.SkippedItems], metrics.LabelReason)), "the demo estate has large items")
	require.Positive(t, total(sumBy(fams[metrics.StagingWrittenBytes], "")))
	conns := sumBy(fams[metrics.ConnectionsInUse], metrics.LabelEndpoint)
	require.Equal(t, map[string]float64{"source": 0, "target": 0}, conns, "every connection slot given back")
	for _, name := range metrics.Names() {
		if name != metrics.IMAPErrors { // no series until an error
			require.Contains(t, fams, name)
		}
	}

	// The Temporal SDK's metrics, through the adapter.
	for _, name := range metrics.SDKNames {
		require.Contains(t, fams, name, "SDK metric")
	}
	require.Positive(t, total(sumBy(fams["temporal_workflow_completed"], "")))
	require.Equal(t, dto.MetricType_HISTOGRAM, fams["temporal_activity_execution_latency"].GetType())
	require.Positive(t, total(sumBy(fams["temporal_activity_execution_latency"], "activity_type")))

	// The labels the dashboard groups the SDK's metrics by.
	for name, label := range map[string]string{
		"temporal_request": "operation", "temporal_request_latency": "operation",
		"temporal_activity_execution_latency": "activity_type", "temporal_activity_succeed_endtoend_latency": "activity_type",
		"temporal_workflow_completed": "workflow_type", "temporal_workflow_endtoend_latency": "workflow_type",
		"temporal_worker_task_slots_used": "worker_type", "temporal_worker_task_slots_available": "worker_type",
	} {
		require.NotEmpty(t, sumBy(fams[name], label), name)
		_, unlabelled := sumBy(fams[name], label)[""]
		require.False(t, unlabelled, "%s has series without %s", name, label)
	}

	// Bounded labels: no mailbox address anywhere.
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				require.NotContains(t, l.GetValue(), "@", "%s{%s}", name, l.GetName())
				require.NotEqual(t, "mailbox", l.GetName(), name)
			}
		}
	}
	var names []string
	for name := range fams {
		if strings.HasPrefix(name, "temporal_") {
			names = append(names, name)
		}
	}
	t.Log(fmt.Sprint("SDK metrics: ", names))
}
