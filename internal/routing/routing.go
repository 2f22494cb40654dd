// Package routing switches mail delivery for migrated addresses at cutover
// and reverts it on rollback.
package routing

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/mailshift/mailshift/internal/secrets"
)

// Router changes where mail for addresses is delivered.
type Router interface {
	// Switch routes the organization's addresses to the target; Revert
	// routes them back. Both are idempotent and return how many entries
	// changed. An error wrapping ErrPermanent will not go away on retry.
	Switch(ctx context.Context, org string, addresses []string) (int, error)
	Revert(ctx context.Context, org string, addresses []string) (int, error)
	Describe() string
}

// ErrPermanent marks a routing error that retrying cannot fix: invalid
// input, or a receiver that refused the request.
var ErrPermanent = errors.New("permanent routing error")

// None records nothing; for runs where routing is switched outside mailshift.
type None struct{}

func (None) Switch(context.Context, string, []string) (int, error) { return 0, nil }
func (None) Revert(context.Context, string, []string) (int, error) { return 0, nil }
func (None) Describe() string                                      { return "none" }

// PrevSuffix names the file next to a transport map in which File remembers
// the line each address had before mailshift first switched it
// ("<map>.mailshift-prev").
const PrevSuffix = ".mailshift-prev"

// File maintains a Postfix-style transport map ("address nexthop" lines).
// Each change rewrites the file atomically (temp file + fsync + rename), so
// Postfix (postmap) never reads half a file; lines it does not manage are kept.
//
// Before an address is first switched, its line (or the fact that it had
// none) is written to Path+PrevSuffix, before the map itself, so a crash
// between the two writes never loses the previous route. Revert puts back
// exactly that line in its place, or removes the line if there was none,
// and then forgets the address.
type File struct {
	Path    string
	Nexthop string
	mu      sync.Mutex
}

// Describe implements Router.
func (f *File) Describe() string { return "file:" + f.Path }

