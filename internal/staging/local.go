package staging

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Local stores objects as files under a root directory, each with a
// "<name>.meta.json" sidecar holding its hash and metadata.
type Local struct {
	root string
}

const metaSuffix = ".meta.json"

// NewLocal creates the root directory if needed.
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	return &Local{root: abs}, nil
}

// Describe implements Store.
func (l *Local) Describe() string { return "local:" + l.root }

// Root is the directory holding the objects.
func (l *Local) Root() string { return l.root }

func (l *Local) path(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(name)), nil
}

// Put implements Store.
func (l *Local) Put(ctx context.Context, name string, r io.Reader, meta map[string]string) (Object, error) {
	p, err := l.path(name)
	if err != nil {
		return Object{}, err
	}
	if err := ValidMetadata(meta); err != nil {
		return Object{}, err
	}
	// The directory usually exists already (a mailbox's ledger is put
	// many times): create it only when the first try says it is missing.
	tmp, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return Object{}, err
		}
		tmp, err = os.CreateTemp(filepath.Dir(p), ".put-*")
	}
	if err != nil {
		return Object{}, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Object{}, fmt.Errorf("staging put %s: %w", name, err)
	}
	obj := Object{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Metadata: meta}
	if old, err := l.Stat(ctx, name); err == nil && old.SHA256 == obj.SHA256 && old.Size == obj.Size {
		if fi, err := os.Stat(p); err == nil && fi.Size() == obj.Size {
			return old, nil
		}
	}
	// Data first, then its description: a crash in between leaves new data
	// with the old hash, which Get refuses and the next Put rewrites. The
	// other order would let a later identical Put trust stale data.
	if err := os.Rename(tmp.Name(), p); err != nil {
		return Object{}, err
	}
	mb, _ := json.Marshal(obj)
	if err := writeAtomic(p+metaSuffix, mb); err != nil {
		return Object{}, err
	}
	return obj, nil
}

// Create implements Creator. The data goes to a temporary file that is then
// hard-linked to the name: link(2) fails if the name exists, so of two
// creators exactly one wins, on any POSIX file system (NFS included).
func (l *Local) Create(ctx context.Context, name string, data []byte, meta map[string]string) (Object, error) {
	p, err := l.path(name)
	if err != nil {
		return Object{}, err
	}
	if err := ValidMetadata(meta); err != nil {
		return Object{}, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return Object{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".create-*")
	if err != nil {
		return Object{}, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Object{}, fmt.Errorf("staging create %s: %w", name, err)
	}
	sum := sha256.Sum256(data)
	obj := Object{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Metadata: meta}
	// The description follows the link, so for a moment the name exists
	// without it: Stat and Get then say ErrNotFound, and a reader that lost
	// the race to create asks again (activities' claims do).
	mb, _ := json.Marshal(obj)
	if err := os.Link(tmp.Name(), p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Object{}, fmt.Errorf("staging create %s: %w", name, ErrExists)
		}
		return Object{}, fmt.Errorf("staging create %s: %w", name, err)
	}
	if err := writeAtomic(p+metaSuffix, mb); err != nil {
		return Object{}, err
	}
	return obj, nil
}

// Restage implements Restager: it drops the object's record first, so that
// Put cannot take the (possibly corrupt) file for a match, then puts.
func (l *Local) Restage(ctx context.Context, name string, r io.Reader, meta map[string]string) (Object, error) {
	p, err := l.path(name)
	if err != nil {
		return Object{}, err
	}
	if err := os.Remove(p + metaSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Object{}, fmt.Errorf("staging restage %s: %w", name, err)
	}
	return l.Put(ctx, name, r, meta)
}

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".meta-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Stat implements Store.
func (l *Local) Stat(_ context.Context, name string) (Object, error) {
	p, err := l.path(name)
	if err != nil {
		return Object{}, err
	}
	b, err := os.ReadFile(p + metaSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Object{}, err
	}
	var o Object
	if err := json.Unmarshal(b, &o); err != nil {
		return Object{}, fmt.Errorf("staging %s: corrupt metadata: %w", name, err)
	}
	if _, err := os.Stat(p); err != nil {
		return Object{}, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return o, nil
}

// Get implements Store.
func (l *Local) Get(ctx context.Context, name string) (io.ReadCloser, Object, error) {
	o, err := l.Stat(ctx, name)
	if err != nil {
		return nil, Object{}, err
	}
	p, _ := l.path(name)
	f, err := os.Open(p)
	if err != nil {
		return nil, Object{}, err
	}
	return &verifyingReader{f: f, h: sha256.New(), want: o.SHA256, name: name}, o, nil
}

// Delete implements Store.
func (l *Local) Delete(_ context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	err1 := os.Remove(p)
	err2 := os.Remove(p + metaSuffix)
	if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return nil
}

// List implements Store.
func (l *Local) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(l.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, metaSuffix) {
			return err
		}
		rel, _ := filepath.Rel(l.root, strings.TrimSuffix(path, metaSuffix))
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		o, err := l.Stat(ctx, name)
		if err != nil {
			return nil // a half-written object is not listed
		}
		out = append(out, o)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

type verifyingReader struct {
	f    *os.File
	h    hash.Hash
	want string
	name string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("staging %s: content hash %s does not match recorded %s: %w", v.name, got, v.want, ErrCorrupt)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.f.Close() }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
