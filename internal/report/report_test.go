package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/report"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

const org = "RXH"

var t0 = time.Date(2025, 3, 1, 22, 0, 0, 0, time.UTC)

func newStore(t *testing.T) *staging.Local {
	t.Helper()
	st, err := staging.NewLocal(t.TempDir())
	require.NoError(t, err)
	return st
}

func put(t *testing.T, st staging.Store, name string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	_, err = st.Put(context.Background(), name, bytes.NewReader(b), map[string]string{"kind": "ledger"})
	require.NoError(t, err)
}

// pass is a pass report as activities.TransferMailbox saves it.
func pass(t *testing.T, st staging.Store, mailbox, name string, copied, bytes int64, start time.Time, took time.Duration) {
	t.Helper()
	put(t, st, staging.ReportName(org, mailbox, name), map[string]any{
		"folders": 3, "copied": copied, "bytes": bytes, "matched": 0, "bodies_read": copied,
		"source_messages": 120, "reconciled_folders": 0, "skipped_total": 2, "resumed": false,
		"ledger": staging.LedgerName(org, mailbox), "started": start, "finished": start.Add(took),
	})
}

func ledger(t *testing.T, st staging.Store, mailbox string, skipped ...transfer.SkippedItem) {
	t.Helper()
	put(t, st, staging.LedgerName(org, mailbox), transfer.Checkpoint{
		Folders: []transfer.FolderState{
			{Source: "INBOX", Target: "INBOX", UIDValidity: 7, LastUID: 90, Copied: 80, Matched: 5, Bytes: 800_000},
			{Source: "Sent", Target: "Sent Items", UIDValidity: 8, LastUID: 40, Copied: 30, Bytes: 300_000},
		},
		Skipped: skipped,
	})
}

func validation(t *testing.T, st staging.Store, mailbox string, f transfer.FolderCheck, problems ...string) {
	t.Helper()
	put(t, st, staging.ReportName(org, mailbox, "validation"), transfer.Validation{
		Folders:  []transfer.FolderCheck{f, {Source: "Sent", Target: "Sent Items", SourceMessages: 30, TargetMessages: 30}},
		Messages: 110, Bytes: 1_100_000, Problems: problems,
	})
}

var (
	large = transfer.SkippedItem{Folder: "INBOX", UIDValidity: 7, UID: 12, Size: 5 << 20, MessageID: "<big@x>",
		Reason: transfer.ReasonTooLarge, StagedAs: staging.ItemName(org, "a@rxh", "INBOX", 7, 12), Date: "2024-05-01T10:00:00+01:00"}
	bad = transfer.SkippedItem{Folder: "=HYPERLINK(\"x\")", UIDValidity: 7, UID: 13, Size: 900, MessageID: "-odd@x",
		Reason: transfer.ReasonRejected, Detail: "NO [CANNOT] refused, \"quoted\""}
	imported = transfer.SkippedItem{Folder: "INBOX", UIDValidity: 7, UID: 14, Size: 4 << 20,
		Reason: transfer.ReasonTooLarge, StagedAs: "RXH/a@rxh/INBOX/7/14.eml", Imported: true, ImportedUID: 99}
)

// fixture stores one mailbox in every state.
func fixture(t *testing.T, st staging.Store) []string {
	// Validated with a staged large item, a rejected one and an imported one.
	ledger(t, st, "a@rxh", large, bad, imported)
	pass(t, st, "a@rxh", "prestage", 100, 1_000_000, t0, 90*time.Second)
	pass(t, st, "a@rxh", "delta", 5, 50_000, t0.Add(24*time.Hour), 1500*time.Millisecond)
	pass(t, st, "a@rxh", "final", 5, 50_000, t0.Add(48*time.Hour), 2*time.Second)
	validation(t, st, "a@rxh", transfer.FolderCheck{Source: "INBOX", Target: "INBOX", SourceMessages: 82, TargetMessages: 81, Skipped: 2, Extra: 1})
	// Validated, nothing skipped.
	ledger(t, st, "clean@rxh")
	pass(t, st, "clean@rxh", "final", 110, 1_100_000, t0, time.Minute)
	validation(t, st, "clean@rxh", transfer.FolderCheck{Source: "INBOX", Target: "INBOX", SourceMessages: 80, TargetMessages: 80})
	// Validation found messages missing.
	ledger(t, st, "lost@rxh")
	pass(t, st, "lost@rxh", "final", 110, 1_100_000, t0, time.Minute)
	validation(t, st, "lost@rxh", transfer.FolderCheck{Source: "INBOX", Target: "INBOX", SourceMessages: 80, TargetMessages: 78, Missing: 2})
	// Pre-staged only; final only; a ledger only.
	ledger(t, st, "pre@rxh")
	pass(t, st, "pre@rxh", "prestage", 110, 1_100_000, t0, time.Minute)
	ledger(t, st, "fin@rxh")
	pass(t, st, "fin@rxh", "final", 110, 1_100_000, t0, time.Minute)
	ledger(t, st, "busy@rxh")
	return []string{"a@rxh", "clean@rxh", "lost@rxh", "pre@rxh", "fin@rxh", "busy@rxh", "never@rxh"}
}

