//go:build unix

package devserver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockDBFile takes an exclusive flock on path+".lock", so that two
// processes never run a server on one database file: both would claim its
// only history shard and take turns stealing it. The kernel drops a flock
// when its holder dies, however it dies, so a process killed with SIGKILL
// leaves no claim behind to block the next start; the pid written into the
// file only names the holder in the error. The lock file itself stays: it
// is never removed, because unlinking a lock file that another process has
// just opened would let two processes hold "the" lock on two inodes.
func lockDBFile(path string) (*os.File, error) {
	lp := path + ".lock"
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("devserver: database lock %s: %w", lp, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := readHolder(f)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("devserver: database %s is in use by another running process%s: stop it first, or choose another database", path, holder)
		}
		return nil, fmt.Errorf("devserver: locking database %s (%s): %w", path, lp, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// readHolder returns " (pid N)" as recorded by the lock's holder, or "".
func readHolder(f *os.File) string {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 64))
	if err != nil {
		return ""
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		return fmt.Sprintf(" (pid %d)", pid)
	}
	return ""
}
