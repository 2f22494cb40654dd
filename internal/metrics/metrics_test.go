package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// The SDK adapter exports counters, gauges and timers (as histograms in
// seconds), gives every series of a name the union of its label names
// (the SDK adds tags to some series of a name), and a scrape stays valid.
func TestSDKHandlerOnTheRegistry(t *testing.T) {
	m := New()
	h := m.SDKHandler().WithTags(map[string]string{"namespace": "default"})
	h.Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"operation": "Poll", "status_code": "Unavailable"}).Counter("temporal_request").Inc(1)
	h.Gauge("temporal_worker_task_slots_available").Update(7)
	h.Timer("temporal_request_latency").Record(30 * time.Millisecond)
	h.Timer("temporal_request_latency").Record(2 * time.Second)
	h.Gauge("temporal_request").Update(1) // another kind under a counter's name: dropped

	m.Copied("ACME", 3, 300)
	m.Skipped("ACME", "too-large", 1)
	m.Skipped("ACME", "too-large", 0)
	m.Endpoint("source")
	m.ConnOpened("source")
	m.IMAPError("source", KindNetwork)
	m.StagingWritten(42)

	srv, err := Serve("127.0.0.1:0", m)
	require.NoError(t, err)
	defer srv.Close()
	body := get(t, "http://"+srv.Addr()+"/metrics")
	for _, want := range []string{
		`temporal_request{namespace="default",operation="",status_code=""} 2`,
		`temporal_request{namespace="default",operation="Poll",status_code="Unavailable"} 1`,
		`temporal_worker_task_slots_available{namespace="default"} 7`,
		`temporal_request_latency_bucket{namespace="default",le="0.05"} 1`,
		`temporal_request_latency_bucket{namespace="default",le="2.5"} 2`,
		`temporal_request_latency_count{namespace="default"} 2`,
		`mailshift_copied_bytes_total{org="ACME"} 300`,
		`mailshift_copied_messages_total{org="ACME"} 3`,
		`mailshift_skipped_items_total{org="ACME",reason="too-large"} 1`,
		`mailshift_endpoint_connections_in_use{endpoint="source"} 1`,
		`mailshift_throttled_seconds_total{endpoint="source"} 0`,
		`mailshift_imap_errors_total{endpoint="source",kind="Network"} 1`,
		`mailshift_staging_written_bytes_total 42`,
	} {
		require.Contains(t, body, want)
	}
	require.Equal(t, 1, strings.Count(body, "# TYPE temporal_request counter"))

	var none *Metrics // activities without metrics record nothing
	none.Copied("ACME", 1, 1)
	none.ConnOpened("x")
	require.Nil(t, none.SDKHandler())

	off, err := Serve("off", m)
	require.NoError(t, err)
	require.Nil(t, off)
	require.Equal(t, DefaultAddr, AddrFromEnv(""))
}
