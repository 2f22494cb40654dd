// Package staging stores what does not go straight to the target: items over
// the target's size limit, per-mailbox ledgers (checkpoints) and reports.
// Store has a local-directory implementation (the embedded default); the
// Azure Blob implementation plugs in behind the same interface.
package staging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// ErrNotFound is returned for a name that is not stored.
var ErrNotFound = errors.New("staging: not found")

// ErrExists is returned by Creator.Create for a name already stored.
var ErrExists = errors.New("staging: already exists")

// Creator is a store that can store an object only if its name is free,
// atomically against every other worker using the store: two workers that
// create one name at once see exactly one success. Mailbox claims rest on
// it (one writer per target mailbox).
type Creator interface {
	Create(ctx context.Context, name string, data []byte, meta map[string]string) (Object, error)
}

// Object describes a stored item.
type Object struct {
	Name     string            `json:"name"`
	Size     int64             `json:"size"`
	SHA256   string            `json:"sha256"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Store is a flat namespace of immutable-once-verified objects.
type Store interface {
	// Put streams r into name, verifying and recording its SHA-256. If name
	// already holds an object with the same hash, Put is a no-op.
	Put(ctx context.Context, name string, r io.Reader, meta map[string]string) (Object, error)
	// Get opens an object; the reader fails at EOF if the content does not
	// match the recorded hash.
	Get(ctx context.Context, name string) (io.ReadCloser, Object, error)
	Stat(ctx context.Context, name string) (Object, error)
	Delete(ctx context.Context, name string) error
	List(ctx context.Context, prefix string) ([]Object, error)
	// Describe names the store for humans ("local:/var/lib/mailshift").
	Describe() string
}

// Name builds a deterministic object name from path components, escaping
// each so folder names with "/", spaces or non-ASCII letters stay one level.
func Name(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = url.PathEscape(p)
		if p == "." || p == ".." { // would not be a valid segment
			esc[i] = strings.ReplaceAll(p, ".", "%2E")
		}
	}
	return strings.Join(esc, "/")
}

// ItemName is where a skipped item is staged:
// <org>/<mailbox>/<folder>/<uidvalidity>/<uid>.eml
func ItemName(org, mailbox, folder string, uidValidity, uid uint32) string {
	return Name(org, mailbox, folder, fmt.Sprint(uidValidity), fmt.Sprintf("%d.eml", uid))
}

// LedgerName is the per-mailbox checkpoint.
func LedgerName(org, mailbox string) string { return Name(org, mailbox, "ledger.json") }

// DigestPrefix is where a mailbox's digest segments are kept: one per
// folder pass.
func DigestPrefix(org, mailbox string) string { return Name(org, mailbox, "digests") + "/" }

// ReportName is the per-mailbox report of a pass.
func ReportName(org, mailbox, pass string) string {
	return Name(org, mailbox, "report-"+pass+".json")
}

// ValidName rejects names that could escape a directory or are empty.
func ValidName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") {
		return fmt.Errorf("staging: invalid object name %q", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("staging: invalid object name %q", name)
		}
	}
	return nil
}

// ErrCorrupt is wrapped by the error a Get reader returns at EOF when the
// content does not match the recorded SHA-256 (or size), and by Verify.
var ErrCorrupt = errors.New("staging: content does not match its recorded hash")

// ErrAuth is wrapped by errors caused by rejected credentials or missing
// permissions (HTTP 401/403, AuthenticationFailed, AuthorizationFailure...).
// Retrying does not help: activities should make such errors non-retryable.
var ErrAuth = errors.New("staging: authentication or authorization failed")

// Restager is implemented by stores whose Put may be a no-op because the
// recorded hash matches: Restage writes unconditionally, replacing a copy the
// caller knows to be bad (e.g. a Get that failed with ErrCorrupt).
type Restager interface {
	Restage(ctx context.Context, name string, r io.Reader, meta map[string]string) (Object, error)
}

// Restage rewrites name from r even if the store's record claims it already
// holds that content. Stores without Restager are handled by Delete then Put.
func Restage(ctx context.Context, s Store, name string, r io.Reader, meta map[string]string) (Object, error) {
	if rs, ok := s.(Restager); ok {
		return rs.Restage(ctx, name, r, meta)
	}
	if err := s.Delete(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
		return Object{}, err
	}
	return s.Put(ctx, name, r, meta)
}

// Verify reads an object to its end and checks it against its recorded hash.
// A mismatch is reported as an error wrapping ErrCorrupt.
func Verify(ctx context.Context, s Store, name string) (Object, error) {
	rc, o, err := s.Get(ctx, name)
	if err != nil {
		return Object{}, err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return o, err
	}
	return o, nil
}

// ReservedMetadataPrefix starts the metadata keys a store records for itself;
// callers may not use it.
const ReservedMetadataPrefix = "mailshift_"

// ValidMetadata checks caller metadata: keys are lower-case ASCII identifiers
// ([a-z_][a-z0-9_]*, at most 64 bytes, not starting with "mailshift_") so that
// every store (Azure metadata keys are C# identifiers and case-insensitive)
// keeps them unchanged. Values are any UTF-8 text.
func ValidMetadata(meta map[string]string) error {
	for k := range meta {
		ok := k != "" && len(k) <= 64 && !strings.HasPrefix(k, ReservedMetadataPrefix)
		for i := 0; ok && i < len(k); i++ {
			c := k[i]
			ok = c == '_' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9'
		}
		if !ok {
			return fmt.Errorf("staging: metadata key %q: want a lower-case identifier ([a-z_][a-z0-9_]*, not %s...)", k, ReservedMetadataPrefix)
		}
	}
	return nil
}
