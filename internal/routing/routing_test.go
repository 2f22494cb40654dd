package routing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/routing"
)

const (
	nexthop = "smtp:[cloud.example]:25"
	org     = "RXH"
	prev    = "transport" + routing.PrevSuffix
)

const existing = `# Postfix transport map, maintained by hand and by mailshift.
# Do not remove the comments.

legacy@old.example   smtp:[legacy.example]:25
carol@rxh.nhs.example	smtp:[onprem.example]:25

example.org  relay:[gw.example]
`

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// onlyFiles asserts the directory holds exactly the given files.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	require.ElementsMatch(t, names, got, "no temporary file may be left behind")
}

func TestFileSwitchAndRevert(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	require.NoError(t, os.WriteFile(path, []byte(existing), 0o644))
	f := &routing.File{Path: path, Nexthop: nexthop}
	require.Equal(t, "file:"+path, f.Describe())

	// Switch: new addresses appended in order, an existing entry for one of
	// them repointed (case-insensitively), everything else kept verbatim.
	n, err := f.Switch(ctx, org, []string{"bob@rxh.nhs.example", "Carol@RXH.nhs.example", "alice@rxh.nhs.example", "bob@rxh.nhs.example"})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	want := `# Postfix transport map, maintained by hand and by mailshift.
# Do not remove the comments.

legacy@old.example   smtp:[legacy.example]:25
carol@rxh.nhs.example ` + nexthop + `

example.org  relay:[gw.example]
alice@rxh.nhs.example ` + nexthop + `
bob@rxh.nhs.example ` + nexthop + `
`
	require.Equal(t, want, read(t, path))
	onlyFiles(t, dir, "transport", prev)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "postmap must be able to read it")

	entries, err := f.Entries()
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"legacy@old.example":    "smtp:[legacy.example]:25",
		"carol@rxh.nhs.example": nexthop,
		"example.org":           "relay:[gw.example]",
		"alice@rxh.nhs.example": nexthop,
		"bob@rxh.nhs.example":   nexthop,
	}, entries)

	// Idempotent: nothing changes, the file is not even rewritten.
	before, err := os.Stat(path)
	require.NoError(t, err)
	n, err = f.Switch(ctx, org, []string{"alice@rxh.nhs.example", "BOB@rxh.nhs.example", "carol@rxh.nhs.example"})
	require.NoError(t, err)
	require.Zero(t, n)
	after, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "a no-op Switch must not replace the file")
	require.Equal(t, want, read(t, path))

	// Revert puts back what each address had: carol her old line, alice
	// none; nobody was never switched.
	n, err = f.Revert(ctx, org, []string{"alice@rxh.nhs.example", "Carol@rxh.nhs.example", "nobody@rxh.nhs.example"})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, `# Postfix transport map, maintained by hand and by mailshift.
# Do not remove the comments.

legacy@old.example   smtp:[legacy.example]:25
carol@rxh.nhs.example	smtp:[onprem.example]:25

example.org  relay:[gw.example]
bob@rxh.nhs.example `+nexthop+`
`, read(t, path))
	n, err = f.Revert(ctx, org, []string{"alice@rxh.nhs.example"})
	require.NoError(t, err)
	require.Zero(t, n, "Revert is idempotent too")
	onlyFiles(t, dir, "transport", prev)

	// Once the last switched address is reverted the map is as it was.
	n, err = f.Revert(ctx, org, []string{"bob@rxh.nhs.example"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, existing, read(t, path))
	onlyFiles(t, dir, "transport")
}

// The file is replaced by rename: a reader that opened the old file reads
// it whole, never a half-written new one.
func TestFileReplacedAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	var lines []string
	for i := range 2000 {
		lines = append(lines, fmt.Sprintf("user%04d@old.example smtp:[old.example]:25", i))
	}
	old := strings.Join(lines, "\n") + "\n"
	require.NoError(t, os.WriteFile(path, []byte(old), 0o644))
	before, err := os.Stat(path)
	require.NoError(t, err)
	reader, err := os.Open(path)
	require.NoError(t, err)
	defer reader.Close()

	f := &routing.File{Path: path, Nexthop: nexthop}
	n, err := f.Switch(context.Background(), org, []string{"new@rxh.nhs.example"})
	require.NoError(t, err)
	require.Equal(t, 1, n)

	after, err := os.Stat(path)
	require.NoError(t, err)
	require.False(t, os.SameFile(before, after), "a new file is renamed into place")
	got, err := io.ReadAll(reader)
	require.NoError(t, err)
	require.Equal(t, old, string(got), "the old file stays intact for its readers")
	require.Equal(t, old+"new@rxh.nhs.example "+nexthop+"\n", read(t, path))
	onlyFiles(t, dir, "transport", prev)
}

