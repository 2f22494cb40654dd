//go:build unix

package devserver

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const holdDBEnv = "DEVSERVER_TEST_HOLD_DB"

// TestHelperHoldDB is not a test: TestDBClaimAcrossProcesses runs the test
// binary again with holdDBEnv set, and this claims the database in that
// child process and holds it until the child is killed.
func TestHelperHoldDB(t *testing.T) {
	path := os.Getenv(holdDBEnv)
	if path == "" {
		t.Skip("helper process for TestDBClaimAcrossProcesses")
	}
	if err := claimDB(path); err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("claimed")
	select {} // until killed
}

// TestDBClaimAcrossProcesses: a live process's claim refuses a second one
// and names the holder; once that process is SIGKILLed, without a chance to
// release anything, its claim (and the lock file it leaves) no longer
// blocks a start.
func TestDBClaimAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serve.db")
	ctx := t.Context()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperHoldDB$", "-test.count=1")
	child.Env = append(os.Environ(), holdDBEnv+"="+path)
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	child.Stderr = os.Stderr
	require.NoError(t, child.Start())
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); l == "claimed" || strings.HasPrefix(l, "error:") {
				lines <- l
				return
			}
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		require.Equal(t, "claimed", l)
	case <-time.After(30 * time.Second):
		t.Fatal("helper process did not claim the database within 30 s")
	}

	err = claimDB(path)
	require.Error(t, err, "a live process holds the database")
	require.Contains(t, err.Error(), fmt.Sprintf("in use by another running process (pid %d)", child.Process.Pid))

	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	_, err = os.Stat(path + ".lock")
	require.NoError(t, err, "the killed holder leaves its lock file behind")

	require.NoError(t, claimDB(path), "a killed holder's claim must not block a start")
	releaseDB(path)
	require.NoError(t, claimDB(path), "released claims can be taken again")
	releaseDB(path)
}
