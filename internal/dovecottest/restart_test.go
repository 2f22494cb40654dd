package dovecottest_test

import (
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/dovecottest"
)

// TestKillAndRestart: after Kill (every process SIGKILLed) and after
// KillMaster (the master alone), Restart brings the instance back on the
// same port with its users and mail. A session dies with Kill; with
// KillMaster its imap process outlives the master and goes on serving
// beside the new one, as Dovecot's do.
func TestKillAndRestart(t *testing.T) {
	inst := dovecottest.StartT(t, dovecottest.Options{MailFsync: "never"})
	if err := inst.AddUser("ann@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	addr := inst.Addr()
	c := login(t, inst, "ann@example.org", "pw")
	msg := "From: a@example.org\r\nSubject: kept\r\n\r\nbody\r\n"
	w := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, kill := range []struct {
		name            string
		f               func() error
		sessionSurvives bool
	}{{"Kill", inst.Kill, false}, {"KillMaster", inst.KillMaster, true}} {
		if err := kill.f(); err != nil {
			t.Fatalf("%s: %v", kill.name, err)
		}
		if err := inst.Restart(); err != nil {
			t.Fatalf("Restart after %s: %v (locks: %v)", kill.name, err, inst.LockFiles())
		}
		if inst.Addr() != addr {
			t.Fatalf("Restart after %s moved the instance from %s to %s", kill.name, addr, inst.Addr())
		}
		if err := c.Noop().Wait(); (err == nil) != kill.sessionSurvives {
			t.Fatalf("after %s and Restart, NOOP on the earlier session: %v", kill.name, err)
		}
		c = login(t, inst, "ann@example.org", "pw")
		st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if *st.NumMessages != 1 {
			t.Fatalf("after %s and Restart INBOX holds %d messages, want 1", kill.name, *st.NumMessages)
		}
	}
	if err := inst.Restart(); err == nil {
		t.Fatal("Restart of a running instance succeeded")
	}
}