func TestFileMissing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "postfix", "transport")
	f := &routing.File{Path: path, Nexthop: nexthop}

	n, err := f.Revert(ctx, org, []string{"a@x.example"})
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "a no-op Revert creates nothing")

	n, err = f.Switch(ctx, org, []string{"a@x.example"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, "a@x.example "+nexthop+"\n", read(t, path))
	onlyFiles(t, filepath.Dir(path), "transport", prev)
}

func TestFileRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	require.NoError(t, os.WriteFile(path, []byte(existing), 0o644))

	for _, nh := range []string{"", "smtp:[a] 25"} {
		f := &routing.File{Path: path, Nexthop: nh}
		_, err := f.Switch(ctx, org, []string{"a@x.example"})
		require.ErrorContains(t, err, "nexthop", "nexthop %q", nh)
	}
	f := &routing.File{Path: path, Nexthop: nexthop}
	for _, addr := range []string{"", "a b@x.example", "a@x.example\nevil@x.example smtp:[evil]", "#a@x.example"} {
		_, err := f.Switch(ctx, org, []string{"ok@x.example", addr})
		require.ErrorContains(t, err, "invalid address", "address %q", addr)
		_, err = f.Revert(ctx, org, []string{addr})
		require.ErrorContains(t, err, "invalid address", "address %q", addr)
	}
	require.Equal(t, existing, read(t, path), "a refused edit changes nothing")
	onlyFiles(t, dir, "transport")
}

// A failed replacement leaves neither a changed map nor a temporary file.
func TestFileFailedRenameLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	require.NoError(t, os.MkdirAll(filepath.Join(path, "occupied"), 0o755)) // a non-empty directory cannot be renamed over
	f := &routing.File{Path: path, Nexthop: nexthop}
	_, err := f.Switch(context.Background(), org, []string{"a@x.example"})
	require.Error(t, err)
	onlyFiles(t, dir, "transport")
}

func TestFileConcurrentSwitches(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	f := &routing.File{Path: path, Nexthop: nexthop}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Switch(context.Background(), org, []string{fmt.Sprintf("u%02d@x.example", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	entries, err := f.Entries()
	require.NoError(t, err)
	require.Len(t, entries, 20, "no update may be lost")
	onlyFiles(t, dir, "transport", prev)
}

func TestNone(t *testing.T) {
	var r routing.Router = routing.None{}
	n, err := r.Switch(context.Background(), org, []string{"a@x.example"})
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = r.Revert(context.Background(), org, []string{"a@x.example"})
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, "none", r.Describe())
}

// A map with routes mailshift must give back: some addresses have their own
// line (one of them twice), others none; comments, blank lines and other
// routes sit between them.
const handMade = `# transport map for the trust
alice@rxh.nhs.example	relay:[old-exchange]

# the lab
dup@rxh.nhs.example  smtp:[a.example]
lab.example     relay:[lab-gw]
  dup@RXH.nhs.example smtp:[b.example]
ALICE2@rxh.nhs.example    smtp:[cloud.example]:25
rxh.nhs.example relay:[old-exchange]
`

var cutover = []string{"alice@rxh.nhs.example", "new1@rxh.nhs.example", "dup@rxh.nhs.example", "Alice2@rxh.nhs.example", "new2@rxh.nhs.example"}

func TestFileRevertRestoresOriginalExactly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	require.NoError(t, os.WriteFile(path, []byte(handMade), 0o644))
	f := &routing.File{Path: path, Nexthop: nexthop}

	n, err := f.Switch(ctx, org, cutover)
	require.NoError(t, err)
	require.Equal(t, 5, n, "alice, both dup lines, new1, new2 (alice2 already points there)")
	require.Equal(t, `# transport map for the trust
alice@rxh.nhs.example `+nexthop+`

# the lab
dup@rxh.nhs.example `+nexthop+`
lab.example     relay:[lab-gw]
dup@rxh.nhs.example `+nexthop+`
ALICE2@rxh.nhs.example    smtp:[cloud.example]:25
rxh.nhs.example relay:[old-exchange]
new1@rxh.nhs.example `+nexthop+`
new2@rxh.nhs.example `+nexthop+`
`, read(t, path))
	sidecar := read(t, path+routing.PrevSuffix)
	require.Contains(t, sidecar, "alice@rxh.nhs.example = alice@rxh.nhs.example\trelay:[old-exchange]\n")
	require.Contains(t, sidecar, "new1@rxh.nhs.example -\n")

	// A second Switch changes nothing, not even the remembered lines.
	n, err = f.Switch(ctx, org, cutover)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, sidecar, read(t, path+routing.PrevSuffix))

	n, err = f.Revert(ctx, org, cutover)
	require.NoError(t, err)
	require.Equal(t, 4, n, "alice, dup, new1, new2")
	require.Equal(t, handMade, read(t, path), "byte for byte")
	onlyFiles(t, dir, "transport")

	before, err := os.Stat(path)
	require.NoError(t, err)
	n, err = f.Revert(ctx, org, cutover)
	require.NoError(t, err)
	require.Zero(t, n, "Revert is idempotent")
	after, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "a no-op Revert must not replace the file")
	require.Equal(t, handMade, read(t, path))
	onlyFiles(t, dir, "transport")
}

