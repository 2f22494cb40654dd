package staging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/mailshift/mailshift/internal/staging/stagingtest"
)

// runContract checks every behaviour callers rely on, for any Store.
// newStore returns an empty store private to t.
func runContract(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		for _, size := range []int{0, 1, 1000, DefaultBlockSize, DefaultBlockSize + 1} {
			data := stagingtest.Bytes(uint64(size), size)
			name := Name("org", "box", "rt", hex.EncodeToString([]byte{byte(size), byte(size >> 8), byte(size >> 16)}))
			o, err := s.Put(ctx, name, bytes.NewReader(data), nil)
			if err != nil {
				t.Fatalf("put %d bytes: %v", size, err)
			}
			want := Object{Name: name, Size: int64(size), SHA256: sha(data)}
			if o.Name != want.Name || o.Size != want.Size || o.SHA256 != want.SHA256 {
				t.Fatalf("put %d bytes returned %+v, want %+v", size, o, want)
			}
			got, o2 := readAll(t, s, name)
			if !bytes.Equal(got, data) {
				t.Fatalf("get %d bytes: content differs (got %d bytes)", size, len(got))
			}
			if o2.Size != want.Size || o2.SHA256 != want.SHA256 {
				t.Fatalf("get returned %+v, want %+v", o2, want)
			}
		}
	})

	t.Run("Metadata", func(t *testing.T) {
		s := newStore(t)
		meta := map[string]string{
			"organization": "acme", "mailbox": "alice@acme.example", "folder": "Boîte de réception/Été 2024 — 100% \"done\"",
			"uid": "42", "size": "123", "reason": "too-large", "messageid": "<abc+def@mail.example>",
			"kind": "", "note": "  leading and trailing spaces  ", "tabs": "a\tb\nc", "cjk": "受信トレイ",
		}
		name := ItemName("acme", "alice@acme.example", "Boîte", 7, 42)
		o, err := s.Put(ctx, name, strings.NewReader("hello"), meta)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(nz(o.Metadata), nz(meta)) {
			t.Fatalf("put metadata = %q, want %q", o.Metadata, meta)
		}
		st, err := s.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(nz(st.Metadata), nz(meta)) {
			t.Fatalf("stat metadata = %q, want %q", st.Metadata, meta)
		}
		_, g := readAll(t, s, name)
		if !reflect.DeepEqual(nz(g.Metadata), nz(meta)) {
			t.Fatalf("get metadata = %q, want %q", g.Metadata, meta)
		}
		l, err := s.List(ctx, "acme/")
		if err != nil || len(l) != 1 {
			t.Fatalf("list = %v, %v", l, err)
		}
		if !reflect.DeepEqual(nz(l[0].Metadata), nz(meta)) {
			t.Fatalf("list metadata = %q, want %q", l[0].Metadata, meta)
		}
		for _, bad := range []string{"Kind", "mailshift_sha256", "a-b", "9lives", "", "é"} {
			if _, err := s.Put(ctx, name+".bad", strings.NewReader("x"), map[string]string{bad: "v"}); err == nil {
				t.Errorf("metadata key %q was accepted", bad)
			}
		}
	})

	t.Run("IdempotentPut", func(t *testing.T) {
		s := newStore(t)
		name := LedgerName("org", "bob@org.example")
		data := stagingtest.Bytes(1, 3*DefaultBlockSize/2)
		o1, err := s.Put(ctx, name, bytes.NewReader(data), map[string]string{"kind": "ledger"})
		if err != nil {
			t.Fatal(err)
		}
		o2, err := s.Put(ctx, name, bytes.NewReader(data), map[string]string{"kind": "ledger"})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(o1, o2) {
			t.Fatalf("second put returned %+v, first %+v", o2, o1)
		}
		if a, ok := s.(*Azure); ok {
			if st := a.Stats(); st.NoOps != 1 || st.Commits != 1 {
				t.Fatalf("stats after identical re-put: %+v (want 1 commit, 1 no-op)", st)
			}
		}
		// New content replaces the old.
		data2 := append(bytes.Clone(data), 'x')
		o3, err := s.Put(ctx, name, bytes.NewReader(data2), map[string]string{"kind": "ledger"})
		if err != nil {
			t.Fatal(err)
		}
		if o3.SHA256 != sha(data2) || o3.Size != int64(len(data2)) {
			t.Fatalf("replacing put returned %+v", o3)
		}
		got, _ := readAll(t, s, name)
		if !bytes.Equal(got, data2) {
			t.Fatal("replaced object reads back different content")
		}
		// And a small object replaces a large one and vice versa.
		for _, d := range [][]byte{[]byte("small"), data} {
			if _, err := s.Put(ctx, name, bytes.NewReader(d), nil); err != nil {
				t.Fatal(err)
			}
			if got, _ := readAll(t, s, name); !bytes.Equal(got, d) {
				t.Fatalf("after replacing with %d bytes, read %d", len(d), len(got))
			}
		}
	})

	t.Run("StatDeleteList", func(t *testing.T) {
		s := newStore(t)
		names := []string{
			ItemName("o1", "a@x", "INBOX", 1, 1), ItemName("o1", "a@x", "INBOX", 1, 2),
			ItemName("o1", "b@x", "INBOX", 1, 1), LedgerName("o1", "a@x"), ReportName("o2", "a@x", "initial"),
		}
		for i, n := range names {
			if _, err := s.Put(ctx, n, strings.NewReader(strings.Repeat("m", i+1)), map[string]string{"kind": "t"}); err != nil {
				t.Fatal(err)
			}
		}
		list := func(prefix string) []string {
			l, err := s.List(ctx, prefix)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, o := range l {
				out = append(out, o.Name)
			}
			return out
		}
		if got, want := list(""), sorted(names); !reflect.DeepEqual(got, want) {
			t.Fatalf("list all = %q, want %q", got, want)
		}
		if got, want := list("o1/a@x/"), sorted(names[:2:2], names[3]); !reflect.DeepEqual(got, want) {
			t.Fatalf("list o1/a@x/ = %q, want %q", got, want)
		}
		if got := list("nothing/"); len(got) != 0 {
			t.Fatalf("list of empty prefix = %q", got)
		}
		o, err := s.Stat(ctx, names[2])
		if err != nil || o.Size != 3 || o.Name != names[2] {
			t.Fatalf("stat = %+v, %v", o, err)
		}
		if err := s.Delete(ctx, names[2]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, names[2]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("stat after delete: %v, want ErrNotFound", err)
		}
		if _, _, err := s.Get(ctx, names[2]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get after delete: %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, names[2]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v, want ErrNotFound", err)
		}
		if got := list("o1/b@x/"); len(got) != 0 {
			t.Fatalf("list after delete = %q", got)
		}
		for _, bad := range []string{"", "/abs", "a//b", "a/../b", "a/./b", "a/"} {
			if _, err := s.Put(ctx, bad, strings.NewReader("x"), nil); err == nil {
				t.Errorf("put %q was accepted", bad)
			}
			if _, err := s.Stat(ctx, bad); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("stat %q: %v, want an invalid-name error", bad, err)
			}
		}
	})

	t.Run("EscapedNames", func(t *testing.T) {
		s := newStore(t)
		folders := []string{"Boîte de réception", "Sent/2024", "受信トレイ", "100% done", "a+b=c?&#", "..", "Ünïcødé/Ωmega"}
		var names []string
		for i, f := range folders {
			n := ItemName("org", "ü@x.example", f, 9, uint32(i))
			names = append(names, n)
			if err := ValidName(n); err != nil {
				t.Fatalf("ItemName(%q) = %q: %v", f, n, err)
			}
			if _, err := s.Put(ctx, n, strings.NewReader(f), map[string]string{"folder": f}); err != nil {
				t.Fatalf("put %q: %v", n, err)
			}
		}
		l, err := s.List(ctx, Name("org", "ü@x.example")+"/")
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != len(names) {
			t.Fatalf("listed %d objects, want %d: %+v", len(l), len(names), l)
		}
		byName := map[string]Object{}
		for _, o := range l {
			byName[o.Name] = o
		}
		for i, n := range names {
			o, ok := byName[n]
			if !ok || o.Metadata["folder"] != folders[i] {
				t.Fatalf("object %q listed as %+v", n, o)
			}
			got, _ := readAll(t, s, n)
			if string(got) != folders[i] {
				t.Fatalf("get %q = %q", n, got)
			}
		}
	})

	t.Run("StreamingPutBoundedHeap", func(t *testing.T) {
		s := newStore(t)
		const size = 40 << 20
		name := ItemName("org", "big@x", "INBOX", 1, 40)
		var o Object
		var err error
		grew := stagingtest.PeakHeapGrowth(func() {
			o, err = s.Put(ctx, name, stagingtest.Data(40, size), map[string]string{"reason": "too-large"})
		})
		if err != nil {
			t.Fatal(err)
		}
		budget := uint64(8 << 20)
		if a, ok := s.(*Azure); ok {
			budget += uint64((a.opts.Concurrency + 1) * a.opts.BlockSize)
		}
		t.Logf("40 MB put: heap grew by %.1f MiB (budget %.1f MiB)", float64(grew)/(1<<20), float64(budget)/(1<<20))
		if grew > budget || grew > size/2 {
			t.Fatalf("heap grew by %d bytes while putting %d bytes (budget %d): Put does not stream", grew, size, budget)
		}
		if want := stagingtest.SHA256(40, size); o.SHA256 != want || o.Size != size {
			t.Fatalf("put returned %+v, want sha %s", o, want)
		}
		rc, _, err := s.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		h := sha256.New()
		grew = stagingtest.PeakHeapGrowth(func() { _, err = io.Copy(h, rc) })
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != o.SHA256 {
			t.Fatalf("streamed read hash %s, want %s", got, o.SHA256)
		}
		t.Logf("40 MB get: heap grew by %.1f MiB", float64(grew)/(1<<20))
		if grew > 16<<20 {
			t.Fatalf("heap grew by %d bytes while reading %d bytes: Get does not stream", grew, size)
		}
	})

	t.Run("CorruptionDetectedAndRestaged", func(t *testing.T) {
		s := newStore(t)
		for _, size := range []int{1000, 2*DefaultBlockSize + 5} {
			data := stagingtest.Bytes(7, size)
			name := ItemName("org", "c@x", "INBOX", 1, uint32(size))
			meta := map[string]string{"reason": "too-large"}
			if _, err := s.Put(ctx, name, bytes.NewReader(data), meta); err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(data)
			bad[len(bad)/2] ^= 0xff
			corrupt(t, s, name, bad)

			rc, _, err := s.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("reading a corrupted %d-byte object: %v, want ErrCorrupt", size, err)
			}
			if _, err := Verify(ctx, s, name); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("verify of corrupted object: %v, want ErrCorrupt", err)
			}
			o, err := Restage(ctx, s, name, bytes.NewReader(data), meta)
			if err != nil {
				t.Fatal(err)
			}
			if o.SHA256 != sha(data) {
				t.Fatalf("restage returned %+v", o)
			}
			if _, err := Verify(ctx, s, name); err != nil {
				t.Fatalf("verify after restage: %v", err)
			}
			if got, _ := readAll(t, s, name); !bytes.Equal(got, data) {
				t.Fatal("restaged object reads back different content")
			}
		}
	})

	t.Run("CreateOnlyOnceUnderRace", func(t *testing.T) {
		s := newStore(t)
		c, ok := s.(Creator)
		if !ok {
			t.Fatalf("%s does not implement Creator", s.Describe())
		}
		name := Name("claims", "mailboxes", "race")
		const racers = 8
		errs := make(chan error, racers)
		for i := range racers {
			go func() {
				_, err := c.Create(ctx, name, []byte(fmt.Sprintf("holder %d", i)), map[string]string{"organization": fmt.Sprint(i)})
				errs <- err
			}()
		}
		won := 0
		for range racers {
			switch err := <-errs; {
			case err == nil:
				won++
			case !errors.Is(err, ErrExists):
				t.Fatalf("a losing create must say ErrExists, got %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d creators won, want exactly 1", won)
		}
		got, o := readAll(t, s, name)
		if !strings.HasPrefix(string(got), "holder ") || o.Metadata["organization"] != strings.TrimPrefix(string(got), "holder ") {
			t.Fatalf("the stored claim is not one racer's whole: %q %v", got, o.Metadata)
		}
		if err := s.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Create(ctx, name, []byte("again"), nil); err != nil {
			t.Fatalf("create after delete: %v", err)
		}
	})
}

// corrupt replaces name's content with bad while keeping its recorded hash,
// behind the store's back.
func corrupt(t *testing.T, s Store, name string, bad []byte) {
	t.Helper()
	ctx := context.Background()
	switch st := s.(type) {
	case *Local:
		p, err := st.path(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bad, 0o600); err != nil {
			t.Fatal(err)
		}
	case *Azure:
		bb := st.cc.NewBlockBlobClient(name)
		props, err := bb.GetProperties(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(bad)), &blockblob.UploadOptions{Metadata: props.Metadata}); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("do not know how to corrupt a %T", s)
	}
}

func readAll(t *testing.T, s Store, name string) ([]byte, Object) {
	t.Helper()
	rc, o, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b, o
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func nz(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func sorted(groups ...any) []string {
	var out []string
	for _, g := range groups {
		switch v := g.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		}
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestContractLocal(t *testing.T) {
	runContract(t, func(t *testing.T) Store {
		s, err := NewLocal(filepath.Join(t.TempDir(), "staging"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
