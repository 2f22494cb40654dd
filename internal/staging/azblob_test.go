package staging

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/mailshift/mailshift/internal/azuritetest"
	"github.com/mailshift/mailshift/internal/staging/stagingtest"
)

// azurite is started by the first test that needs it and stopped by TestMain.
var azurite azuritetest.Shared

const helperEnv = "MAILSHIFT_STAGING_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "put" {
		os.Exit(helperPut())
	}
	code := m.Run()
	azurite.Close()
	os.Exit(code)
}

func newContainerName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// newAzureStore returns a store on a new container of the shared Azurite.
func newAzureStore(t *testing.T, mod ...func(*AzureOptions)) *Azure {
	t.Helper()
	srv := azurite.Get(t)
	o := AzureOptions{ConnectionString: srv.ConnectionString(), Container: newContainerName(), CreateContainer: true}
	for _, f := range mod {
		f(&o)
	}
	s, err := NewAzure(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContractAzurite(t *testing.T) {
	runContract(t, func(t *testing.T) Store { return newAzureStore(t) })
}

// counter counts the block uploads that reach the pipeline (once per call,
// whatever the retries).
type counter struct {
	stageCalls, stageBytes, commits, putBlobs atomic.Int64
}

func (c *counter) Do(req *policy.Request) (*http.Response, error) {
	r := req.Raw()
	if r.Method == http.MethodPut {
		switch r.URL.Query().Get("comp") {
		case "block":
			c.stageCalls.Add(1)
			c.stageBytes.Add(r.ContentLength)
		case "blocklist":
			c.commits.Add(1)
		case "":
			if r.Header.Get("x-ms-blob-type") == "BlockBlob" {
				c.putBlobs.Add(1)
			}
		}
	}
	return req.Next()
}

// helperPut runs in a child process (the test binary re-executed): one Put
// that the parent kills part way.
func helperPut() int {
	size, _ := strconv.ParseInt(os.Getenv("HELPER_SIZE"), 10, 64)
	seed, _ := strconv.ParseUint(os.Getenv("HELPER_SEED"), 10, 64)
	s, err := NewAzure(AzureOptions{ConnectionString: os.Getenv("HELPER_CONN"), Container: os.Getenv("HELPER_CONTAINER")})
	if err == nil {
		_, err = s.Put(context.Background(), os.Getenv("HELPER_NAME"), stagingtest.Data(seed, size), map[string]string{"reason": "too-large"})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper put:", err)
		return 1
	}
	return 0
}

func uncommitted(t *testing.T, bb *blockblob.Client) map[string]int64 {
	t.Helper()
	bl, err := bb.GetBlockList(context.Background(), blockblob.BlockListTypeUncommitted, nil)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return blockSizes(bl.UncommittedBlocks)
}

// TestAzureResumeAfterKill: a process staging a 150 MiB item is SIGKILLed
// once some blocks are staged; the resumed Put sends only the missing blocks
// and the result reads back byte-exact.
func TestAzureResumeAfterKill(t *testing.T) {
	const size = 150 << 20
	const seed = 150
	const killAfter = 8
	ctx := context.Background()
	srv := azurite.Get(t)
	cnt := &counter{}
	s := newAzureStore(t, func(o *AzureOptions) { o.PerCallPolicies = []policy.Policy{cnt} })
	if err := s.EnsureContainer(ctx); err != nil {
		t.Fatal(err)
	}
	name := ItemName("org", "big@x.example", "INBOX", 1, 150)
	raw := s.cc.NewBlockBlobClient(name)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=put", "HELPER_CONN="+srv.ConnectionString(),
		"HELPER_CONTAINER="+s.Container(), "HELPER_NAME="+name,
		"HELPER_SIZE="+strconv.Itoa(size), "HELPER_SEED="+strconv.Itoa(seed))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n := len(uncommitted(t, raw)); n >= killAfter {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			t.Logf("killed the staging process after seeing %d staged blocks", n)
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("staging process ended before it was killed: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("fewer than %d blocks staged after 60 s\n%s", killAfter, stderr.String())
		}
	}
	<-exited

	if _, err := s.Stat(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a killed Put left an object behind: %v", err)
	}
	left := uncommitted(t, raw)
	totalBlocks := (size + DefaultBlockSize - 1) / DefaultBlockSize
	var leftBytes int64
	for _, n := range left {
		leftBytes += n
	}
	t.Logf("after the kill: %d of %d blocks (%d bytes) staged", len(left), totalBlocks, leftBytes)
	if len(left) < killAfter || len(left) >= totalBlocks {
		t.Fatalf("%d blocks staged after the kill, want %d..%d", len(left), killAfter, totalBlocks-1)
	}

	start := time.Now()
	o, err := s.Put(ctx, name, stagingtest.Data(seed, size), map[string]string{"reason": "too-large"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed put took %s", time.Since(start).Round(time.Millisecond))
	st := s.Stats()
	// Azurite may still finish the killed process's in-flight block after the
	// list above, so the resume can find one block more than we saw; what must
	// hold is that it sends exactly the blocks it did not find.
	if st.ReusedBlocks < int64(len(left)) {
		t.Errorf("resume reused %d blocks, but %d were staged before it", st.ReusedBlocks, len(left))
	}
	wantCalls := int64(totalBlocks) - st.ReusedBlocks
	wantBytes := size - st.ReusedBytes
	if got := cnt.stageCalls.Load(); got != wantCalls {
		t.Errorf("resume sent %d StageBlock calls, want only the %d missing blocks", got, wantCalls)
	}
	if got := cnt.stageBytes.Load(); got != wantBytes {
		t.Errorf("resume sent %d block bytes, want %d", got, wantBytes)
	}
	if st.StagedBlocks != wantCalls || cnt.commits.Load() != 1 {
		t.Errorf("store stats %+v, commits seen %d", st, cnt.commits.Load())
	}
	wantSHA := stagingtest.SHA256(seed, size)
	if o.SHA256 != wantSHA || o.Size != size {
		t.Fatalf("put returned %+v, want sha %s", o, wantSHA)
	}
	if got, err := Verify(ctx, s, name); err != nil || got.SHA256 != wantSHA {
		t.Fatalf("read back: %+v, %v", got, err)
	}
	bl, err := raw.GetBlockList(ctx, blockblob.BlockListTypeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(bl.CommittedBlocks) != totalBlocks || len(bl.UncommittedBlocks) != 0 {
		t.Fatalf("after commit: %d committed, %d uncommitted blocks", len(bl.CommittedBlocks), len(bl.UncommittedBlocks))
	}
}

// TestAzureCorruption: a staged blob replaced behind the store's back (the
// hash metadata kept) is refused on read; Put from the source repairs it when
// the blob's blocks or service MD5 no longer match, and Restage repairs it
// even when they claim to (a block whose ID lies about its content).
func TestAzureCorruption(t *testing.T) {
	ctx := context.Background()
	cnt := &counter{}
	s := newAzureStore(t, func(o *AzureOptions) { o.PerCallPolicies = []policy.Policy{cnt} })
	meta := map[string]string{"organization": "acme", "mailbox": "c@x", "reason": "too-large"}

	readErr := func(name string) error {
		_, err := Verify(ctx, s, name)
		return err
	}

	for _, size := range []int{4000, 3*DefaultBlockSize - 7} {
		t.Run(fmt.Sprintf("overwritten-%d", size), func(t *testing.T) {
			data := stagingtest.Bytes(uint64(size), size)
			name := ItemName("acme", "c@x", "INBOX", 3, uint32(size))
			if _, err := s.Put(ctx, name, bytes.NewReader(data), meta); err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(data)
			bad[size/3] ^= 0x01
			corrupt(t, s, name, bad)
			if err := readErr(name); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read of corrupted blob: %v, want ErrCorrupt", err)
			}
			before := s.Stats()
			if _, err := s.Put(ctx, name, bytes.NewReader(data), meta); err != nil {
				t.Fatal(err)
			}
			if after := s.Stats(); after.NoOps != before.NoOps {
				t.Fatalf("Put over a corrupted blob was a no-op: %+v", after)
			}
			if err := readErr(name); err != nil {
				t.Fatalf("after re-put: %v", err)
			}
		})
	}

	t.Run("lying-block", func(t *testing.T) {
		size := 2*DefaultBlockSize + 100
		data := stagingtest.Bytes(99, size)
		name := ItemName("acme", "c@x", "INBOX", 3, 99)
		if _, err := s.Put(ctx, name, bytes.NewReader(data), meta); err != nil {
			t.Fatal(err)
		}
		// Re-stage block 1 under its own ID with other bytes, and commit the
		// same list: IDs, sizes and metadata all still claim the old content.
		bb := s.cc.NewBlockBlobClient(name)
		bl, err := bb.GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, b := range bl.CommittedBlocks {
			ids = append(ids, *b.Name)
		}
		props, err := bb.GetProperties(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(data[DefaultBlockSize : 2*DefaultBlockSize])
		bad[0] ^= 0x80
		if _, err := bb.StageBlock(ctx, ids[1], streaming.NopCloser(bytes.NewReader(bad)), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{Metadata: props.Metadata}); err != nil {
			t.Fatal(err)
		}
		if err := readErr(name); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read of corrupted blob: %v, want ErrCorrupt", err)
		}
		// Put trusts what the blob claims: a no-op that sends nothing ...
		before, calls := s.Stats(), cnt.stageCalls.Load()
		if _, err := s.Put(ctx, name, bytes.NewReader(data), meta); err != nil {
			t.Fatal(err)
		}
		if after := s.Stats(); after.NoOps != before.NoOps+1 || cnt.stageCalls.Load() != calls {
			t.Fatalf("Put over a blob claiming the same content: stats %+v", after)
		}
		if err := readErr(name); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("still corrupt expected: %v", err)
		}
		// ... so a caller that saw ErrCorrupt restages, which sends every block.
		calls = cnt.stageCalls.Load()
		if _, err := Restage(ctx, s, name, bytes.NewReader(data), meta); err != nil {
			t.Fatal(err)
		}
		if got := cnt.stageCalls.Load() - calls; got != 3 {
			t.Fatalf("restage sent %d blocks, want 3", got)
		}
		if err := readErr(name); err != nil {
			t.Fatalf("after restage: %v", err)
		}
	})
}

func TestAzureAuthErrors(t *testing.T) {
	ctx := context.Background()
	srv := azurite.Get(t)
	wrongKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))
	conn := strings.Replace(srv.ConnectionString(), azuritetest.AccountKey, wrongKey, 1)
	s, err := NewAzure(AzureOptions{ConnectionString: conn, Container: "authtest", CreateContainer: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(ctx, "a/b", strings.NewReader("x"), nil)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("put with a wrong key: %v, want ErrAuth", err)
	}
	if msg := err.Error(); !strings.Contains(msg, azuritetest.Account) || !strings.Contains(msg, "authtest") {
		t.Fatalf("auth error does not name account and container: %v", err)
	}
	t.Logf("wrong key: %v", err)

	// A read-only SAS cannot write: 403 AuthorizationPermissionMismatch.
	good := newAzureStore(t)
	if err := good.EnsureContainer(ctx); err != nil {
		t.Fatal(err)
	}
	sasURL, err := good.cc.GetSASURL(sas.ContainerPermissions{Read: true, List: true}, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := NewAzure(AzureOptions{ContainerSASURL: sasURL})
	if err != nil {
		t.Fatal(err)
	}
	if ro.Container() != good.Container() || strings.Contains(ro.Describe(), "sig=") {
		t.Fatalf("SAS store describes itself as %q (container %q)", ro.Describe(), ro.Container())
	}
	if _, err := ro.List(ctx, ""); err != nil {
		t.Fatalf("list with a read SAS: %v", err)
	}
	_, err = ro.Put(ctx, "a/b", strings.NewReader("x"), nil)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("put with a read-only SAS: %v, want ErrAuth", err)
	}
	if strings.Contains(err.Error(), "sig=") {
		t.Fatalf("error shows the SAS signature: %v", err)
	}
	t.Logf("read-only SAS: %v", err)
}

func TestAzureMissingContainer(t *testing.T) {
	ctx := context.Background()
	srv := azurite.Get(t)
	s, err := NewAzure(AzureOptions{ConnectionString: srv.ConnectionString(), Container: newContainerName()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Stat(ctx, "a/b")
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), s.Container()) {
		t.Fatalf("stat in a missing container: %v, want an error naming the container", err)
	}
}

// TestAzureForeignBlocks: uncommitted blocks with another ID length (another
// writer) would make Azure reject ours; Put drops them first.
func TestAzureForeignBlocks(t *testing.T) {
	ctx := context.Background()
	s := newAzureStore(t)
	if err := s.EnsureContainer(ctx); err != nil {
		t.Fatal(err)
	}
	name := "foreign/obj"
	bb := s.cc.NewBlockBlobClient(name)
	foreign := base64.StdEncoding.EncodeToString([]byte("x"))
	if _, err := bb.StageBlock(ctx, foreign, streaming.NopCloser(strings.NewReader("junk")), nil); err != nil {
		t.Fatal(err)
	}
	data := stagingtest.Bytes(5, DefaultBlockSize+10)
	if _, err := s.Put(ctx, name, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := readAll(t, s, name); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	// Again over a committed blob: its content, metadata and tags survive the cleanup.
	if _, err := bb.StageBlock(ctx, foreign, streaming.NopCloser(strings.NewReader("junk")), nil); err != nil {
		t.Fatal(err)
	}
	data2 := stagingtest.Bytes(6, DefaultBlockSize+10)
	if _, err := s.Put(ctx, name, bytes.NewReader(data2), map[string]string{"kind": "x"}); err != nil {
		t.Fatal(err)
	}
	if got, o := readAll(t, s, name); !bytes.Equal(got, data2) || o.Metadata["kind"] != "x" {
		t.Fatalf("content or metadata differs: %+v", o)
	}
}

func TestAzureTagsAndHeaders(t *testing.T) {
	ctx := context.Background()
	s := newAzureStore(t)
	meta := map[string]string{"organization": "acme", "mailbox": "alice@acme.example", "reason": "too-large", "folder": "INBOX"}
	name := ItemName("acme", "alice@acme.example", "INBOX", 1, 1)
	data := stagingtest.Bytes(8, DefaultBlockSize+1)
	if _, err := s.Put(ctx, name, bytes.NewReader(data), meta); err != nil {
		t.Fatal(err)
	}
	bb := s.cc.NewBlockBlobClient(name)
	tr, err := bb.GetTags(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range tr.BlobTagSet {
		tags[*tg.Key] = *tg.Value
	}
	want := map[string]string{"mailshift": "staged", "organization": "acme", "mailbox": "alice_acme.example", "reason": "too-large"}
	if fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Fatalf("tags = %v, want %v", tags, want)
	}
	props, err := bb.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(props.ContentMD5) != 16 {
		t.Fatalf("no whole-blob Content-MD5 recorded")
	}
	// Found by tag.
	res, err := s.cc.FilterBlobs(ctx, `"mailbox"='alice_acme.example'`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Blobs) != 1 || *res.Blobs[0].Name != name {
		t.Fatalf("FilterBlobs found %d blobs", len(res.Blobs))
	}
	// Tags can be turned off (SAS without the t permission).
	s2 := newAzureStore(t, func(o *AzureOptions) { o.TagKeys = []string{} })
	if _, err := s2.Put(ctx, name, bytes.NewReader(data), meta); err != nil {
		t.Fatal(err)
	}
	tr, err = s2.cc.NewBlockBlobClient(name).GetTags(ctx, nil)
	if err != nil || len(tr.BlobTagSet) != 0 {
		t.Fatalf("tags with TagKeys empty: %v, %v", tr.BlobTagSet, err)
	}
}

func TestBlockIDs(t *testing.T) {
	a := blockID(0, make([]byte, 16))
	b := blockID(49999, bytes.Repeat([]byte{0xff}, 16))
	if len(a) != len(b) || len(a) != 32 || !ours(a) || !ours(b) || a == b {
		t.Fatalf("block IDs %q %q", a, b)
	}
	if ours(base64.StdEncoding.EncodeToString([]byte("x"))) {
		t.Fatal("a foreign ID taken for ours")
	}
	// Same index, other content: other ID.
	if blockID(3, bytes.Repeat([]byte{1}, 16)) == blockID(3, bytes.Repeat([]byte{2}, 16)) {
		t.Fatal("block ID ignores content")
	}
}

func TestDescribeContainerURL(t *testing.T) {
	for _, tc := range []struct{ in, clean, account, cont string }{
		{"http://127.0.0.1:10000/devstoreaccount1/staging", "http://127.0.0.1:10000/devstoreaccount1/staging", "devstoreaccount1", "staging"},
		{"https://acct.blob.core.windows.net/mail?sv=2024&sig=secret", "https://acct.blob.core.windows.net/mail", "acct", "mail"},
	} {
		clean, account, cont, err := describeContainerURL(tc.in)
		if err != nil || clean != tc.clean || account != tc.account || cont != tc.cont {
			t.Errorf("%s: %q %q %q %v", tc.in, clean, account, cont, err)
		}
	}
}

func TestMetaValueEncoding(t *testing.T) {
	for _, v := range []string{"", "plain", "a b", " x ", "100%", "é/ü", "\t\n", "%zz"} {
		enc := encodeMetaValue(v)
		for i := 0; i < len(enc); i++ {
			if enc[i] <= 0x20 || enc[i] >= 0x7f {
				t.Fatalf("encoded %q as %q: not header-safe", v, enc)
			}
		}
		if got := decodeMetaValue(enc); got != v {
			t.Fatalf("%q -> %q -> %q", v, enc, got)
		}
	}
}

type failingCredential struct{ err error }

func (f failingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, f.err
}

// A token credential that cannot get a token (e.g. an expired client secret)
// is an ErrAuth naming account and container; no request leaves the process.
func TestAzureCredentialFailureIsAuth(t *testing.T) {
	s, err := NewAzure(AzureOptions{
		AccountURL: "https://acct.blob.core.windows.net", Container: "mail",
		Credential: failingCredential{&azidentity.AuthenticationFailedError{}},
		Retry:      policy.RetryOptions{MaxRetries: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Describe() != "azblob:https://acct.blob.core.windows.net/mail" {
		t.Fatalf("describe = %q", s.Describe())
	}
	err = s.EnsureContainer(context.Background())
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "account acct, container mail") {
		t.Fatalf("ensure with a failing credential: %v, want ErrAuth naming account and container", err)
	}
}

// flakyTransport answers the first n block uploads with 503 (server busy)
// without sending them, then passes requests on.
type flakyTransport struct {
	n, failed atomic.Int64
}

func (f *flakyTransport) Do(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.URL.Query().Get("comp") == "block" && f.failed.Load() < f.n.Load() {
		f.failed.Add(1)
		if req.Body != nil {
			req.Body.Close()
		}
		h := http.Header{"X-Ms-Error-Code": {"ServerBusy"}, "Retry-After": {"0"}}
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Server Busy", Header: h,
			Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// Throttling is the SDK retry policy's business: a Put whose blocks are
// refused with 503 a few times still completes, each block sent again from
// its rewound buffer.
func TestAzureRetriesThrottling(t *testing.T) {
	ft := &flakyTransport{}
	s := newAzureStore(t, func(o *AzureOptions) {
		o.Transport = ft
		o.Retry = policy.RetryOptions{RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond}
	})
	ctx := context.Background()
	if err := s.EnsureContainer(ctx); err != nil {
		t.Fatal(err)
	}
	ft.n.Store(3)
	data := stagingtest.Bytes(3, 2*DefaultBlockSize+1)
	if _, err := s.Put(ctx, "throttled/obj", bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if ft.failed.Load() != 3 {
		t.Fatalf("%d 503s served", ft.failed.Load())
	}
	if got, _ := readAll(t, s, "throttled/obj"); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}