// Entries reads the current map.
func (f *File) Entries() (map[string]string, error) {
	lines, err := readLines(f.Path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range lines {
		if k, v, ok := entry(l); ok {
			out[k] = v
		}
	}
	return out, nil
}

func entry(line string) (string, string, bool) {
	t := strings.TrimSpace(line)
	if t == "" || strings.HasPrefix(t, "#") {
		return "", "", false
	}
	fs := strings.Fields(t)
	if len(fs) < 2 {
		return "", "", false
	}
	return strings.ToLower(fs[0]), fs[1], true
}

func readLines(path string) ([]string, error) {
	fh, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var lines []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// validAddress refuses what would write a line Postfix misreads, or one the
// next edit does not recognise.
func validAddress(a string) bool {
	return a != "" && !strings.HasPrefix(a, "#") && !strings.ContainsFunc(a, unicode.IsSpace)
}

// wanted validates addresses and returns them lower-cased, sorted, once each.
func wanted(addresses []string) ([]string, error) {
	var out []string
	for _, a := range addresses {
		if !validAddress(a) {
			return nil, fmt.Errorf("invalid address %q: %w", a, ErrPermanent)
		}
		out = append(out, strings.ToLower(a))
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// Switch implements Router. The organization is not used.
func (f *File) Switch(_ context.Context, _ string, addresses []string) (int, error) {
	// A map line is "key nexthop": an empty or blank-containing field would
	// write a line Postfix misreads and that the next edit does not recognise
	// (so Switch would append it again and again).
	if f.Nexthop == "" || strings.ContainsFunc(f.Nexthop, unicode.IsSpace) {
		return 0, fmt.Errorf("routing %s: invalid nexthop %q: %w", f.Path, f.Nexthop, ErrPermanent)
	}
	want, err := wanted(addresses)
	if err != nil {
		return 0, fmt.Errorf("routing %s: %w", f.Path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lines, err := readLines(f.Path)
	if err != nil {
		return 0, fmt.Errorf("routing %s: %w", f.Path, err)
	}
	prev, err := f.readPrev()
	if err != nil {
		return 0, err
	}
	isWanted := map[string]bool{}
	for _, a := range want {
		isWanted[a] = true
	}
	changed := 0
	out := make([]string, 0, len(lines)+len(want))
	present := map[string]bool{}
	before := map[string][]string{}
	for _, l := range lines {
		k, v, ok := entry(l)
		if ok && isWanted[k] {
			present[k] = true
			before[k] = append(before[k], l)
			if v != f.Nexthop {
				changed++
				l = k + " " + f.Nexthop
			}
		}
		out = append(out, l)
	}
	for _, a := range want {
		if !present[a] {
			out = append(out, a+" "+f.Nexthop)
			changed++
		}
	}
	if changed == 0 {
		return 0, nil
	}
	// Remember the originals of addresses seen for the first time, and make
	// that durable before the map changes. An address already remembered
	// keeps its original, never mailshift's own nexthop.
	remember := false
	for _, a := range want {
		if _, ok := prev[a]; !ok {
			prev[a] = append([]string{}, before[a]...)
			remember = true
		}
	}
	if remember {
		if err := f.writePrev(prev); err != nil {
			return 0, err
		}
	}
	if err := writeAtomic(f.Path, out); err != nil {
		return 0, fmt.Errorf("routing %s: %w", f.Path, err)
	}
	return changed, nil
}

// Revert implements Router: each address gets back the line it had before
// mailshift first switched it, in the same place, or loses its line if it
// had none. Addresses mailshift never switched (or already reverted) are
// left alone. It returns how many addresses' lines changed.
func (f *File) Revert(_ context.Context, _ string, addresses []string) (int, error) {
	want, err := wanted(addresses)
	if err != nil {
		return 0, fmt.Errorf("routing %s: %w", f.Path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	prev, err := f.readPrev()
	if err != nil {
		return 0, err
	}
	restore := map[string][]string{}
	for _, a := range want {
		if orig, ok := prev[a]; ok {
			restore[a] = orig
		}
	}
	if len(restore) == 0 {
		return 0, nil
	}
	lines, err := readLines(f.Path)
	if err != nil {
		return 0, fmt.Errorf("routing %s: %w", f.Path, err)
	}
	changed := map[string]bool{}
	seen := map[string]int{}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		k, _, ok := entry(l)
		orig, restoring := restore[k]
		if !ok || !restoring {
			out = append(out, l)
			continue
		}
		i := seen[k]
		seen[k]++
		if i >= len(orig) { // mailshift added it
			changed[k] = true
			continue
		}
		if orig[i] != l {
			changed[k] = true
		}
		out = append(out, orig[i])
	}
	// Original lines removed by hand since the switch come back at the end.
	for _, a := range want {
		for _, l := range restore[a][min(seen[a], len(restore[a])):] {
			out = append(out, l)
			changed[a] = true
		}
	}
	if len(changed) > 0 {
		if err := writeAtomic(f.Path, out); err != nil {
			return 0, fmt.Errorf("routing %s: %w", f.Path, err)
		}
	}
	// Forget only once the map is back: a crash before this line leaves the
	// originals remembered, and the next Revert finds nothing left to change.
	for a := range restore {
		delete(prev, a)
	}
	if err := f.writePrev(prev); err != nil {
		return 0, err
	}
	return len(changed), nil
}

const prevHeader = `# mailshift: the lines these addresses had in the transport map before
# mailshift first switched them; a rollback puts them back. Do not edit.
# "<address> -" had no line; "<address> = <line>" had that line, verbatim.`

// readPrev returns the remembered originals: address -> its lines before
// the first switch (none: an empty slice).
func (f *File) readPrev() (map[string][]string, error) {
	path := f.Path + PrevSuffix
	lines, err := readLines(path)
	if err != nil {
		return nil, fmt.Errorf("routing %s: %w", path, err)
	}
	prev := map[string][]string{}
	for i, l := range lines {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		a, rest, _ := strings.Cut(l, " ")
		orig, isLine := strings.CutPrefix(rest, "= ")
		cur, seen := prev[a]
		switch {
		case rest == "-" && !seen && validAddress(a):
			prev[a] = []string{}
		case isLine && (!seen || len(cur) > 0):
			if k, _, ok := entry(orig); !ok || k != a {
				return nil, fmt.Errorf("routing %s: line %d: remembered line is not %s's", path, i+1, a)
			}
			prev[a] = append(prev[a], orig)
		default:
			return nil, fmt.Errorf("routing %s: line %d: want \"<address> -\" or \"<address> = <line>\"", path, i+1)
		}
	}
	return prev, nil
}

// writePrev replaces the sidecar atomically, or removes it once empty.
func (f *File) writePrev(prev map[string][]string) error {
	path := f.Path + PrevSuffix
	if len(prev) == 0 {
		err := os.Remove(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err == nil {
			err = syncDir(filepath.Dir(path))
		}
		if err != nil {
			return fmt.Errorf("routing %s: %w", path, err)
		}
		return nil
	}
	addrs := make([]string, 0, len(prev))
	for a := range prev {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	out := strings.Split(prevHeader, "\n")
	for _, a := range addrs {
		if len(prev[a]) == 0 {
			out = append(out, a+" -")
		}
		for _, l := range prev[a] {
			out = append(out, a+" = "+l)
		}
	}
	if err := writeAtomic(path, out); err != nil {
		return fmt.Errorf("routing %s: %w", path, err)
	}
	return nil
}

// writeAtomic replaces path with lines: temp file, fsync, rename, fsync of
// the directory. Readers see the old file or the new one, never a mix.
func writeAtomic(path string, lines []string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	for _, l := range lines {
		w.WriteString(l + "\n")
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Webhook defaults.
const (
	DefaultWebhookTimeout = 30 * time.Second
	DefaultWebhookBatch   = 1000
)

// Webhook asks an HTTP service to switch delivery: it POSTs a
// WebhookRequest as JSON to URL, at most Batch addresses per request. The
// receiver answers 2xx, optionally with {"changed": n}.
//
// Each request carries an idempotency key (also in the Idempotency-Key
// header) derived from the action, the organization and the request's
// addresses, so a retried activity repeats the same requests with the same
// keys and the receiver can ignore what it has already applied.
type Webhook struct {
	URL string
	// TokenFile holds a bearer token, read at each call (so it can be
	// rotated); it must not be readable by group or others. Optional.
	TokenFile string
	// Timeout of each request (default DefaultWebhookTimeout).
	Timeout time.Duration
	// Batch is the most addresses per request (default DefaultWebhookBatch).
	Batch int
	// Transport defaults to http.DefaultTransport.
	Transport http.RoundTripper
}

// WebhookRequest is the body Webhook posts.
type WebhookRequest struct {
	Action         string   `json:"action"` // "switch" | "revert"
	Organization   string   `json:"organization"`
	Addresses      []string `json:"addresses"` // lower-case, sorted, each once
	IdempotencyKey string   `json:"idempotency_key"`
}

// HTTPError is a webhook answer other than 2xx. It is ErrPermanent for 4xx
// (except 408 and 429) and 3xx; other statuses may succeed on retry.
type HTTPError struct {
	Status int
	// Body holds the first 200 bytes of the answer (any token redacted).
	Body string
	// RetryAfter is the receiver's Retry-After hint, if any.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Body != "" {
		s += ": " + strconv.Quote(e.Body)
	}
	return s
}

// Is makes errors.Is(err, ErrPermanent) true for refusals.
func (e *HTTPError) Is(target error) bool {
	return target == ErrPermanent && e.permanent()
}

func (e *HTTPError) permanent() bool {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests:
		return false
	case e.Status >= 300 && e.Status < 500:
		return true
	}
	return false
}

// Describe implements Router. It shows no query or user information.
func (w *Webhook) Describe() string {
	u, err := url.Parse(w.URL)
	if err != nil {
		return "webhook:(invalid url)"
	}
	return "webhook:" + (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// Switch implements Router.
func (w *Webhook) Switch(ctx context.Context, org string, addresses []string) (int, error) {
	return w.call(ctx, "switch", org, addresses)
}

// Revert implements Router.
func (w *Webhook) Revert(ctx context.Context, org string, addresses []string) (int, error) {
	return w.call(ctx, "revert", org, addresses)
}

// IdempotencyKey is the key of one request: the same action, organization
// and addresses (in any order, any case, repeated or not) give the same key.
func IdempotencyKey(action, org string, addresses []string) string {
	as := make([]string, len(addresses))
	for i, a := range addresses {
		as[i] = strings.ToLower(a)
	}
	sort.Strings(as)
	as = slices.Compact(as)
	h := sha256.New()
	// Length-prefixed fields: no two inputs share an encoding.
	for _, s := range append([]string{"mailshift-routing-v1", action, org}, as...) {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (w *Webhook) call(ctx context.Context, action, org string, addresses []string) (int, error) {
	desc := w.Describe()
	want, err := wanted(addresses)
	if err != nil {
		return 0, fmt.Errorf("routing %s: %w", desc, err)
	}
	if len(want) == 0 {
		return 0, nil
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return 0, fmt.Errorf("routing %s: want an http(s) URL: %w", desc, ErrPermanent)
	}
	token, err := w.token()
	if err != nil {
		return 0, fmt.Errorf("routing %s: %w", desc, err)
	}
	batch := w.Batch
	if batch <= 0 {
		batch = DefaultWebhookBatch
	}
	batches := (len(want) + batch - 1) / batch
	changed := 0
	for i := range batches {
		part := want[i*batch : min((i+1)*batch, len(want))]
		n, err := w.post(ctx, token, WebhookRequest{
			Action:         action,
			Organization:   org,
			Addresses:      part,
			IdempotencyKey: IdempotencyKey(action, org, part),
		})
		if err != nil {
			return changed, fmt.Errorf("routing %s: %s %s, request %d of %d (%d addresses): %w", desc, action, org, i+1, batches, len(part), err)
		}
		changed += n
	}
	return changed, nil
}

func (w *Webhook) token() (string, error) {
	if w.TokenFile == "" {
		return "", nil
	}
	s, err := secrets.Ref("file:" + w.TokenFile).ResolveString()
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("token file %s is empty: %w", w.TokenFile, ErrPermanent)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		// The token itself is never echoed.
		return "", fmt.Errorf("token file %s: the token holds blanks or control characters: %w", w.TokenFile, ErrPermanent)
	}
	return s, nil
}

// post sends one request and returns the changed count it reports.
func (w *Webhook) post(ctx context.Context, token string, body WebhookRequest) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrPermanent, unwrapURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mailshift")
	req.Header.Set("Idempotency-Key", body.IdempotencyKey)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{
		Transport: w.Transport,
		// A redirect is a misconfigured URL; following it could hand the
		// request (and its token) to another service.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s: %w", timeout, unwrapURL(err))
		}
		return 0, unwrapURL(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, &HTTPError{Status: resp.StatusCode, Body: snippet(raw, token), RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	if err != nil {
		return 0, fmt.Errorf("HTTP %d, reading the answer: %w", resp.StatusCode, unwrapURL(err))
	}
	var answer struct {
		Changed *int `json:"changed"`
	}
	if len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &answer) == nil && answer.Changed != nil {
		if *answer.Changed < 0 {
			return 0, fmt.Errorf("HTTP %d: changed %d: %w", resp.StatusCode, *answer.Changed, ErrPermanent)
		}
		return *answer.Changed, nil
	}
	return len(body.Addresses), nil
}

// unwrapURL drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// snippet is the first 200 bytes of an answer, with the token redacted.
func snippet(raw []byte, token string) string {
	s := string(raw)
	if token != "" {
		s = strings.ReplaceAll(s, token, "[redacted]")
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimSpace(strings.ToValidUTF8(s, ""))
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}
