package testsuite

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/workerapp"
	"github.com/mailshift/mailshift/workflows"
)

// TestReRunLeavesUnchangedMailboxesAlone runs one organization four times
// between two Dovecots. The second run finds every mailbox unchanged since
// its validation: no Mailbox workflow, nothing copied, the same score. Then
// one source mailbox gets mail, one target mailbox loses a message and one
// target mailbox gets mail delivered there: the third run takes exactly
// those three through the passes (the new mail copied, the lost message
// copied again, the target's own mail reported and kept) and leaves the
// others alone. The fourth run finds all of them unchanged again.
func TestReRunLeavesUnchangedMailboxesAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Dovecot and an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	est := estate.Generate(estate.Spec{Seed: 5, LargeItems: -1, Orgs: []estate.OrgSpec{{Code: "UNC", Name: "Unchanged Trust", Mailboxes: 5, MeanMessages: 40}}})
	servers := dovecotServers(t, est)
	cfgPath := workerConfig(t, est, servers.srcURL, servers.tgtURL, 16, "")
	_, c := embeddedServer(t, ctx)
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	acts, err := workerapp.Build(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	w := worker.New(c, workflows.TaskQueue, workerapp.WorkerOptions(worker.Options{}))
	workerapp.Register(w, acts)
	require.NoError(t, w.Start())
	defer w.Stop()

	org := est.Orgs[0]
	in := workflows.OrganizationInput{Code: org.Code, Name: org.Name, SourceEndpoint: "source", TargetEndpoint: "target", Concurrency: 4}
	for _, mb := range org.Mailboxes {
		in.Mailboxes = append(in.Mailboxes, workflows.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
	}
	n := len(in.Mailboxes)
	run := func(label string) workflows.Progress {
		t.Helper()
		_, err := control.Start(ctx, c, workflows.TaskQueue, in)
		require.NoError(t, err, label)
		p, err := control.Result(ctx, c, in.Code)
		require.NoError(t, err, label)
		require.True(t, p.Validated(), "%s: %s %s %v", label, p.Phase, p.Reason, p.Failures)
		require.Equal(t, n, p.MailboxesDone, label)
		return p
	}
	first := run("first")
	require.Zero(t, first.MailboxesUnchanged)
	require.Positive(t, first.Messages)

	second := run("second")
	require.Equal(t, n, second.MailboxesUnchanged, "nothing changed on either side")
	require.Zero(t, second.MailboxRuns, "no Mailbox workflow ran")
	require.Zero(t, second.Messages)
	require.Equal(t, first.Consistency, second.Consistency)
	require.Equal(t, first.ConsistencyCounts, second.ConsistencyCounts)
	require.Equal(t, first.TargetMessages, second.TargetMessages)
	rep, err := servers.verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())

	mbs := org.Mailboxes
	srcInbox := func(i int) uint32 { return inboxCount(ctx, t, servers.src.Addr(), mbs[i].User, mbs[i].Password) }
	tgtInbox := func(i int) uint32 { return inboxCount(ctx, t, servers.tgt.Addr(), mbs[i].User, mbs[i].Password) }
	appendTo(t, servers.src.Addr(), mbs[0].User, mbs[0].Password, "<late@source.example>")
	expungeFirst(t, servers.tgt.Addr(), mbs[1].User, mbs[1].Password, 1)
	appendTo(t, servers.tgt.Addr(), mbs[2].User, mbs[2].Password, "<delivered@target.example>")
	require.Equal(t, srcInbox(1)-1, tgtInbox(1))

	third := run("third")
	require.Equal(t, n-3, third.MailboxesUnchanged, "the three changed mailboxes take the passes")
	require.Positive(t, third.MailboxRuns)
	require.EqualValues(t, 2, third.Messages, "the new source message and the message the target lost")
	require.Equal(t, srcInbox(0), tgtInbox(0))
	require.Equal(t, srcInbox(1), tgtInbox(1))
	require.Equal(t, srcInbox(2)+1, tgtInbox(2), "mail delivered to the target is kept")
	require.Equal(t, 1, third.RulesFired[workflows.RuleExtra], "and reported")

	fourth := run("fourth")
	require.Equal(t, n, fourth.MailboxesUnchanged)
	require.Zero(t, fourth.MailboxRuns)
	require.Equal(t, third.ConsistencyCounts, fourth.ConsistencyCounts, "each keeps the score of its last validation")
}

func login(t *testing.T, addr, user, password string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	require.NoError(t, err)
	require.NoError(t, c.Login(user, password).Wait())
	t.Cleanup(func() { c.Close() })
	return c
}

func inboxCount(ctx context.Context, t *testing.T, addr, user, password string) uint32 {
	t.Helper()
	c := login(t, addr, user, password)
	defer func() { c.Logout().Wait() }()
	d, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	require.NoError(t, err)
	return *d.NumMessages
}

func appendTo(t *testing.T, addr, user, password, messageID string) {
	t.Helper()
	c := login(t, addr, user, password)
	defer func() { c.Logout().Wait() }()
	msg := fmt.Sprintf("From: someone@elsewhere.example\r\nTo: %s\r\nSubject: after the migration\r\nMessage-ID: %s\r\n\r\nNew mail.\r\n", user, messageID)
	app := c.Append("INBOX", int64(len(msg)), nil)
	_, err := app.Write([]byte(msg))
	require.NoError(t, err)
	require.NoError(t, app.Close())
	_, err = app.Wait()
	require.NoError(t, err)
}

// expungeFirst expunges the first n messages of INBOX.
func expungeFirst(t *testing.T, addr, user, password string, n uint32) {
	t.Helper()
	c := login(t, addr, user, password)
	defer func() { c.Logout().Wait() }()
	_, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	require.NoError(t, c.Store(imap.SeqSet{{Start: 1, Stop: n}}, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close())
	require.NoError(t, c.Expunge().Close())
}
