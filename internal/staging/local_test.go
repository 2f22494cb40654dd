package staging_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/staging"
)

func localStore(t *testing.T) (*staging.Local, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "staging")
	l, err := staging.NewLocal(root)
	require.NoError(t, err)
	st, err := os.Stat(root)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "staged mail is private")
	require.Equal(t, root, l.Root())
	require.Equal(t, "local:"+root, l.Describe())
	return l, root
}

func localSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func localGet(t *testing.T, l *staging.Local, name string) ([]byte, staging.Object, error) {
	t.Helper()
	rc, o, err := l.Get(context.Background(), name)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, o, err
}

// localFiles lists every file under root (relative, "/"-separated).
func localFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	}))
	return out
}

func TestLocalRoundTrip(t *testing.T) {
	ctx := context.Background()
	l, root := localStore(t)
	var _ staging.Store = l

	body := bytes.Repeat([]byte("Subject: big\r\n\r\n0123456789abcdef\r\n"), 10000)
	name := staging.ItemName("RXH", "alice@rxh.nhs.example", "INBOX", 7, 42)
	meta := map[string]string{"folder": "INBOX", "uid": "42"}
	o, err := l.Put(ctx, name, bytes.NewReader(body), meta)
	require.NoError(t, err)
	require.Equal(t, staging.Object{Name: name, Size: int64(len(body)), SHA256: localSum(body), Metadata: meta}, o)

	st, err := l.Stat(ctx, name)
	require.NoError(t, err)
	require.Equal(t, o, st)

	got, og, err := localGet(t, l, name)
	require.NoError(t, err, "an intact object reads to EOF without error")
	require.Equal(t, body, got)
	require.Equal(t, o, og)

	ledger := staging.LedgerName("RXH", "alice@rxh.nhs.example")
	_, err = l.Put(ctx, ledger, strings.NewReader(`{"folders":[]}`), nil)
	require.NoError(t, err)
	other := staging.ItemName("GP7", "bob@gp7.nhs.example", "Sent", 1, 1)
	_, err = l.Put(ctx, other, strings.NewReader("x"), nil)
	require.NoError(t, err)

	list, err := l.List(ctx, "RXH/")
	require.NoError(t, err)
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
	}
	require.Equal(t, []string{"RXH/alice@rxh.nhs.example/INBOX/7/42.eml", "RXH/alice@rxh.nhs.example/ledger.json"}, names, "sorted, prefix only")
	all, err := l.List(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 3)
	none, err := l.List(ctx, "nothing/")
	require.NoError(t, err)
	require.Empty(t, none)

	// Only objects and their sidecars on disk: no temporary file left.
	require.ElementsMatch(t, []string{
		name, name + ".meta.json", ledger, ledger + ".meta.json", other, other + ".meta.json",
	}, localFiles(t, root))

	require.NoError(t, l.Delete(ctx, name))
	_, err = l.Stat(ctx, name)
	require.ErrorIs(t, err, staging.ErrNotFound)
	_, _, err = l.Get(ctx, name)
	require.ErrorIs(t, err, staging.ErrNotFound)
	require.ErrorIs(t, l.Delete(ctx, name), staging.ErrNotFound)
	list, err = l.List(ctx, "RXH/")
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func TestLocalPutIdenticalIsNoOp(t *testing.T) {
	ctx := context.Background()
	l, root := localStore(t)
	name := staging.ItemName("O", "m@x.example", "INBOX", 1, 2)
	first, err := l.Put(ctx, name, strings.NewReader("same bytes"), map[string]string{"pass": "one"})
	require.NoError(t, err)
	path := filepath.Join(root, filepath.FromSlash(name))
	before, err := os.Stat(path)
	require.NoError(t, err)
	metaBefore, err := os.ReadFile(path + ".meta.json")
	require.NoError(t, err)

	again, err := l.Put(ctx, name, strings.NewReader("same bytes"), map[string]string{"pass": "two"})
	require.NoError(t, err)
	require.Equal(t, first, again, "the stored object is kept as it was")
	after, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "the file is not rewritten")
	metaAfter, err := os.ReadFile(path + ".meta.json")
	require.NoError(t, err)
	require.Equal(t, metaBefore, metaAfter)
	require.Len(t, localFiles(t, root), 2, "the temporary copy is removed")

	// Different content replaces it.
	changed, err := l.Put(ctx, name, strings.NewReader("other bytes"), nil)
	require.NoError(t, err)
	require.Equal(t, localSum([]byte("other bytes")), changed.SHA256)
	got, _, err := localGet(t, l, name)
	require.NoError(t, err)
	require.Equal(t, "other bytes", string(got))
	require.Len(t, localFiles(t, root), 2)
}

