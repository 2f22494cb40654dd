package htmlreport

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/transfer"
	"github.com/mailshift/mailshift/workflows"
)

const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>`

var t0 = time.Date(2026, 11, 3, 18, 0, 0, 0, time.UTC)

// mailbox is a validated mailbox whose one pass ran from t0+start for
// took, copying bytes.
func mailbox(addr string, start, took time.Duration, bytes int64, state report.State) report.MailboxReport {
	p := report.PassReport{Pass: "post-switch", Bytes: bytes, Copied: 10, Started: t0.Add(start), Finished: t0.Add(start + took)}
	r := report.MailboxReport{Organization: "RXH", Address: addr, State: state, Passes: []report.PassReport{p},
		Started: p.Started, Finished: p.Finished, TargetMessages: 10, TargetBytes: bytes, SourceMessages: 10,
		Consistency: string(workflows.Perfect)}
	if state == report.Failed {
		r.Consistency, r.Rules, r.LastError = string(workflows.Poor), []string{workflows.RuleMissing}, "validation: 3 messages missing"
	}
	return r
}

func render(t *testing.T, o *Organization) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, o.Render(&b))
	return b.String()
}

// checkSelfContained parses the page as HTML and fails on any reference
// that would make a browser fetch something: src, href or CSS url() to
// another place than an anchor in the page.
func checkSelfContained(t *testing.T, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	require.NoError(t, err)
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			require.NotEqual(t, "script", n.Data, "no script element")
			require.NotEqual(t, "link", n.Data, "no stylesheet link")
			for _, a := range n.Attr {
				switch a.Key {
				case "src", "srcset", "xlink:href", "action":
					t.Fatalf("<%s %s=%q>: the report must fetch nothing", n.Data, a.Key, a.Val)
				case "href":
					require.True(t, strings.HasPrefix(a.Val, "#"), "<%s href=%q>: only anchors in the page", n.Data, a.Val)
				}
				require.False(t, strings.HasPrefix(a.Key, "on"), "<%s %s>: no event handler", n.Data, a.Key)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if m := regexp.MustCompile(`(?i)url\(|@import|https?://`).FindString(page); m != "" {
		t.Fatalf("page refers to something outside it: %q", m)
	}
	return doc
}

