package testsuite

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/metrics"
)

// dashboard is what the tests read of a Grafana dashboard: its PromQL
// expressions (panel targets and query variables) and datasource uids.
type dashboard struct {
	exprs          []string
	datasourceUIDs []string
}

func composeDashboard(t *testing.T, path string) dashboard {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var d struct {
		UID        string     `json:"uid"`
		Panels     []dashPane `json:"panels"`
		Templating struct {
			List []struct {
				Type       string      `json:"type"`
				Datasource *dashDS     `json:"datasource"`
				Query      interface{} `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(data, &d), "%s does not parse", path)
	require.NotEmpty(t, d.UID)
	var out dashboard
	var walk func([]dashPane)
	walk = func(ps []dashPane) {
		for _, p := range ps {
			if p.Datasource != nil {
				out.datasourceUIDs = append(out.datasourceUIDs, p.Datasource.UID)
			}
			for _, tg := range p.Targets {
				if tg.Datasource != nil {
					out.datasourceUIDs = append(out.datasourceUIDs, tg.Datasource.UID)
				}
				if tg.Expr != "" {
					out.exprs = append(out.exprs, tg.Expr)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if v.Datasource != nil {
			out.datasourceUIDs = append(out.datasourceUIDs, v.Datasource.UID)
		}
		switch q := v.Query.(type) {
		case string:
			out.exprs = append(out.exprs, q)
		case map[string]interface{}:
			if s, ok := q["query"].(string); ok {
				out.exprs = append(out.exprs, s)
			}
		}
	}
	return out
}

type dashDS struct {
	UID string `json:"uid"`
}

type dashPane struct {
	Datasource *dashDS `json:"datasource"`
	Targets    []struct {
		Datasource *dashDS `json:"datasource"`
		Expr       string  `json:"expr"`
	} `json:"targets"`
	Panels []dashPane `json:"panels"`
}

var (
	promqlStrings     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers    = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges      = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping    = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlNumbers     = regexp.MustCompile(`\b[0-9][0-9a-zA-Z_.]*`) // 0.95, 5m, 1e3
	promqlLabelValues = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)`)
	promqlIdent       = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promqlKeywords    = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// promqlMetricNames returns the metric names a PromQL expression (or a
// Grafana label_values() query) selects.
func promqlMetricNames(expr string) []string {
	expr = promqlLabelValues.ReplaceAllString(expr, "$1")
	expr = promqlStrings.ReplaceAllString(expr, " ")
	expr = promqlMatchers.ReplaceAllString(expr, " ")
	expr = promqlRanges.ReplaceAllString(expr, " ")
	expr = promqlGrouping.ReplaceAllString(expr, " ")
	expr = promqlNumbers.ReplaceAllString(expr, " ")
	var names []string
	for _, m := range promqlIdent.FindAllString(expr, -1) {
		if strings.HasSuffix(m, "(") || slices.Contains(promqlKeywords, strings.ToLower(m)) || strings.HasPrefix(m, "$") {
			continue // a function, a keyword
		}
		names = append(names, m)
	}
	return names
}

// workerExportedMetrics is every series name the worker exports that a
// dashboard may select: mailshift's metrics and the SDK metrics the scrape
// test (TestMetricsEndpointDuringAndAfterAMigration) sees, the SDK's
// timers (…_latency) as histograms.
func workerExportedMetrics() map[string]bool {
	out := map[string]bool{}
	for _, n := range metrics.Names() {
		out[n] = true
		if n == metrics.EndpointLoginSeconds { // a histogram
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[n+s] = true
			}
		}
	}
	for _, n := range metrics.SDKNames {
		if strings.HasSuffix(n, "_latency") {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[n+s] = true
			}
			continue
		}
		out[n] = true
	}
	return out
}

// Every metric the Grafana dashboard queries is one the worker exports,
// and every one of mailshift's own metrics is on the dashboard.
func TestGrafanaDashboardQueriesOnlyExportedMetrics(t *testing.T) {
	root := composeRepoRoot(t)
	d := composeDashboard(t, filepath.Join(root, "deploy", "grafana", "dashboards", "mailshift.json"))
	require.NotEmpty(t, d.exprs)
	exported := workerExportedMetrics()
	used := map[string]bool{}
	for _, e := range d.exprs {
		names := promqlMetricNames(e)
		assert.NotEmpty(t, names, "expression selects no metric: %s", e)
		for _, n := range names {
			used[n] = true
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				used[strings.TrimSuffix(n, s)] = true
			}
			assert.True(t, exported[n], "dashboard queries %s, which the worker does not export (in %s)", n, e)
		}
	}
	for _, n := range metrics.Names() {
		assert.True(t, used[n], "mailshift metric %s is not on the dashboard", n)
	}
}

func TestPromQLMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (org) (rate(mailshift_copied_bytes_total{org=~"$org"}[$__rate_interval]))`:                       {"mailshift_copied_bytes_total"},
		`histogram_quantile(0.95, sum by (le, operation) (rate(temporal_request_latency_bucket[5m])))`:           {"temporal_request_latency_bucket"},
		`label_values(mailshift_copied_bytes_total, org)`:                                                        {"mailshift_copied_bytes_total"},
		`a / on (instance) group_left b > bool 1 or c offset 5m`:                                                 {"a", "b", "c"},
		`sum without (kind) (mailshift_imap_errors_total{kind!="x,y"}) unless mailshift_throttled_seconds_total`: {"mailshift_imap_errors_total", "mailshift_throttled_seconds_total"},
	} {
		assert.Equal(t, want, promqlMetricNames(expr), expr)
	}
}
