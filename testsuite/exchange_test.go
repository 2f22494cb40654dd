package testsuite

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/entra/entratest"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/profile"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/workflows"
)

// exchangeRig is a Dovecot source loaded with an estate, an in-process
// target that behaves like Exchange Online (re-rendered MIME, no
// SPECIAL-USE, localised well-known folders, keywords refused, a size
// ceiling, throttling, XOAUTH2 with app-only tokens), a test Entra
// authority, and a worker configuration for them.
type exchangeRig struct {
	est     *estate.Estate
	src     *dovecottest.Instance
	tgt     *estate.Server
	auth    *entratest.Authority
	cfgPath string
	cfg     *config.Config
	// lang is each mailbox's language on the target; german the orgs whose
	// mailboxes are German.
	lang      map[string]string
	throttled atomic.Int64
	refused   atomic.Int64
}

const (
	// exchangeItemLimit is the worker's max_message_size in these tests,
	// and exchangeCeiling the target's own APPEND ceiling above it.
	exchangeItemLimit = 160 << 10
	exchangeCeiling   = 192 << 10
	exchangeSecret    = "exo-client-secret-7f3a"
)

func newExchangeRig(t *testing.T, spec estate.Spec, german map[string]bool, throttleEvery int64, validation string) *exchangeRig {
	t.Helper()
	r := &exchangeRig{est: estate.Generate(spec), lang: map[string]string{}}
	for _, o := range r.est.Orgs {
		for _, mb := range o.Mailboxes {
			r.lang[mb.User] = "en"
			if german[o.Code] {
				r.lang[mb.User] = "de"
			}
		}
	}
	mbs := r.est.Mailboxes()
	_, domain, _ := strings.Cut(mbs[0].User, "@")
	var err error
	r.auth, err = entratest.New("tenant-exo", "app-exo", exchangeSecret, "mailshift-app@"+domain)
	require.NoError(t, err)
	t.Cleanup(r.auth.Close)

	r.src = dovecottest.StartT(t, dovecottest.Options{Name: "exo-src", MailFsync: "never"})
	require.NoError(t, dovecottest.LoadEstate(r.src, mbs))
	var appends atomic.Int64
	r.tgt, err = estate.StartServer(estate.ServerOptions{
		Name: "exchange", Exchange: true, AppendLimit: exchangeCeiling,
		Language: func(user string) string { return r.lang[user] },
		Throttle: func() (time.Duration, bool) {
			if throttleEvery > 0 && appends.Add(1)%throttleEvery == 0 {
				r.throttled.Add(1)
				return 300 * time.Millisecond, true
			}
			return 0, false
		},
		// Exchange opens any mailbox of the tenant to which the app was
		// given FullAccess, with the one token the app got.
		Bearer: func(user, token string) error {
			if _, err := r.auth.Verify(token); err != nil {
				r.refused.Add(1)
				return err
			}
			return nil
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { r.tgt.Close() })
	for _, mb := range mbs {
		// The passwords are Exchange's own business: the worker has none.
		require.NoError(t, r.tgt.AddUser(mb.User, "unknown-"+mb.Password))
	}

	dir := t.TempDir()
	var pw strings.Builder
	for _, mb := range mbs {
		fmt.Fprintf(&pw, "%s:%s\n", mb.User, mb.Password)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw.String()), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authority.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.auth.Server.Certificate().Raw}), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(exchangeSecret), 0o600))
	key := make([]byte, config.EncryptionKeySize)
	_, err = rand.Read(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "payload.key"), []byte(base64.StdEncoding.EncodeToString(key)), 0o600))
	r.cfgPath = filepath.Join(dir, "mailshift.yaml")
	require.NoError(t, os.WriteFile(r.cfgPath, []byte(fmt.Sprintf(`
endpoints:
  source: {url: %q, passwords: "file:%s/passwd", max_connections: 8}
  target:
    url: %q
    profile: exchange-online
    auth: oauth2
    max_connections: 8
    oauth2:
      tenant_id: %s
      client_id: %s
      client_secret: "file:%s/secret"
      authority_host: %q
      authority_ca_file: %q
staging: {kind: local, path: %q}
limits: {max_message_size: %d}
validation: {level: %s}
payload_encryption:
  active_key: k1
  keys: [{id: k1, key: "file:%s/payload.key"}]
`, r.src.URL(), dir, r.tgt.URL(), r.auth.TenantID, r.auth.ClientID, dir, r.auth.Host(), filepath.Join(dir, "authority.pem"),
		filepath.Join(dir, "staging"), exchangeItemLimit, validation, dir)), 0o600))
	r.cfg, err = config.Load(r.cfgPath)
	require.NoError(t, err)
	return r
}

