// Package embedded records where a `starter demo` or `starter serve` on this
// machine keeps its worker configuration, so that other starter commands
// (report first of all) work against it with no configuration of their own.
//
// One small JSON file per Temporal address lives under
// $XDG_STATE_HOME/mailshift (default ~/.local/state/mailshift). It holds
// paths only, never a secret: the configuration it points to refers to its
// secrets the usual way.
package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Session is one embedded server's record.
type Session struct {
	// Kind is "demo" or "serve".
	Kind string `json:"kind"`
	// Address is the Temporal frontend address the session serves.
	Address   string `json:"address"`
	Namespace string `json:"namespace"`
	UIURL     string `json:"ui_url,omitempty"`
	// Config is the absolute path of the worker configuration (YAML).
	Config string `json:"config"`
	// WorkDir is where the session keeps its files, when it has one.
	WorkDir string    `json:"workdir,omitempty"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// Dir is where session records live.
func Dir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "mailshift"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("embedded: no state directory: set XDG_STATE_HOME or HOME: %w", err)
	}
	return filepath.Join(home, ".local", "state", "mailshift"), nil
}

func fileFor(dir, address string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, address)
	return filepath.Join(dir, "embedded-"+name+".json")
}

// Save records s, replacing any earlier record for the same address. The
// file is written whole and renamed, so a reader never sees half of it.
func Save(s Session) error {
	if s.Address == "" || s.Config == "" {
		return errors.New("embedded: a session needs an address and a configuration path")
	}
	if !filepath.IsAbs(s.Config) {
		abs, err := filepath.Abs(s.Config)
		if err != nil {
			return err
		}
		s.Config = abs
	}
	dir, err := Dir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := fileFor(dir, s.Address)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Lookup returns the record for address. ok is false when there is none, or
// when the configuration it names is gone (a demo without --keep removes its
// work directory when it ends).
func Lookup(address string) (s Session, ok bool, err error) {
	dir, err := Dir()
	if err != nil {
		return Session{}, false, err
	}
	b, err := os.ReadFile(fileFor(dir, address))
	if errors.Is(err, fs.ErrNotExist) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Session{}, false, fmt.Errorf("embedded: %s: %w", fileFor(dir, address), err)
	}
	if _, err := os.Stat(s.Config); err != nil {
		return s, false, nil
	}
	return s, true, nil
}

// Remove deletes the record for address if it is still the one pid wrote,
// so a session that ends does not remove its successor's record.
func Remove(address string, pid int) error {
	s, _, err := Lookup(address)
	if err != nil || s.PID != pid {
		return err
	}
	dir, err := Dir()
	if err != nil {
		return err
	}
	err = os.Remove(fileFor(dir, address))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
