package testsuite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"

	"github.com/mailshift/mailshift/internal/devserver"
	"github.com/mailshift/mailshift/workflows"
)

// temporalHelperEnv, set to "<frontend address> <database file>", makes
// TestHelperTemporalServer run the embedded Temporal server.
const temporalHelperEnv = "MAILSHIFT_TEST_TEMPORAL_SERVER"

// TestHelperTemporalServer is not a test: startTemporal runs the test
// binary again with temporalHelperEnv set, and this runs the embedded
// Temporal server (no worker, no UI) in that child process until it is
// killed. A process of its own is what a server crash needs: SIGKILL, then
// a new process on the same SQLite file and port, with none of the first
// server's in-process state (the Temporal server's globals, its SQLite
// connections) left over.
func TestHelperTemporalServer(t *testing.T) {
	spec := os.Getenv(temporalHelperEnv)
	if spec == "" {
		t.Skip("helper process for the fault suite")
	}
	addr, db, _ := strings.Cut(spec, " ")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	srv, err := devserver.Start(ctx, devserver.Options{FrontendAddr: addr, UIAddr: devserver.UIOff, DBPath: db,
		SearchAttributes: workflows.SearchAttributeTypes()})
	cancel()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("ready", srv.FrontendAddr())
	select {} // until killed
}

// temporalProc is a Temporal server running in a child process.
type temporalProc struct {
	addr, db string
	cmd      *exec.Cmd
	out      *lockedBuffer // the server's stderr (warnings and errors)
	done     chan struct{}
}

// startTemporal starts the embedded Temporal server in a child process on
// the SQLite file db (created when missing) and the frontend address addr,
// and returns once it serves the namespace with mailshift's search
// attributes. The process is killed when the test ends.
func startTemporal(t *testing.T, addr, db string) *temporalProc {
	t.Helper()
	p := &temporalProc{addr: addr, db: db, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperTemporalServer$", "-test.count=1", "-test.timeout=0")
	p.cmd.Env = append(os.Environ(), temporalHelperEnv+"="+addr+" "+db)
	p.cmd.Stderr = p.out
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "ready") || strings.HasPrefix(l, "error:") {
				lines <- l
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("Temporal server (pid %d) stderr:\n%s", p.cmd.Process.Pid, p.out.String())
		}
	})
	select {
	case l := <-lines:
		require.True(t, strings.HasPrefix(l, "ready"), "Temporal server on %s: %s\n%s", addr, l, p.out.String())
	case <-p.done:
		t.Fatalf("Temporal server exited before it was ready:\n%s", p.out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("Temporal server not ready within 90 s:\n%s", p.out.String())
	}
	return p
}

// kill SIGKILLs the server: nothing of it runs to flush or release
// anything, as in a crash or an OOM kill.
func (p *temporalProc) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Temporal server still running 30 s after SIGKILL")
	}
}

// quietSDKLogger drops the SDK client's log: while the server is down on
// purpose its retries would only be noise.
func quietSDKLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}
