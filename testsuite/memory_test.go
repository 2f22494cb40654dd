package testsuite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/workflows"
)

// bigMessage builds a deterministic message of about size bytes: headers and
// a base64 attachment, CRLF throughout.
func bigMessage(seed uint64, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Imaging <pacs@big.nhs.example>\r\nTo: ward%d@big.nhs.example\r\nSubject: CT series %d\r\n", seed, seed)
	fmt.Fprintf(&b, "Message-ID: <ct-%d@big.nhs.example>\r\nDate: Mon, 02 Jun 2025 10:00:00 +0100\r\nMIME-Version: 1.0\r\n", seed)
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSeries attached.\r\n")
	b.WriteString("--b1\r\nContent-Type: application/dicom\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
	raw := make([]byte, 57)
	line := make([]byte, 76)
	for b.Len() < size-64 {
		for i := range raw {
			raw[i] = byte(r.Uint32())
		}
		base64.StdEncoding.Encode(line, raw)
		b.Write(line)
		b.WriteString("\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

// vmHWM reads a process's peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// TestWorkerMemoryStaysBoundedWithEight150MBMessages moves eight 150 MB
// messages at once (eight mailboxes in parallel) through a real worker
// process and checks its peak RSS: messages are streamed, never held.
func TestWorkerMemoryStaysBoundedWithEight150MBMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1.2 GB through a worker process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dovecottest.RequireOrSkip(t)
	bin := buildWorker(t)

	const n, size = 8, 150 << 20
	est := &estate.Estate{Orgs: []estate.Org{{Code: "BIG", Name: "Imaging Trust", Domain: "big.nhs.example"}}}
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("radiology%d@big.nhs.example", i)
		est.Orgs[0].Mailboxes = append(est.Orgs[0].Mailboxes, estate.Mailbox{
			Address: addr, User: addr, Password: fmt.Sprintf("pw-%d", i),
			Folders: []estate.Folder{{Name: "INBOX", Messages: []estate.Message{{
				Raw: bigMessage(uint64(i), size), Flags: []imap.Flag{imap.FlagSeen}, Date: time.Date(2025, 6, 2, 10, 0, 0, 0, time.FixedZone("", 3600)),
			}}},
				// Dovecot creates these for every user; listed so that the
				// verifier knows their names on the target.
				{Name: "Sent", SpecialUse: imap.MailboxAttrSent}, {Name: "Junk", SpecialUse: imap.MailboxAttrJunk}, {Name: "Trash", SpecialUse: imap.MailboxAttrTrash}},
		})
	}
	// Two real Dovecots: the in-process servers hold all the mail in this
	// process and copy it whole to serve it, which made this test take
	// minutes of garbage collection.
	servers := dovecotServers(t, est)
	cfgPath := workerConfig(t, est, servers.srcURL, servers.tgtURL, 16, "limits: {max_message_size: 150MB}\n")
	// The Temporal server runs in a process of its own, so the peak
	// measured is the worker's alone and this process's 1.2 GB of test
	// mail never slows the heartbeats the server must answer.
	srv := startTemporal(t, freeLoopbackAddr(t), filepath.Join(t.TempDir(), "temporal.db"))
	c, err := client.Dial(client.Options{HostPort: srv.addr, Logger: quietSDKLogger()})
	require.NoError(t, err)
	defer c.Close()

	w := exec.Command(bin)
	w.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+srv.addr, "MAILSHIFT_CONFIG="+cfgPath, "MAILSHIFT_LOG_LEVEL=warn", "MAILSHIFT_METRICS_ADDR=127.0.0.1:0")
	w.Stderr = os.Stderr
	require.NoError(t, w.Start())
	defer func() { _ = w.Process.Kill(); _ = w.Wait() }()

	in := workflows.OrganizationInput{Code: "BIG", SourceEndpoint: "source", TargetEndpoint: "target", Concurrency: n}
	for _, mb := range est.Orgs[0].Mailboxes {
		in.Mailboxes = append(in.Mailboxes, workflows.MailboxSpec{Address: mb.Address, SourceUser: mb.User, TargetUser: mb.User})
	}
	start := time.Now()
	_, err = control.Start(ctx, c, workflows.TaskQueue, in)
	require.NoError(t, err)
	p, err := control.Result(ctx, c, "BIG")
	require.NoError(t, err)
	took := time.Since(start)
	hwm, err := vmHWM(w.Process.Pid)
	require.NoError(t, err)
	_ = w.Process.Signal(syscall.SIGTERM)
	require.True(t, p.Validated(), "%s %v", p.Phase, p.Failures)
	require.EqualValues(t, n, p.Messages)
	t.Logf("moved %d x %d MiB in %s (readiness, copy, validation); worker peak RSS %d MiB", n, size>>20, took.Round(time.Second), hwm>>20)
	fmt.Printf("memory: %d x %d MiB messages, 8 at once: worker peak RSS %.1f MiB (limit 256 MiB)\n", n, size>>20, float64(hwm)/(1<<20))
	require.Less(t, hwm, int64(256<<20), "worker peak RSS")

	rep, err := servers.verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
}