func byAddress(rs []report.MailboxReport) map[string]report.MailboxReport {
	m := map[string]report.MailboxReport{}
	for _, r := range rs {
		m[r.Address] = r
	}
	return m
}

func TestBuild(t *testing.T) {
	st := newStore(t)
	mailboxes := fixture(t, st)
	rs, err := report.Build(context.Background(), st, org, mailboxes)
	require.NoError(t, err)
	require.Len(t, rs, len(mailboxes))
	for i, r := range rs {
		require.Equal(t, mailboxes[i], r.Address, "input order")
		require.Equal(t, org, r.Organization)
	}
	m := byAddress(rs)
	states := map[string]report.State{}
	for a, r := range m {
		states[a] = r.State
	}
	require.Equal(t, map[string]report.State{
		"a@rxh": report.CompletedWithWarnings, "clean@rxh": report.Completed, "lost@rxh": report.Failed,
		"pre@rxh": report.Synced, "fin@rxh": report.AwaitingValidation, "busy@rxh": report.InProgress,
		"never@rxh": report.NotStarted,
	}, states)

	a := m["a@rxh"]
	require.Equal(t, []string{"prestage", "delta", "final"}, passNames(a))
	require.Equal(t, 90.0, a.Passes[0].DurationSeconds)
	require.Equal(t, 1.5, a.Passes[1].DurationSeconds)
	require.Equal(t, int64(5), a.Passes[2].Copied)
	require.Equal(t, 93.5, a.DurationSeconds)
	require.Equal(t, t0, a.Started)
	require.Equal(t, t0.Add(48*time.Hour+2*time.Second), a.Finished)
	require.Equal(t, 2, a.Folders)
	require.Equal(t, int64(110), a.Copied)
	require.Equal(t, int64(1_100_000), a.CopiedBytes)
	require.Equal(t, int64(5), a.Matched)
	require.Equal(t, 1, a.Imported)
	require.Equal(t, int64(4<<20), a.ImportedBytes)
	require.Equal(t, 2, a.Skipped, "the imported item is in the target")
	require.Equal(t, map[string]int{"too-large": 1, "rejected": 1}, a.SkippedByReason)
	require.Equal(t, 1, a.Staged)
	require.Equal(t, []transfer.SkippedItem{large, bad, imported}, a.SkippedItems)
	require.NotNil(t, a.Validation)
	require.Equal(t, report.Validation{OK: true, Folders: 2, Messages: 110, Bytes: 1_100_000, TargetMessages: 111, Skipped: 2, Extra: 1}, *a.Validation)
	require.Equal(t, int64(110), a.TargetMessages, "as validated")
	require.Equal(t, int64(120), a.SourceMessages)
	require.Empty(t, a.LastError)

	lost := m["lost@rxh"]
	require.Equal(t, 2, lost.Validation.Missing)
	require.False(t, lost.Validation.OK)
	require.Equal(t, int64(108), lost.TargetMessages)
	require.Equal(t, "validation: 2 messages missing", lost.LastError)

	pre := m["pre@rxh"]
	require.Nil(t, pre.Validation)
	require.Equal(t, int64(115), pre.TargetMessages, "copied+matched from the ledger")
	require.Equal(t, int64(1_100_000), pre.TargetBytes)

	never := m["never@rxh"]
	require.Equal(t, report.MailboxReport{Organization: org, Address: "never@rxh", State: report.NotStarted}, never)
}