func TestLocalCorruptionDetectedAtEOF(t *testing.T) {
	ctx := context.Background()
	l, root := localStore(t)
	body := bytes.Repeat([]byte("line of a large message\r\n"), 4000)
	name := staging.ItemName("O", "m@x.example", "Archive/2023", 3, 9)
	_, err := l.Put(ctx, name, bytes.NewReader(body), nil)
	require.NoError(t, err)
	path := filepath.Join(root, filepath.FromSlash(name))

	t.Run("flipped bytes", func(t *testing.T) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte("XXXX"), int64(len(body)/2))
		require.NoError(t, err)
		require.NoError(t, f.Close())

		got, _, err := localGet(t, l, name)
		require.Error(t, err, "the reader must fail at EOF")
		require.ErrorIs(t, err, staging.ErrCorrupt)
		require.Contains(t, err.Error(), "does not match")
		require.Contains(t, err.Error(), name)
		require.Len(t, got, len(body), "the bytes are delivered; the verdict comes at EOF")
	})

	t.Run("truncated", func(t *testing.T) {
		require.NoError(t, os.Truncate(path, int64(len(body)-1)))
		_, _, err := localGet(t, l, name)
		require.ErrorIs(t, err, staging.ErrCorrupt)
	})

	t.Run("data file gone", func(t *testing.T) {
		require.NoError(t, os.Remove(path))
		_, err := l.Stat(ctx, name)
		require.ErrorIs(t, err, staging.ErrNotFound)
		list, err := l.List(ctx, "")
		require.NoError(t, err)
		require.Empty(t, list, "a half-present object is not listed")
	})
}

func TestLocalRefusesBadNames(t *testing.T) {
	ctx := context.Background()
	l, root := localStore(t)
	outside := filepath.Join(filepath.Dir(root), "escaped")
	for _, name := range []string{"", "/etc/passwd", "/abs", "..", "../escaped", "a/../../escaped", "a/./b", "a//b", "a/", "./a"} {
		_, err := l.Put(ctx, name, strings.NewReader("x"), nil)
		require.ErrorContains(t, err, "invalid object name", "Put %q", name)
		_, err = l.Stat(ctx, name)
		require.Error(t, err, "Stat %q", name)
		_, _, err = l.Get(ctx, name)
		require.Error(t, err, "Get %q", name)
		require.Error(t, l.Delete(ctx, name), "Delete %q", name)
		require.Error(t, staging.ValidName(name), name)
	}
	_, err := os.Stat(outside)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Empty(t, localFiles(t, root))
}

func TestItemNameEscaping(t *testing.T) {
	ctx := context.Background()
	l, root := localStore(t)
	for _, tc := range []struct {
		folder, want string
	}{
		{"INBOX", "INBOX"},
		{"Archive/2023/Q1", "Archive%2F2023%2FQ1"},
		{"Réunions/Été 2024", "R%C3%A9unions%2F%C3%89t%C3%A9%202024"},
		{"Clinical & Admin", "Clinical%20&%20Admin"},
		{"Ärzte", "%C3%84rzte"},
		{"..", "%2E%2E"},
		{".", "%2E"},
		{"50%", "50%25"},
	} {
		name := staging.ItemName("RXH", "zoë@rxh.nhs.example", tc.folder, 1700000000, 4294967295)
		require.Equal(t, "RXH/zo%C3%AB@rxh.nhs.example/"+tc.want+"/1700000000/4294967295.eml", name, tc.folder)
		require.NoError(t, staging.ValidName(name), tc.folder)
		require.Len(t, strings.Split(name, "/"), 5, "the folder stays one level: %q", tc.folder)
		_, err := l.Put(ctx, name, strings.NewReader(tc.folder), nil)
		require.NoError(t, err, tc.folder)
		got, _, err := localGet(t, l, name)
		require.NoError(t, err)
		require.Equal(t, tc.folder, string(got))
	}
	// Distinct folders never share a name.
	require.NotEqual(t, staging.ItemName("o", "m", "a/b", 1, 1), staging.ItemName("o", "m", "a%2Fb", 1, 1))
	require.NotEqual(t, staging.ItemName("o", "m", "a/b", 1, 1), staging.Name("o", "m", "a", "b", "1", "1.eml"))
	list, err := l.List(ctx, "RXH/")
	require.NoError(t, err)
	require.Len(t, list, 8)
	for _, f := range localFiles(t, root) {
		require.True(t, strings.HasPrefix(f, "RXH/"), "everything stays under the root: %s", f)
	}
	require.Equal(t, "O/m@x/report-final.json", staging.ReportName("O", "m@x", "final"))
	require.Equal(t, "O/m@x/ledger.json", staging.LedgerName("O", "m@x"))
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("source connection lost")
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func TestLocalFailedPutLeavesNothing(t *testing.T) {
	l, root := localStore(t)
	name := staging.ItemName("O", "m@x.example", "INBOX", 1, 1)

	_, err := l.Put(context.Background(), name, &failingReader{n: 100000}, nil)
	require.ErrorContains(t, err, "source connection lost")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = l.Put(ctx, name, strings.NewReader("body"), nil)
	require.ErrorIs(t, err, context.Canceled)

	_, err = l.Stat(context.Background(), name)
	require.ErrorIs(t, err, staging.ErrNotFound)
	require.Empty(t, localFiles(t, root), "no partial object or temporary file")
}