func elements(doc *html.Node, tag string) int {
	n := 0
	var walk func(*html.Node)
	walk = func(x *html.Node) {
		if x.Type == html.ElementNode && x.Data == tag {
			n++
		}
		for c := x.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return n
}

// A page with every section: charts as inline SVG, the skipped reasons,
// the score with every rule, the failures; names, addresses and reasons
// chosen by others are escaped, and nothing is fetched.
func TestOrganizationPage(t *testing.T) {
	o := NewOrganization("RXH", "Royal "+hostile, "local:/tmp/staging")
	for i := range 40 {
		r := mailbox(fmt.Sprintf("user%02d@rxh.example", i), time.Duration(i)*time.Second, 2*time.Second, 5_000_000, report.Completed)
		if i%10 == 0 {
			r.State, r.Skipped, r.SkippedByReason = report.CompletedWithWarnings, 2, map[string]int{transfer.ReasonTooLarge: 1, hostile: 1}
			r.Staged, r.Consistency, r.Rules = 1, string(workflows.Investigate), []string{workflows.RuleBadItems, workflows.RuleStaged}
		}
		o.Add(&r)
	}
	bad := mailbox(hostile+"@rxh.example", 50*time.Second, time.Second, 1000, report.Failed)
	o.Add(&bad)
	o.SetProgress(workflows.Progress{Organization: "RXH", Phase: workflows.PhaseRolledBack, MailboxesTotal: 42, MailboxesDone: 40, MailboxesFailed: 2,
		Consistency: workflows.Poor, ConsistencyCounts: map[workflows.Consistency]int{workflows.Perfect: 36, workflows.Investigate: 4, workflows.Poor: 1},
		RulesFired: map[string]int{workflows.RuleMissing: 1, workflows.RuleBadItems: 4},
		Failures:   []workflows.MailboxFailure{{Address: "late@rxh.example", Pass: workflows.PassFinal, Error: "authentication refused " + hostile}},
		StartedAt:  t0, FinishedAt: t0.Add(time.Minute)})
	page := render(t, o)
	doc := checkSelfContained(t, page)

	hasNot(t, page, hostile)
	has(t, page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
	require.Equal(t, 5, elements(doc, "svg"), "mailboxes done, bytes, throughput, skipped reasons, score")
	for _, want := range []string{"RolledBack", "Royal &lt;script&gt;", "user10@rxh.example", "late@rxh.example", "authentication refused",
		"validation: 3 messages missing", transfer.ReasonTooLarge, "Poor", workflows.RuleStaged, "Throughput", "MB/s"} {
		has(t, page, want)
	}
	for _, r := range Rules {
		has(t, page, "<code>"+r.ID+"</code>", "every rule is listed, fired or not")
	}
	has(t, page, ">2</div><div class=\"l\">Failed", "one failure from the store, one from the workflow")
}

// Tables stop at MaxRows with an "and N more" line; charts at MaxBuckets
// points, whatever the size of the organization.
func TestOrganizationPageIsBounded(t *testing.T) {
	const n = 3 * MaxRows
	o := NewOrganization("BIG", "", "local:/s")
	for i := range n {
		r := mailbox(fmt.Sprintf("m%05d@big.example", i), time.Duration(i)*time.Minute, 3*time.Minute, 1e6, report.Failed)
		r.SkippedByReason, r.Skipped = map[string]int{fmt.Sprintf("reason-%03d", i%50): 1}, 1
		o.Add(&r)
	}
	page := render(t, o)
	doc := checkSelfContained(t, page)
	has(t, page, fmt.Sprintf("and %s more (see CSV", groupInt(n-MaxRows)))
	require.Equal(t, 2*MaxRows, strings.Count(page, `<td class="addr">`), "failures and findings capped")
	require.Equal(t, 2, strings.Count(page, `<tr class="more">`))
	require.Positive(t, elements(doc, "table"))
	for _, c := range regexp.MustCompile(`<path class="line" d="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		require.LessOrEqual(t, strings.Count(c[1], "L"), MaxBuckets+1)
	}
	require.Less(t, len(page), 200_000)
	has(t, page, "Every mailbox: <code>starter report BIG --format csv")
}

// Reports written before passes recorded their times still render, with a
// note where the charts would be.
func TestOrganizationPageWithoutTimes(t *testing.T) {
	o := NewOrganization("OLD", "", "local:/s")
	r := mailbox("a@old.example", 0, time.Second, 10, report.Completed)
	r.Passes[0].Started, r.Passes[0].Finished, r.Started, r.Finished = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	o.Add(&r)
	page := render(t, o)
	doc := checkSelfContained(t, page)
	has(t, page, "No chart: the 1 mailboxes&#39; pass reports carry no start and finish times")
	has(t, page, "the workflow&#39;s own score is unavailable")
	has(t, page, "Every mailbox validated")
	require.Equal(t, 1, elements(doc, "svg"), "the score chart only")
}

// The rules the page explains are the workflows' own: every rule Score can
// fire is listed with the grade Score gives it.
func TestRulesAreTheWorkflowsRules(t *testing.T) {
	_, fired := workflows.Score(activities.ValidateResult{Missing: 1, Duplicates: 1, Altered: 1, FlagMismatch: 1, DateMismatch: 1, Extra: 1, Staged: 1,
		SkippedByReason: map[string]int{transfer.ReasonTooLarge: 1, "rejected": 1}})
	require.Len(t, Rules, len(fired))
	for _, f := range fired {
		found := false
		for _, r := range Rules {
			if r.ID == f.ID {
				require.Equal(t, f.Score, r.Grade, f.ID)
				found = true
			}
		}
		require.True(t, found, "rule %s is not explained", f.ID)
	}
}

// Buckets keep every byte and every finished mailbox, spread a pass over
// the buckets it spans, and never exceed MaxBuckets+1.
func TestTimelineBuckets(t *testing.T) {
	var tl timeline
	tl.addSpan(t0, t0.Add(10*time.Second), 1000)
	tl.addSpan(t0.Add(5*time.Hour), t0.Add(5*time.Hour), 500)
	for i := range 1000 {
		tl.addEvent(t0.Add(time.Duration(i)*18*time.Second), 1)
	}
	s := tl.buckets()
	require.LessOrEqual(t, len(s.Bytes), MaxBuckets+1)
	sum := 0.0
	for _, b := range s.Bytes {
		sum += b
	}
	require.InDelta(t, 1500, sum, 1e-6)
	var done int64
	for _, d := range s.Done {
		done += d
	}
	require.EqualValues(t, 1000, done)

	var short timeline
	short.addSpan(t0, t0.Add(time.Second), 1e6)
	s = short.buckets()
	require.Equal(t, minBucket, s.Width)
	require.Len(t, s.Bytes, 11)
	for _, b := range s.Bytes[:10] {
		require.InDelta(t, 1e5, b, 1e-6, "a pass's bytes spread evenly over its second")
	}
	c := rate(s, "Throughput", "MB/s", s.Bytes, 1e6, mbps)
	require.Contains(t, c.Desc, "peak 1 MB/s")
	require.False(t, math.IsNaN(c.Bars[0].H))
}

// has and hasNot keep a failure's message short: the page is long.
func has(t *testing.T, page, want string, why ...any) {
	t.Helper()
	if !strings.Contains(page, want) {
		t.Fatalf("page does not contain %q %v", want, why)
	}
}

func hasNot(t *testing.T, page, bad string) {
	t.Helper()
	if i := strings.Index(page, bad); i >= 0 {
		t.Fatalf("page contains %q at %d", bad, i)
	}
}

// A campaign's page: one row per organization, problems first, with an
// anchor to a section for each organization that did not validate; names
// escaped; the campaign's progress charted from its organizations.
func TestCampaignPage(t *testing.T) {
	c := &Campaign{Name: "nhs-" + hostile, Progress: workflows.CampaignProgress{Name: "nhs", Phase: workflows.CampaignPhaseRunning, Planned: 3, Started: 2, Completed: 1, RolledBack: 1, MailboxesPlanned: 30}}
	c.Orgs = []CampaignOrg{
		{Code: "AAA", Name: "Fine Trust", Mailboxes: 10, Progress: &workflows.Progress{Organization: "AAA", Phase: workflows.PhaseCompleted, MailboxesTotal: 10, MailboxesDone: 10,
			Bytes: 5e6, Consistency: workflows.Perfect, StartedAt: t0, FinishedAt: t0.Add(time.Hour)}},
		{Code: "BBB", Name: hostile, Mailboxes: 10, Progress: &workflows.Progress{Organization: "BBB", Phase: workflows.PhaseRolledBack, MailboxesTotal: 10, MailboxesDone: 9, MailboxesFailed: 1,
			Consistency: workflows.Poor, Reason: "validation scored Poor", StartedAt: t0, FinishedAt: t0.Add(2 * time.Hour),
			Failures: []workflows.MailboxFailure{{Address: "x@bbb.example", Pass: workflows.PassValidate, Error: "3 missing " + hostile}}}},
		{Code: "CCC", Mailboxes: 10, Day: "2026-11-05"},
	}
	var b bytes.Buffer
	require.NoError(t, c.Render(&b))
	page := b.String()
	doc := checkSelfContained(t, page)
	hasNot(t, page, hostile)
	require.Equal(t, 3, elements(doc, "svg"))
	has(t, page, `<a href="#org-BBB">BBB</a>`)
	has(t, page, `<h3 id="org-BBB">`)
	has(t, page, "x@bbb.example")
	has(t, page, "validation scored Poor")
	has(t, page, "Planned")
	require.Less(t, strings.Index(page, `id="row-BBB"`), strings.Index(page, `id="row-AAA"`), "the rolled back organization first")
	require.Less(t, strings.Index(page, `id="row-AAA"`), strings.Index(page, `id="row-CCC"`), "the planned one last")
	has(t, page, ">19</div><div class=\"l\">Mailboxes done")
}