// Switching again, even to another nexthop, keeps the line from before
// mailshift's first switch.
func TestFileSwitchKeepsTheFirstOriginal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	require.NoError(t, os.WriteFile(path, []byte(handMade), 0o644))
	first := &routing.File{Path: path, Nexthop: nexthop}
	_, err := first.Switch(ctx, org, []string{"alice@rxh.nhs.example", "new1@rxh.nhs.example"})
	require.NoError(t, err)
	second := &routing.File{Path: path, Nexthop: "smtp:[cloud2.example]:25"}
	n, err := second.Switch(ctx, org, cutover)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	sidecar := read(t, path+routing.PrevSuffix)
	require.Contains(t, sidecar, "alice@rxh.nhs.example = alice@rxh.nhs.example\trelay:[old-exchange]\n",
		"mailshift's own nexthop is never remembered as an original")
	require.Contains(t, sidecar, "new1@rxh.nhs.example -\n")

	n, err = second.Revert(ctx, org, cutover)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	require.Equal(t, handMade, read(t, path))
	onlyFiles(t, dir, "transport")
}

func TestFileRevertOfUnswitchedChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	require.NoError(t, os.WriteFile(path, []byte(handMade), 0o644))
	f := &routing.File{Path: path, Nexthop: nexthop}
	before, err := os.Stat(path)
	require.NoError(t, err)

	// Lines mailshift did not write stay, even one with mailshift's nexthop.
	n, err := f.Revert(ctx, org, cutover)
	require.NoError(t, err)
	require.Zero(t, n)
	after, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after))
	require.Equal(t, handMade, read(t, path))
	onlyFiles(t, dir, "transport")

	// Nor do other addresses' remembered lines change.
	_, err = f.Switch(ctx, org, []string{"alice@rxh.nhs.example"})
	require.NoError(t, err)
	sidecar := read(t, path+routing.PrevSuffix)
	switched := read(t, path)
	n, err = f.Revert(ctx, org, []string{"dup@rxh.nhs.example", "new1@rxh.nhs.example"})
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, switched, read(t, path))
	require.Equal(t, sidecar, read(t, path+routing.PrevSuffix))
}

// The originals are written before the map and forgotten after it, so a
// crash between the two writes loses nothing.
func TestFileCrashBetweenWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	require.NoError(t, os.WriteFile(path, []byte(handMade), 0o644))
	f := &routing.File{Path: path, Nexthop: nexthop}

	// Crash in Switch: originals remembered, map not yet written.
	_, err := f.Switch(ctx, org, cutover)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(handMade), 0o644))
	// The activity retries: the remembered lines are the true originals.
	n, err := f.Switch(ctx, org, cutover)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	require.Contains(t, read(t, path+routing.PrevSuffix), "alice@rxh.nhs.example = alice@rxh.nhs.example\trelay:[old-exchange]\n")
	switched := read(t, path)

	// Crash in Revert: map restored, originals not yet forgotten.
	sidecar := read(t, path+routing.PrevSuffix)
	_, err = f.Revert(ctx, org, cutover)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path+routing.PrevSuffix, []byte(sidecar), 0o644))
	n, err = f.Revert(ctx, org, cutover)
	require.NoError(t, err)
	require.Zero(t, n, "the retry finds the map already restored")
	require.Equal(t, handMade, read(t, path))
	onlyFiles(t, dir, "transport")

	// A crash before the map was ever written, then a rollback instead of
	// a retry: nothing to change, nothing left behind.
	_, err = f.Switch(ctx, org, cutover)
	require.NoError(t, err)
	require.Equal(t, switched, read(t, path))
	require.NoError(t, os.WriteFile(path, []byte(handMade), 0o644))
	n, err = f.Revert(ctx, org, cutover)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, handMade, read(t, path))
	onlyFiles(t, dir, "transport")
}