func passNames(r report.MailboxReport) []string {
	var out []string
	for _, p := range r.Passes {
		out = append(out, p.Pass)
	}
	return out
}

func TestValidationProblemFails(t *testing.T) {
	st := newStore(t)
	ledger(t, st, "p@rxh")
	validation(t, st, "p@rxh", transfer.FolderCheck{Source: "INBOX", Target: "INBOX"}, `target folder "Old" (from "Old") does not exist`)
	rs, err := report.Build(context.Background(), st, org, []string{"p@rxh"})
	require.NoError(t, err)
	require.Equal(t, report.Failed, rs[0].State)
	require.Equal(t, `validation: target folder "Old" (from "Old") does not exist`, rs[0].LastError)
}

func TestPassWithoutTimes(t *testing.T) {
	// Reports written before passes recorded their times still count.
	st := newStore(t)
	put(t, st, staging.ReportName(org, "old@rxh", "prestage"), map[string]any{"copied": 3, "bytes": 30})
	rs, err := report.Build(context.Background(), st, org, []string{"old@rxh"})
	require.NoError(t, err)
	require.Equal(t, report.Synced, rs[0].State)
	require.Zero(t, rs[0].DurationSeconds)
	require.True(t, rs[0].Started.IsZero())
	require.Equal(t, int64(3), rs[0].Passes[0].Copied)
}

func TestUnreadableObjectsAreNoted(t *testing.T) {
	st := newStore(t)
	ledger(t, st, "c@rxh")
	pass(t, st, "c@rxh", "prestage", 1, 1, t0, time.Second)
	// A torn write: the bytes no longer match the recorded hash.
	p := filepath.Join(st.Root(), filepath.FromSlash(staging.ReportName(org, "c@rxh", "prestage")))
	require.NoError(t, os.WriteFile(p, []byte(`{"copied": 999}`), 0o600))
	// Valid content that is not JSON.
	_, err := st.Put(context.Background(), staging.ReportName(org, "c@rxh", "validation"), strings.NewReader("not json"), nil)
	require.NoError(t, err)

	rs, err := report.Build(context.Background(), st, org, []string{"c@rxh"})
	require.NoError(t, err)
	r := rs[0]
	require.Equal(t, report.InProgress, r.State)
	require.Empty(t, r.Passes)
	require.Nil(t, r.Validation)
	require.Len(t, r.Notes, 2)
	require.Contains(t, r.Notes[0], "report-prestage.json")
	require.Contains(t, r.Notes[1], "report-validation.json: not readable")
}

// countingStore counts concurrent Gets and can fail them.
type countingStore struct {
	staging.Store
	in, max atomic.Int32
	fail    string
}

