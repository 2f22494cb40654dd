// Package secrets resolves secret references ("env:NAME", "file:/path") into
// values at the moment an activity needs them, so that workflow inputs, results
// and histories only ever carry the reference or a user name.
package secrets

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// Ref is a reference to a secret: "env:VAR" or "file:/path/to/file".
// The file must not be readable by group or others.
type Ref string

// ErrNotFound is returned when a password file has no entry for a user.
var ErrNotFound = errors.New("secret not found")

// Validate checks the syntax of a reference without reading it.
func (r Ref) Validate() error {
	switch {
	case r == "":
		return errors.New("empty secret reference (want env:VAR or file:/path)")
	case strings.HasPrefix(string(r), "env:") && len(r) > 4:
		return nil
	case strings.HasPrefix(string(r), "file:") && len(r) > 5:
		return nil
	}
	// The value itself is never echoed: a user may have pasted a password here.
	return fmt.Errorf("secret reference must start with env: or file: (got a %d-character value; inline secrets are not accepted)", len(r))
}

// String never prints more than the reference itself.
func (r Ref) String() string { return string(r) }

// Resolve returns the secret's bytes. Surrounding whitespace of a whole
// single-value secret is the caller's business; Resolve returns it verbatim.
func (r Ref) Resolve() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if name, ok := strings.CutPrefix(string(r), "env:"); ok {
		v, ok := os.LookupEnv(name)
		if !ok {
			return nil, fmt.Errorf("secret %s: environment variable %s is not set", r, name)
		}
		return []byte(v), nil
	}
	path := strings.TrimPrefix(string(r), "file:")
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", r, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret %s: file mode %04o lets others read it; chmod 600 %s", r, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", r, err)
	}
	return b, nil
}

// ResolveString resolves a single-value secret and trims one trailing newline,
// the way `echo secret > file` leaves it.
func (r Ref) ResolveString() (string, error) {
	b, err := r.Resolve()
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// PasswordTable parses "user:password" lines (or "user<TAB>password"); blank
// lines and lines starting with # are ignored. The first separator splits, so
// passwords may contain ':'.
func PasswordTable(data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(s) == "" || strings.HasPrefix(strings.TrimSpace(s), "#") {
			continue
		}
		i := strings.IndexAny(s, ":\t")
		if i <= 0 {
			return nil, fmt.Errorf("password table line %d: want user:password", line)
		}
		user := strings.TrimSpace(s[:i])
		if _, dup := out[user]; dup {
			return nil, fmt.Errorf("password table line %d: user %q listed twice", line, user)
		}
		out[user] = s[i+1:]
	}
	return out, sc.Err()
}

// tables caches parsed password tables by reference. A worker logs in
// twice per mailbox pass; re-reading a table of 50,000 users every time
// made logins quadratic in the organization's size.
var tables struct {
	sync.Mutex
	m map[Ref]cachedTable
}

type cachedTable struct {
	stamp string // file: mode, size and modification time; env: the value
	tab   map[string]string
}

// Table resolves a password table (see PasswordTable). The parsed table is
// kept and used again while the file's size, mode, modification time,
// inode and change time (or the variable's value) stay the same, so a
// rotated password is seen at the next login. The returned map must not be changed.
func (r Ref) Table() (map[string]string, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var stamp string
	if name, ok := strings.CutPrefix(string(r), "env:"); ok {
		v, set := os.LookupEnv(name)
		stamp = fmt.Sprint(set, ":", v) // unset must not look like empty
	} else {
		st, err := os.Stat(strings.TrimPrefix(string(r), "file:"))
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", r, err)
		}
		stamp = fmt.Sprintf("%d/%d/%o", st.Size(), st.ModTime().UnixNano(), st.Mode()) + changeStamp(st)
	}
	tables.Lock()
	c, ok := tables.m[r]
	tables.Unlock()
	if ok && c.stamp == stamp {
		return c.tab, nil
	}
	b, err := r.Resolve()
	if err != nil {
		return nil, err
	}
	tab, err := PasswordTable(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	tables.Lock()
	if tables.m == nil {
		tables.m = map[Ref]cachedTable{}
	}
	tables.m[r] = cachedTable{stamp: stamp, tab: tab}
	tables.Unlock()
	return tab, nil
}