// Lines removed by hand since the switch come back; a corrupt record of
// originals stops both directions rather than losing a route.
func TestFileRevertEdgeCases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	require.NoError(t, os.WriteFile(path, []byte(handMade), 0o644))
	f := &routing.File{Path: path, Nexthop: nexthop}
	_, err := f.Switch(ctx, org, []string{"alice@rxh.nhs.example"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte("lab.example relay:[lab-gw]\n"), 0o644))
	n, err := f.Revert(ctx, org, []string{"alice@rxh.nhs.example"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, "lab.example relay:[lab-gw]\nalice@rxh.nhs.example\trelay:[old-exchange]\n", read(t, path))

	for _, bad := range []string{
		"alice@rxh.nhs.example relay:[old-exchange]\n",
		"alice@rxh.nhs.example = bob@rxh.nhs.example relay:[x]\n",
		"alice@rxh.nhs.example -\nalice@rxh.nhs.example -\n",
	} {
		require.NoError(t, os.WriteFile(path+routing.PrevSuffix, []byte(bad), 0o644))
		before := read(t, path)
		_, err = f.Switch(ctx, org, []string{"alice@rxh.nhs.example"})
		require.ErrorContains(t, err, routing.PrevSuffix+": line ")
		_, err = f.Revert(ctx, org, []string{"alice@rxh.nhs.example"})
		require.ErrorContains(t, err, routing.PrevSuffix+": line ")
		require.Equal(t, before, read(t, path))
	}
}

// A map that did not exist comes back empty: no line for anyone.
func TestFileConcurrentSwitchesThenRevert(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	f := &routing.File{Path: path, Nexthop: nexthop}
	var addrs []string
	var wg sync.WaitGroup
	for i := range 20 {
		a := fmt.Sprintf("u%02d@x.example", i)
		addrs = append(addrs, a)
		wg.Go(func() {
			_, err := f.Switch(ctx, org, []string{a})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	n, err := f.Revert(ctx, org, addrs)
	require.NoError(t, err)
	require.Equal(t, 20, n, "every original was remembered")
	require.Empty(t, read(t, path))
	onlyFiles(t, dir, "transport")
}

func TestFileInvalidInputIsPermanent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "transport")
	_, err := (&routing.File{Path: path}).Switch(context.Background(), org, []string{"a@x.example"})
	require.ErrorIs(t, err, routing.ErrPermanent)
	_, err = (&routing.File{Path: path, Nexthop: nexthop}).Revert(context.Background(), org, []string{"a b"})
	require.ErrorIs(t, err, routing.ErrPermanent)
}

// hook is a webhook receiver that records what it is sent.
type hook struct {
	mu       sync.Mutex
	requests []routing.WebhookRequest
	headers  []http.Header
	answer   func(w http.ResponseWriter, r *http.Request, body routing.WebhookRequest)
}

func newHook(t *testing.T, answer func(http.ResponseWriter, *http.Request, routing.WebhookRequest)) (*hook, *httptest.Server) {
	h := &hook{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body routing.WebhookRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if !assert.NoError(t, dec.Decode(&body)) || !assert.Equal(t, http.MethodPost, r.Method) {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		h.mu.Lock()
		h.requests = append(h.requests, body)
		h.headers = append(h.headers, r.Header.Clone())
		h.mu.Unlock()
		if h.answer != nil {
			h.answer(w, r, body)
		}
	}))
	t.Cleanup(srv.Close)
	require.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1:"))
	return h, srv
}

func (h *hook) got() ([]routing.WebhookRequest, []http.Header) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests), slices.Clone(h.headers)
}

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(p, []byte(token+"\n"), 0o600))
	return p
}

