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