// client returns a Temporal client of srv that encrypts payloads as the
// worker does.
func (r *exchangeRig) client(t *testing.T, ctx context.Context, address string) client.Client {
	t.Helper()
	cdc, err := codec.FromConfig(r.cfg.PayloadEncryption)
	require.NoError(t, err)
	opts := client.Options{HostPort: address}
	cdc.Apply(&opts)
	c, err := client.DialContext(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// start starts every organization, the German ones with target_language de.
func (r *exchangeRig) start(t *testing.T, ctx context.Context, c client.Client, german map[string]bool, concurrency int, heartbeat time.Duration) []string {
	t.Helper()
	var codes []string
	for _, org := range r.est.Orgs {
		in := workflows.OrganizationInput{Code: org.Code, Name: org.Name, SourceEndpoint: "source", TargetEndpoint: "target",
			Concurrency: concurrency, HeartbeatTimeout: heartbeat}
		if german[org.Code] {
			in.Policy.TargetLanguage = "de"
		}
		for _, mb := range org.Mailboxes {
			in.Mailboxes = append(in.Mailboxes, workflows.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
		}
		_, err := control.Start(ctx, c, workflows.TaskQueue, in)
		require.NoError(t, err)
		codes = append(codes, org.Code)
	}
	return codes
}

// folderMap maps a source folder to where Exchange keeps it: special-use
// folders, and what is inside them, into the well-known folders in the
// mailbox's language.
func (r *exchangeRig) folderMap(t *testing.T, mb *estate.Mailbox) func(string) string {
	names, err := profile.Folders(r.lang[mb.User], nil)
	require.NoError(t, err)
	return func(s string) string {
		for _, f := range mb.Folders {
			if f.SpecialUse == "" || names[f.SpecialUse] == "" {
				continue
			}
			if s == f.Name || strings.HasPrefix(s, f.Name+"/") {
				return names[f.SpecialUse] + s[len(f.Name):]
			}
		}
		return s
	}
}

// verify compares every mailbox independently of mailshift, by what a
// re-rendering target keeps: every message once, nothing extra.
func (r *exchangeRig) verify(t *testing.T, ctx context.Context) estate.Report {
	t.Helper()
	var all estate.Report
	for _, mb := range r.est.Mailboxes() {
		rep, err := estate.Verify(ctx, r.src.Account(mb), estate.Account{Addr: r.tgt.Addr(), User: mb.User, Password: "unknown-" + mb.Password},
			estate.VerifyOptions{MaxMessageSize: exchangeItemLimit, Rerendered: true, MapFolder: r.folderMap(t, mb)})
		require.NoError(t, err)
		all.Add(rep)
	}
	return all
}

// keywordMessages counts the estate's messages the copy takes (at most
// the item limit) that carry a keyword Exchange does not keep.
func (r *exchangeRig) keywordMessages() int64 {
	var n int64
	for _, mb := range r.est.Mailboxes() {
		for _, f := range mb.Folders {
			for _, m := range f.Messages {
				if len(m.Raw) > exchangeItemLimit {
					continue
				}
				if slices.ContainsFunc(m.Flags, func(f imap.Flag) bool {
					return !strings.HasPrefix(string(f), `\`) && !strings.EqualFold(string(f), "$MDNSent")
				}) {
					n++
				}
			}
		}
	}
	return n
}

// secrets are what must never be in a history: the app's client secret,
// every token the authority issued, the source passwords, and what the
// messages say (Message-IDs, subjects, body lines).
func (r *exchangeRig) secrets() []string {
	out := append([]string{exchangeSecret}, r.auth.Tokens()...)
	for _, mb := range r.est.Mailboxes() {
		out = append(out, mb.Password)
	}
	return append(out, estateLines(r.est)...)
}

// requireNoSecretsInHistories scans the history of every workflow of the
// namespace, as the server stores it.
func requireNoSecretsInHistories(t *testing.T, ctx context.Context, c client.Client, secrets []string) int {
	t.Helper()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000})
	require.NoError(t, err)
	require.NotEmpty(t, resp.Executions)
	for _, e := range resp.Executions {
		h := fetchHistoryWith(t, ctx, c, e.Execution.WorkflowId, e.Execution.RunId)
		s := scanHistory(h, secrets)
		require.Empty(t, s.leaks, "history of %s", e.Execution.WorkflowId)
	}
	return len(resp.Executions)
}

// readCSV reads an organization's report from the local staging store.
func (r *exchangeRig) readCSV(t *testing.T, name string) [][]string {
	t.Helper()
	st, err := staging.NewLocal(r.cfg.Staging.Path)
	require.NoError(t, err)
	rc, _, err := st.Get(context.Background(), name)
	require.NoError(t, err, name)
	defer rc.Close()
	rows, err := csv.NewReader(rc).ReadAll()
	require.NoError(t, err, name)
	return rows
}

// TestExchangeOnlineTarget migrates two organizations, one English and one
// German, from Dovecot into a target that behaves like Exchange Online,
// through the production worker with an app-only token: keywords, the
// well-known folders, items over the size limit, throttling and MIME that
// comes back re-rendered. Every message is in the target once (checked
// independently of mailshift, by content); keywords are reported, not
// fatal; large items are staged; the throttled time is reported; each
// mailbox scores Perfect or Good with its reasons; and no history holds
// the secret, a token or what a message says.
func TestExchangeOnlineTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and starts an embedded Temporal server")
	}
	bin := buildWorker(t)
	german := map[string]bool{"EXD": true}
	spec := estate.Spec{Seed: 41, LargeItems: 3, LargeItemSize: exchangeItemLimit, Orgs: []estate.OrgSpec{
		{Code: "EXE", Name: "Exchange Trust", Mailboxes: 3, MeanMessages: 80},
		{Code: "EXD", Name: "Exchange Praxis", Mailboxes: 2, MeanMessages: 80},
	}}
	r := newExchangeRig(t, spec, german, 45, "sample")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, _ := embeddedServer(t, ctx)
	c := r.client(t, ctx, srv.FrontendAddr())
	start := time.Now()
	w := workerProcess(t, bin, srv.FrontendAddr(), r.cfgPath)()
	codes := r.start(t, ctx, c, german, 3, 0)
	ps, err := control.Watch(ctx, c, codes, 250*time.Millisecond, nil)
	require.NoError(t, err)
	took := time.Since(start)
	_ = w.Process.Signal(syscall.SIGTERM)
	_ = w.Wait()

	_, total, _ := r.est.Totals()
	keywords := r.keywordMessages()
	require.Positive(t, keywords)
	var staged, throttled int
	var throttledFor time.Duration
	var dropped int64
	for _, p := range ps {
		require.True(t, p.Validated(), "%s: %s %v %s", p.Organization, p.Phase, p.Failures, p.Reason)
		require.Zero(t, p.MailboxesFailed)
		require.Contains(t, []workflows.Consistency{workflows.Perfect, workflows.Good}, p.Consistency, "%s: %v", p.Organization, p.Findings)
		require.Equal(t, p.MailboxesDone, p.RulesFired["compared-by-content"], "every score says what it compared")
		staged += p.StagedCount
		throttled += p.Throttled
		throttledFor += p.ThrottledFor
		dropped += p.KeywordsDropped
		var keywordsCSV bool
		for _, name := range p.Reports {
			keywordsCSV = keywordsCSV || strings.HasSuffix(name, "keywords.csv")
		}
		require.True(t, keywordsCSV, "%s: reports %v", p.Organization, p.Reports)
	}
	require.Equal(t, keywords, dropped, "every message without its keywords is counted")
	require.Positive(t, throttled, "the target throttled")
	require.EqualValues(t, r.throttled.Load(), throttled, "every throttle the target answered was waited out and counted")
	require.GreaterOrEqual(t, throttledFor, time.Duration(throttled)*300*time.Millisecond)
	require.Equal(t, 3, staged, "items over the limit are staged")
	require.Zero(t, r.refused.Load(), "no token was refused")

	rep := r.verify(t, ctx)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, total, rep.Messages)
	require.Equal(t, 3, rep.ExpectedMissing)

	// The reports: each message that lost keywords, named; throttled time
	// per mailbox; the staged items.
	rows := 0
	for _, code := range codes {
		kw := r.readCSV(t, activities.KeywordsReportName(code))
		require.Equal(t, []string{"organization", "address", "folder", "uidvalidity", "uid", "target_folder", "target_uid", "keywords"}, kw[0])
		for _, row := range kw[1:] {
			require.NotEmpty(t, row[5])
			require.NotEmpty(t, row[7])
			require.NotContains(t, row[7], `\`)
			if german[code] && row[2] == "Sent" {
				require.Equal(t, "Gesendete Elemente", row[5])
			}
		}
		rows += len(kw) - 1
		mbCSV, skippedCSV, _ := activities.ReportObjectNames(code)
		mbs := r.readCSV(t, mbCSV)
		col := slices.Index(mbs[0], "throttled_s")
		cons := slices.Index(mbs[0], "consistency")
		rules := slices.Index(mbs[0], "rules")
		for _, row := range mbs[1:] {
			require.Contains(t, []string{"Perfect", "Good"}, row[cons], row)
			require.Contains(t, row[rules], "compared-by-content", row)
			_, err := strconv.ParseFloat(row[col], 64)
			require.NoError(t, err)
		}
		require.Len(t, r.readCSV(t, skippedCSV)[1:], countStaged(ps, code))
	}
	require.EqualValues(t, keywords, rows, "keywords.csv lists each message once")

	n := requireNoSecretsInHistories(t, ctx, c, r.secrets())
	t.Logf("%d messages in %d mailboxes in %s: %d without their keywords, %d staged, throttled %d times for %s; %d histories scanned",
		total, len(r.est.Mailboxes()), took.Round(time.Millisecond), dropped, staged, throttled, throttledFor, n)
}

func countStaged(ps []workflows.Progress, code string) int {
	for _, p := range ps {
		if p.Organization == code {
			return p.StagedCount
		}
	}
	return 0
}

// TestExchangeOnlineTargetWorkerKilled SIGKILLs the worker again and again
// while it copies into the re-rendering target, whose messages can be
// recognised only by Message-ID and INTERNALDATE (or Subject, From and
// Date): a size or a hash of bytes finds none of them. After a last worker
// finishes, every message is there once, by mailshift's validation at the
// full level and by the independent verification.
func TestExchangeOnlineTargetWorkerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and starts an embedded Temporal server")
	}
	bin := buildWorker(t)
	spec := estate.Spec{Seed: 43, LargeItems: -1, Orgs: []estate.OrgSpec{
		{Code: "EXK", Name: "Exchange Kill Trust", Mailboxes: 4, MeanMessages: 350},
	}}
	r := newExchangeRig(t, spec, nil, 0, "full")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	srv, _ := embeddedServer(t, ctx)
	c := r.client(t, ctx, srv.FrontendAddr())
	start := time.Now()
	codes := r.start(t, ctx, c, nil, 2, 2*time.Second)
	w, kills := killDuringTransfers(ctx, t, c, codes, workerProcess(t, bin, srv.FrontendAddr(), r.cfgPath), 4, 1200, func(k int) time.Duration {
		return time.Duration(40+50*k) * time.Millisecond
	})
	require.GreaterOrEqual(t, kills, 3, "the test must hit running transfers")
	ps, err := control.Watch(ctx, c, codes, 250*time.Millisecond, nil)
	require.NoError(t, err)
	_ = w.Process.Signal(syscall.SIGTERM)
	_ = w.Wait()
	p := ps[0]
	require.True(t, p.Validated(), "%s %v %s", p.Phase, p.Failures, p.Reason)
	// Good: keywords left out and large items staged, nothing else.
	require.Equal(t, workflows.Good, p.Consistency, "%v", p.Findings)
	for _, rule := range []string{workflows.RuleMissing, workflows.RuleDuplicates, workflows.RuleAltered, workflows.RuleBadItems, workflows.RuleFlags, workflows.RuleDates} {
		require.Zero(t, p.RulesFired[rule], "%s: %v", rule, p.Findings)
	}
	require.Equal(t, p.MailboxesDone, p.RulesFired[workflows.RuleCompared])

	rep := r.verify(t, ctx)
	require.True(t, rep.OK(), rep.String())
	_, total, _ := r.est.Totals()
	require.Equal(t, total, rep.Messages)
	t.Logf("worker killed %d times; %d messages (%d over the limit, staged) in %d mailboxes: 0 missing, 0 duplicated (validation at full and the independent check), in %s",
		kills, total, rep.ExpectedMissing, len(r.est.Mailboxes()), time.Since(start).Round(time.Millisecond))

	d, err := c.DescribeWorkflowExecution(ctx, workflows.OrganizationWorkflowID("EXK"), "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.GetWorkflowExecutionInfo().GetStatus())
	requireNoSecretsInHistories(t, ctx, c, r.secrets())
}