func TestWebhookRequest(t *testing.T) {
	ctx := context.Background()
	h, srv := newHook(t, func(w http.ResponseWriter, r *http.Request, body routing.WebhookRequest) {
		if body.Action == "revert" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"changed": 1}`)
		}
	})
	wh := &routing.Webhook{URL: srv.URL + "/routes", TokenFile: tokenFile(t, "s3cr3t-t0ken")}
	require.Equal(t, "webhook:"+srv.URL+"/routes", wh.Describe())

	n, err := wh.Switch(ctx, org, []string{"Bob@rxh.nhs.example", "alice@rxh.nhs.example", "bob@rxh.nhs.example"})
	require.NoError(t, err)
	require.Equal(t, 2, n, "no answer body: every address changed")
	n, err = wh.Revert(ctx, org, []string{"alice@rxh.nhs.example"})
	require.NoError(t, err)
	require.Equal(t, 1, n, "the receiver's count")

	reqs, hdrs := h.got()
	require.Len(t, reqs, 2)
	require.Equal(t, routing.WebhookRequest{
		Action:         "switch",
		Organization:   org,
		Addresses:      []string{"alice@rxh.nhs.example", "bob@rxh.nhs.example"},
		IdempotencyKey: routing.IdempotencyKey("switch", org, []string{"alice@rxh.nhs.example", "bob@rxh.nhs.example"}),
	}, reqs[0])
	require.Equal(t, "revert", reqs[1].Action)
	require.Equal(t, []string{"alice@rxh.nhs.example"}, reqs[1].Addresses)
	for i, hd := range hdrs {
		require.Equal(t, "Bearer s3cr3t-t0ken", hd.Get("Authorization"))
		require.Equal(t, "application/json", hd.Get("Content-Type"))
		require.Equal(t, reqs[i].IdempotencyKey, hd.Get("Idempotency-Key"))
	}

	// Without a token file, no Authorization header; no addresses, no request.
	wh = &routing.Webhook{URL: srv.URL}
	_, err = wh.Switch(ctx, org, []string{"carol@rxh.nhs.example"})
	require.NoError(t, err)
	n, err = wh.Switch(ctx, org, nil)
	require.NoError(t, err)
	require.Zero(t, n)
	reqs, hdrs = h.got()
	require.Len(t, reqs, 3)
	require.Empty(t, hdrs[2].Get("Authorization"))

	// Refused input never reaches the receiver.
	_, err = wh.Switch(ctx, org, []string{"ok@x.example", "not an address"})
	require.ErrorIs(t, err, routing.ErrPermanent)
	reqs, _ = h.got()
	require.Len(t, reqs, 3)

	require.Equal(t, "webhook:https://hooks.example/route", (&routing.Webhook{URL: "https://user:pw@hooks.example/route?code=k3y"}).Describe())
}

func TestWebhookIdempotencyKey(t *testing.T) {
	k := routing.IdempotencyKey("switch", org, []string{"b@x.example", "a@x.example"})
	require.Equal(t, k, routing.IdempotencyKey("switch", org, []string{"A@x.example", "b@x.example", "a@x.example"}), "order, case and repeats do not matter")
	require.Len(t, k, 64)
	for _, other := range []string{
		routing.IdempotencyKey("revert", org, []string{"a@x.example", "b@x.example"}),
		routing.IdempotencyKey("switch", "CH1", []string{"a@x.example", "b@x.example"}),
		routing.IdempotencyKey("switch", org, []string{"a@x.example"}),
		routing.IdempotencyKey("switch", org+"a@x.example", []string{"b@x.example"}),
	} {
		require.NotEqual(t, k, other)
	}
}

// A retried activity repeats every request with the same key, so the
// receiver can tell what it already applied.
func TestWebhookBatchesAndRetries(t *testing.T) {
	ctx := context.Background()
	var fail sync.Map // idempotency key -> fail once
	h, srv := newHook(t, func(w http.ResponseWriter, r *http.Request, body routing.WebhookRequest) {
		if _, first := fail.LoadOrStore(body.IdempotencyKey, true); !first && len(body.Addresses) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	})
	wh := &routing.Webhook{URL: srv.URL, Batch: 3}
	var addrs []string
	for i := range 7 {
		addrs = append(addrs, fmt.Sprintf("u%d@x.example", 6-i))
	}

	// The last request fails: two batches applied, then a retryable error.
	n, err := wh.Switch(ctx, org, addrs)
	require.Error(t, err)
	require.NotErrorIs(t, err, routing.ErrPermanent)
	require.ErrorContains(t, err, "request 3 of 3")
	require.Equal(t, 6, n)
	first, _ := h.got()
	require.Len(t, first, 3)
	require.Equal(t, [][]string{
		{"u0@x.example", "u1@x.example", "u2@x.example"},
		{"u3@x.example", "u4@x.example", "u5@x.example"},
		{"u6@x.example"},
	}, [][]string{first[0].Addresses, first[1].Addresses, first[2].Addresses})
	require.NotEqual(t, first[0].IdempotencyKey, first[1].IdempotencyKey)

	// The retry succeeds with exactly the same requests.
	n, err = wh.Switch(ctx, org, addrs)
	require.NoError(t, err)
	require.Equal(t, 7, n)
	all, _ := h.got()
	require.Equal(t, first, all[3:])
}

func TestWebhookErrors(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("A", 200) + strings.Repeat("Z", 100)
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusUnauthorized, true},
		{http.StatusForbidden, true},
		{http.StatusNotFound, true},
		{http.StatusUnprocessableEntity, true},
		{http.StatusFound, true},
		{http.StatusRequestTimeout, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			_, srv := newHook(t, func(w http.ResponseWriter, r *http.Request, _ routing.WebhookRequest) {
				w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(tc.status)
				io.WriteString(w, long)
			})
			_, err := (&routing.Webhook{URL: srv.URL}).Switch(ctx, org, []string{"a@x.example"})
			require.Error(t, err)
			require.Equal(t, tc.permanent, errors.Is(err, routing.ErrPermanent), err.Error())
			require.ErrorContains(t, err, strconv.Itoa(tc.status))
			require.ErrorContains(t, err, strings.Repeat("A", 200), "the first 200 bytes of the answer")
			require.NotContains(t, err.Error(), "Z")
			var he *routing.HTTPError
			require.ErrorAs(t, err, &he)
			require.Equal(t, tc.status, he.Status)
			require.Equal(t, 7*time.Second, he.RetryAfter)
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := (&routing.Webhook{URL: url + "/?code=k3y"}).Switch(ctx, org, []string{"a@x.example"})
		require.Error(t, err)
		require.NotErrorIs(t, err, routing.ErrPermanent)
		require.NotContains(t, err.Error(), "k3y", "the query is not echoed")
	})

	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		_, srv := newHook(t, func(http.ResponseWriter, *http.Request, routing.WebhookRequest) { <-release })
		defer close(release)
		start := time.Now()
		_, err := (&routing.Webhook{URL: srv.URL, Timeout: 100 * time.Millisecond}).Switch(ctx, org, []string{"a@x.example"})
		require.ErrorContains(t, err, "no answer within 100ms")
		require.NotErrorIs(t, err, routing.ErrPermanent)
		require.Less(t, time.Since(start), 5*time.Second)
	})
}

// The token is read at each call and never shows in an error, even when
// the receiver echoes it back.
func TestWebhookTokenNeverInErrors(t *testing.T) {
	ctx := context.Background()
	const token = "tok-9f8e7d6c5b4a"
	status := http.StatusUnauthorized
	h, srv := newHook(t, func(w http.ResponseWriter, r *http.Request, _ routing.WebhookRequest) {
		w.WriteHeader(status)
		fmt.Fprintf(w, "bad credentials: %s", r.Header.Get("Authorization"))
	})
	file := tokenFile(t, token)
	wh := &routing.Webhook{URL: srv.URL, TokenFile: file}
	for _, s := range []int{http.StatusUnauthorized, http.StatusInternalServerError} {
		status = s
		_, err := wh.Switch(ctx, org, []string{"a@x.example"})
		require.Error(t, err)
		require.NotContains(t, err.Error(), token)
		require.Contains(t, err.Error(), "Bearer [redacted]")
	}

	// Rotated on disk: the next call uses the new token.
	require.NoError(t, os.WriteFile(file, []byte("rotated-token\n"), 0o600))
	status = http.StatusOK
	_, err := wh.Switch(ctx, org, []string{"a@x.example"})
	require.NoError(t, err)
	_, hdrs := h.got()
	require.Equal(t, "Bearer rotated-token", hdrs[len(hdrs)-1].Get("Authorization"))

	// A token file others can read, an empty one, a token with blanks: no
	// request, and the token is not echoed.
	before, _ := h.got()
	require.NoError(t, os.Chmod(file, 0o644))
	_, err = wh.Switch(ctx, org, []string{"a@x.example"})
	require.ErrorContains(t, err, "chmod 600")
	require.NoError(t, os.Chmod(file, 0o600))
	for _, content := range []string{"\n", "two words\n"} {
		require.NoError(t, os.WriteFile(file, []byte(content), 0o600))
		_, err = wh.Switch(ctx, org, []string{"a@x.example"})
		require.ErrorIs(t, err, routing.ErrPermanent)
		require.NotContains(t, err.Error(), "two words")
	}
	after, _ := h.got()
	require.Len(t, after, len(before))
}