func (c *countingStore) Get(ctx context.Context, name string) (io.ReadCloser, staging.Object, error) {
	n := c.in.Add(1)
	defer c.in.Add(-1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(time.Millisecond) // let readers overlap
	if c.fail != "" && strings.Contains(name, c.fail) {
		return nil, staging.Object{}, fmt.Errorf("HTTP 503: %w", errors.New("server busy"))
	}
	return c.Store.Get(ctx, name)
}

func TestEachOrderAndBound(t *testing.T) {
	st := newStore(t)
	var mailboxes []string
	for i := range 60 {
		mb := fmt.Sprintf("u%02d@rxh", i)
		mailboxes = append(mailboxes, mb)
		if i%3 == 0 {
			pass(t, st, mb, "prestage", int64(i), int64(i*100), t0, time.Second)
		}
	}
	cs := &countingStore{Store: st}
	var got []string
	err := report.Options{Concurrency: 4}.Each(context.Background(), cs, org, mailboxes, func(r *report.MailboxReport) error {
		got = append(got, r.Address)
		var i int
		fmt.Sscanf(r.Address, "u%02d@rxh", &i)
		if want := i%3 == 0; want != (r.State == report.Synced) {
			return fmt.Errorf("%s: state %s", r.Address, r.State)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, mailboxes, got)
	require.LessOrEqual(t, cs.max.Load(), int32(4))
	require.Greater(t, cs.max.Load(), int32(1), "mailboxes are read concurrently")
	require.Zero(t, cs.in.Load())

	// fn's error stops the walk and comes back as is.
	stop := errors.New("stop")
	n := 0
	err = report.Each(context.Background(), cs, org, mailboxes, func(*report.MailboxReport) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 5, n)
	require.Zero(t, cs.in.Load(), "no reader left running")

	// A store failure other than "not found" is an error, not NotStarted.
	cs.fail = "u07@rxh"
	_, err = report.Build(context.Background(), cs, org, mailboxes)
	require.ErrorContains(t, err, "u07@rxh")
	require.ErrorContains(t, err, "server busy")

	// A cancelled context ends the walk with its error.
	cs.fail = ""
	ctx, cancel := context.WithCancel(context.Background())
	err = report.Each(ctx, cs, org, mailboxes, func(r *report.MailboxReport) error {
		if r.Address == "u10@rxh" {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
}

func TestScoreOnlyValidated(t *testing.T) {
	st := newStore(t)
	mailboxes := fixture(t, st)
	var mu sync.Mutex
	var scored []string
	o := report.Options{Score: func(r *report.MailboxReport) (string, []string) {
		mu.Lock()
		defer mu.Unlock()
		scored = append(scored, r.Address)
		if r.Validation.Missing > 0 {
			return "Poor", []string{"missing"}
		}
		return "Good", []string{"staged-large-items"}
	}}
	rs, err := o.Build(context.Background(), st, org, mailboxes)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a@rxh", "clean@rxh", "lost@rxh"}, scored)
	m := byAddress(rs)
	require.Equal(t, "Poor", m["lost@rxh"].Consistency)
	require.Equal(t, []string{"missing"}, m["lost@rxh"].Rules)
	require.Empty(t, m["pre@rxh"].Consistency)
}

func TestWriteCSV(t *testing.T) {
	st := newStore(t)
	rs, err := report.Build(context.Background(), st, org, fixture(t, st))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, report.WriteCSV(&buf, rs))
	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+len(rs))
	require.Equal(t, report.Columns, rows[0])
	col := func(row []string, name string) string {
		for i, c := range report.Columns {
			if c == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	a := rows[1]
	for name, want := range map[string]string{
		"address": "a@rxh", "state": "CompletedWithWarnings", "passes": "prestage;delta;final",
		"started": "2025-03-01T22:00:00Z", "finished": "2025-03-03T22:00:02Z", "duration_s": "93.5",
		"copied": "110", "copied_bytes": "1100000", "imported": "1", "target_messages": "110",
		"skipped": "2", "skipped_by_reason": "rejected=1;too-large=1", "staged": "1",
		"validation": "ok", "missing": "0", "extra": "1",
		"prestage_copied": "100", "prestage_duration_s": "90", "delta_duration_s": "1.5",
		"final_finished": "2025-03-03T22:00:02Z", "post_switch_copied": "", "last_error": "",
	} {
		require.Equal(t, want, col(a, name), name)
	}
	never := rows[len(rows)-1]
	require.Equal(t, "NotStarted", col(never, "state"))
	require.Equal(t, "", col(never, "validation"))
	require.Equal(t, "", col(never, "missing"), "not validated is not zero missing")
	require.Equal(t, "validation: 2 messages missing", col(rows[3], "last_error"))

	// The skipped items, one row each, with free text made inert for spreadsheets.
	buf.Reset()
	require.NoError(t, report.WriteSkippedCSV(&buf, rs))
	rows, err = csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Equal(t, report.SkippedColumns, rows[0])
	require.Equal(t, [][]string{
		{"RXH", "a@rxh", "INBOX", "7", "12", "5242880", "<big@x>", "2024-05-01T10:00:00+01:00", "too-large", "", "RXH/a@rxh/INBOX/7/12.eml", "false"},
		{"RXH", "a@rxh", `'=HYPERLINK("x")`, "7", "13", "900", "'-odd@x", "", "rejected", `NO [CANNOT] refused, "quoted"`, "", "false"},
		{"RXH", "a@rxh", "INBOX", "7", "14", "4194304", "", "", "too-large", "", "RXH/a@rxh/INBOX/7/14.eml", "true"},
	}, rows[1:])

	// Empty reports still have a header.
	buf.Reset()
	require.NoError(t, report.WriteSkippedCSV(&buf, nil))
	require.Equal(t, strings.Join(report.SkippedColumns, ",")+"\n", buf.String())
}

func TestWriteJSON(t *testing.T) {
	st := newStore(t)
	rs, err := report.Build(context.Background(), st, org, fixture(t, st))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, report.WriteJSON(&buf, rs))
	require.Equal(t, len(rs)+2, strings.Count(buf.String(), "\n"), "one mailbox per line")
	var back []report.MailboxReport
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	require.Equal(t, rs, back)
	require.Contains(t, buf.String(), `"skipped_by_reason":{"rejected":1,"too-large":1}`)
	require.Contains(t, buf.String(), `"folder":"=HYPERLINK(\"x\")"`, "JSON keeps text as it is")

	buf.Reset()
	w := report.NewSkippedJSONWriter(&buf)
	for i := range rs {
		require.NoError(t, w.Write(&rs[i]))
	}
	require.NoError(t, w.Close())
	var items []report.SkippedRecord
	require.NoError(t, json.Unmarshal(buf.Bytes(), &items))
	require.Len(t, items, 3)
	require.Equal(t, "a@rxh", items[0].Address)
	require.Equal(t, large, items[0].SkippedItem)

	buf.Reset()
	require.NoError(t, report.WriteJSON(&buf, nil))
	require.Equal(t, "[]\n", buf.String())
}

func TestDiscover(t *testing.T) {
	st := newStore(t)
	fixture(t, st)
	ctx := context.Background()
	// Staged items, archives and other organizations are not mailboxes of their own.
	_, err := st.Put(ctx, staging.ItemName(org, "a@rxh", "INBOX/Sub folder", 7, 12), strings.NewReader("x"), nil)
	require.NoError(t, err)
	_, err = st.Put(ctx, staging.Name(org, "odd/name@rxh", "ledger.json"), strings.NewReader("{}"), nil)
	require.NoError(t, err)
	_, err = st.Put(ctx, staging.Name(org+"X", "other@rxh", "ledger.json"), strings.NewReader("{}"), nil)
	require.NoError(t, err)
	got, err := report.Discover(ctx, st, org)
	require.NoError(t, err)
	require.Equal(t, []string{"a@rxh", "busy@rxh", "clean@rxh", "fin@rxh", "lost@rxh", "odd/name@rxh", "pre@rxh"}, got)
}

// Issue #13: a mailbox whose final pass failed showed Synced with no
// error, and validated mailboxes had no consistency unless the caller
// passed a scorer (the staged mailboxes.csv never did).
func TestFailedPassAndDefaultScore(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	ledger(t, st, "auth@rxh")
	pass(t, st, "auth@rxh", "prestage", 110, 1_100_000, t0, time.Minute)
	put(t, st, staging.ReportName(org, "auth@rxh", report.FailurePass), report.Failure{Pass: "final", Error: "AuthFailed: login refused", At: t0.Add(time.Hour)})
	// A failure that a later pass overcame.
	ledger(t, st, "over@rxh")
	put(t, st, staging.ReportName(org, "over@rxh", report.FailurePass), report.Failure{Pass: "prestage", Error: "connection reset", At: t0})
	pass(t, st, "over@rxh", "prestage", 110, 1_100_000, t0, time.Minute)
	ledger(t, st, "clean@rxh")
	pass(t, st, "clean@rxh", "final", 110, 1_100_000, t0, time.Minute)
	validation(t, st, "clean@rxh", transfer.FolderCheck{Source: "INBOX", Target: "INBOX", SourceMessages: 80, TargetMessages: 80})

	rs, err := report.Build(ctx, st, org, []string{"auth@rxh", "over@rxh", "clean@rxh"})
	require.NoError(t, err)
	require.Equal(t, report.Failed, rs[0].State)
	require.Equal(t, "final: AuthFailed: login refused", rs[0].LastError)
	require.Equal(t, report.Synced, rs[1].State)
	require.Empty(t, rs[1].LastError)
	require.Equal(t, "Perfect", rs[2].Consistency, "scored with the workflows' rules by default")

	// The workflow's verdicts win over what the store shows.
	r := rs[1]
	r.Apply(report.Outcome{Status: "failed", Pass: "readiness", Error: "not ready: login"})
	require.Equal(t, report.Failed, r.State)
	require.Equal(t, "readiness: not ready: login", r.LastError)
	r = rs[2]
	r.Apply(report.Outcome{Status: "validated"})
	require.Equal(t, report.Completed, r.State)
	r.Apply(report.Outcome{Status: "skipped"})
	require.Equal(t, report.Skipped, r.State)
}
