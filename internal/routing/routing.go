// Package routing switches mail delivery for migrated addresses at cutover
// and reverts it on rollback.
package routing

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// Router changes where mail for addresses is delivered.
type Router interface {
	// Switch routes the addresses to the target; Revert routes them back.
	// Both are idempotent and return how many entries changed.
	Switch(ctx context.Context, addresses []string) (int, error)
	Revert(ctx context.Context, addresses []string) (int, error)
	Describe() string
}

// None records nothing; for runs where routing is switched outside mailshift.
type None struct{}

func (None) Switch(context.Context, []string) (int, error) { return 0, nil }
func (None) Revert(context.Context, []string) (int, error) { return 0, nil }
func (None) Describe() string                              { return "none" }

// File maintains a Postfix-style transport map ("address nexthop" lines).
// Each change rewrites the file atomically (temp file + rename), so Postfix
// (postmap) never reads half a file; lines it does not manage are kept.
type File struct {
	Path    string
	Nexthop string
	mu      sync.Mutex
}

// Describe implements Router.
func (f *File) Describe() string { return "file:" + f.Path }

// Switch implements Router.
func (f *File) Switch(_ context.Context, addresses []string) (int, error) {
	return f.edit(addresses, true)
}

// Revert implements Router.
func (f *File) Revert(_ context.Context, addresses []string) (int, error) {
	return f.edit(addresses, false)
}

// Entries reads the current map.
func (f *File) Entries() (map[string]string, error) {
	lines, err := f.read()
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

func (f *File) read() ([]string, error) {
	fh, err := os.Open(f.Path)
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

func (f *File) edit(addresses []string, add bool) (int, error) {
	// A map line is "key nexthop": an empty or blank-containing field would
	// write a line Postfix misreads and that the next edit does not recognise
	// (so Switch would append it again and again).
	if add && (f.Nexthop == "" || strings.ContainsFunc(f.Nexthop, unicode.IsSpace)) {
		return 0, fmt.Errorf("routing %s: invalid nexthop %q", f.Path, f.Nexthop)
	}
	for _, a := range addresses {
		if a == "" || strings.HasPrefix(a, "#") || strings.ContainsFunc(a, unicode.IsSpace) {
			return 0, fmt.Errorf("routing %s: invalid address %q", f.Path, a)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lines, err := f.read()
	if err != nil {
		return 0, fmt.Errorf("routing %s: %w", f.Path, err)
	}
	want := map[string]bool{}
	for _, a := range addresses {
		want[strings.ToLower(a)] = true
	}
	changed := 0
	var out []string
	present := map[string]bool{}
	for _, l := range lines {
		k, v, ok := entry(l)
		if ok && want[k] {
			if !add {
				changed++
				continue
			}
			present[k] = true
			if v != f.Nexthop {
				changed++
				l = k + " " + f.Nexthop
			}
		}
		out = append(out, l)
	}
	if add {
		var missing []string
		for a := range want {
			if !present[a] {
				missing = append(missing, a)
			}
		}
		sort.Strings(missing)
		for _, a := range missing {
			out = append(out, a+" "+f.Nexthop)
			changed++
		}
	}
	if changed == 0 {
		return 0, nil
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), ".transport-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	for _, l := range out {
		w.WriteString(l + "\n")
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return 0, err
	}
	return changed, os.Rename(tmp.Name(), f.Path)
}
