package dovecottest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/dovecottest"
)

// TestStaleDotlockOfALivePID measures what docs/faults.md explains: a
// dovecot-uidlist.lock left by a killed process whose PID now belongs to a
// live process (after a container restart, PIDs start again from 1) holds
// every save in that maildir until the lock file is 2 minutes old. It
// takes those 2 minutes, so it runs only with MAILSHIFT_DOVECOT_SLOW=1.
func TestStaleDotlockOfALivePID(t *testing.T) {
	if os.Getenv("MAILSHIFT_DOVECOT_SLOW") != "1" {
		t.Skip("takes Dovecot's 2-minute stale timeout; set MAILSHIFT_DOVECOT_SLOW=1")
	}
	inst := dovecottest.StartT(t, dovecottest.Options{Name: "dotlock"})
	if err := inst.AddUser("ann@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	appendOne := func() (time.Duration, error) {
		c := login(t, inst, "ann@example.org", "pw")
		defer c.Close()
		msg := "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n"
		start := time.Now()
		w := c.Append("INBOX", int64(len(msg)), nil)
		if _, err := w.Write([]byte(msg)); err != nil {
			return 0, err
		}
		if err := w.Close(); err != nil {
			return 0, err
		}
		_, err := w.Wait()
		return time.Since(start), err
	}
	if _, err := appendOne(); err != nil { // creates the maildir and its uidlist
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	// PID 1 is always alive: the leftover lock of a process whose PID was
	// reused.
	lock := filepath.Join(inst.MaildirOf("ann@example.org"), "dovecot-uidlist.lock")
	if err := os.WriteFile(lock, []byte(fmt.Sprintf("1:%s", host)), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		_ = os.Chown(lock, 65534, 65534) // the mail uid of a root-run instance
	}
	took, err := appendOne()
	t.Logf("APPEND with the lock of a live PID in place: %s, %v", took.Round(time.Millisecond), err)
	if took < 100*time.Second {
		t.Fatalf("the APPEND took %s: Dovecot no longer waits for a live PID's dotlock", took)
	}
	if err != nil && !strings.Contains(err.Error(), "Timeout while waiting for lock") {
		t.Fatalf("unexpected answer: %v", err)
	}
}
