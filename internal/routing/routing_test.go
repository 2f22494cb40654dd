package routing_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/routing"
)

const nexthop = "smtp:[cloud.example]:25"

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
	n, err := f.Switch(ctx, []string{"bob@rxh.nhs.example", "Carol@RXH.nhs.example", "alice@rxh.nhs.example", "bob@rxh.nhs.example"})
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
	onlyFiles(t, dir, "transport")
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
	n, err = f.Switch(ctx, []string{"alice@rxh.nhs.example", "BOB@rxh.nhs.example", "carol@rxh.nhs.example"})
	require.NoError(t, err)
	require.Zero(t, n)
	after, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "a no-op Switch must not replace the file")
	require.Equal(t, want, read(t, path))

	// Revert removes exactly those addresses' lines.
	n, err = f.Revert(ctx, []string{"alice@rxh.nhs.example", "Carol@rxh.nhs.example", "nobody@rxh.nhs.example"})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, `# Postfix transport map, maintained by hand and by mailshift.
# Do not remove the comments.

legacy@old.example   smtp:[legacy.example]:25

example.org  relay:[gw.example]
bob@rxh.nhs.example `+nexthop+`
`, read(t, path))
	n, err = f.Revert(ctx, []string{"alice@rxh.nhs.example"})
	require.NoError(t, err)
	require.Zero(t, n, "Revert is idempotent too")
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
	n, err := f.Switch(context.Background(), []string{"new@rxh.nhs.example"})
	require.NoError(t, err)
	require.Equal(t, 1, n)

	after, err := os.Stat(path)
	require.NoError(t, err)
	require.False(t, os.SameFile(before, after), "a new file is renamed into place")
	got, err := io.ReadAll(reader)
	require.NoError(t, err)
	require.Equal(t, old, string(got), "the old file stays intact for its readers")
	require.Equal(t, old+"new@rxh.nhs.example "+nexthop+"\n", read(t, path))
	onlyFiles(t, dir, "transport")
}

func TestFileMissing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "postfix", "transport")
	f := &routing.File{Path: path, Nexthop: nexthop}

	n, err := f.Revert(ctx, []string{"a@x.example"})
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "a no-op Revert creates nothing")

	n, err = f.Switch(ctx, []string{"a@x.example"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, "a@x.example "+nexthop+"\n", read(t, path))
	onlyFiles(t, filepath.Dir(path), "transport")
}

func TestFileRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	require.NoError(t, os.WriteFile(path, []byte(existing), 0o644))

	for _, nh := range []string{"", "smtp:[a] 25"} {
		f := &routing.File{Path: path, Nexthop: nh}
		_, err := f.Switch(ctx, []string{"a@x.example"})
		require.ErrorContains(t, err, "nexthop", "nexthop %q", nh)
	}
	f := &routing.File{Path: path, Nexthop: nexthop}
	for _, addr := range []string{"", "a b@x.example", "a@x.example\nevil@x.example smtp:[evil]", "#a@x.example"} {
		_, err := f.Switch(ctx, []string{"ok@x.example", addr})
		require.ErrorContains(t, err, "invalid address", "address %q", addr)
		_, err = f.Revert(ctx, []string{addr})
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
	_, err := f.Switch(context.Background(), []string{"a@x.example"})
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
			_, err := f.Switch(context.Background(), []string{fmt.Sprintf("u%02d@x.example", i)})
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
	onlyFiles(t, dir, "transport")
}

func TestNone(t *testing.T) {
	var r routing.Router = routing.None{}
	n, err := r.Switch(context.Background(), []string{"a@x.example"})
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = r.Revert(context.Background(), []string{"a@x.example"})
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, "none", r.Describe())
}
