// Package azuritetest starts Azurite, the Azure Storage emulator, for tests
// and benchmarks. Azurite comes from the repository's pinned npm install in
// tools/azurite (scripts/install-test-deps.sh runs `npm ci` there).
//
// Tests that need Azurite call Require: when Azurite is not installed it
// skips the test, unless the CI environment variable is set or
// MAILSHIFT_REQUIRE_AZURITE=1, in which case the test fails with the command
// that installs it.
package azuritetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Account and AccountKey are Azurite's well-known development account
// (published in Azurite's documentation; not a secret).
const (
	Account    = "devstoreaccount1"
	AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// ReadyTimeout bounds how long Start waits for Azurite's first HTTP answer.
// Startup was measured at 3–10 s on a loaded 2-core machine.
const ReadyTimeout = 60 * time.Second

// ErrNotInstalled is returned by Start when no Azurite install is found.
var ErrNotInstalled = errors.New("azurite is not installed: run `bash scripts/install-test-deps.sh` (npm ci in tools/azurite)")

// Server is a running Azurite blob service.
type Server struct {
	// BlobURL is the account's blob endpoint, http://127.0.0.1:<port>/devstoreaccount1.
	BlobURL string
	// Port is the blob service's TCP port on 127.0.0.1.
	Port int

	dir    string // --location: the data, kept across Restart
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	once   sync.Once
}

// ConnectionString is the devstoreaccount1 connection string for this server.
func (s *Server) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		Account, AccountKey, s.BlobURL)
}

// Close kills Azurite (SIGKILL to its process group) and waits for it.
func (s *Server) Close() {
	s.once.Do(func() {
		if s.cmd.Process != nil {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
		<-s.done
	})
}

// Restart SIGKILLs Azurite if it still runs (nothing of it runs to flush
// or release anything, as in a crash), then starts it again on the same port
// and data directory and waits until it answers. What it had persisted
// (containers, committed blobs, uncommitted blocks) is there again; but
// Azurite saves its metadata database only every 5 s, so what it
// acknowledged in the last 5 s before the kill is gone (Azure keeps an
// acknowledged write).
func (s *Server) Restart(ctx context.Context) error {
	s.Close()
	argv, err := Command()
	if err != nil {
		return err
	}
	n, err := startOn(ctx, argv, s.dir, s.Port)
	if err != nil {
		return err
	}
	s.cmd, s.stderr, s.done, s.once = n.cmd, n.stderr, n.done, sync.Once{}
	return nil
}

// Required reports whether a missing Azurite must fail tests rather than
// skip them: CI is set, or MAILSHIFT_REQUIRE_AZURITE=1.
func Required() bool {
	return os.Getenv("CI") != "" || os.Getenv("MAILSHIFT_REQUIRE_AZURITE") == "1"
}

// Command returns the argv that starts Azurite's blob service (without the
// listening options). It looks in $MAILSHIFT_AZURITE_DIR (a directory holding
// node_modules/azurite) if that is set, else in tools/azurite and the
// repository root, found by walking up from the working directory to go.mod.
func Command() ([]string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w (node not found on PATH)", ErrNotInstalled)
	}
	var dirs []string
	if d := os.Getenv("MAILSHIFT_AZURITE_DIR"); d != "" {
		dirs = append(dirs, d)
	} else if root, err := repoRoot(); err == nil {
		dirs = append(dirs, filepath.Join(root, "tools", "azurite"), root)
	}
	for _, d := range dirs {
		main := filepath.Join(d, "node_modules", "azurite", "dist", "src", "blob", "main.js")
		if _, err := os.Stat(main); err == nil {
			return []string{node, main}, nil
		}
	}
	return nil, fmt.Errorf("%w (looked in %s)", ErrNotInstalled, strings.Join(dirs, ", "))
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Start launches Azurite with its data under dir and waits until it answers.
// The caller must Close it.
func Start(ctx context.Context, dir string) (*Server, error) {
	argv, err := Command()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := startOn(ctx, argv, dir, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startOn(ctx context.Context, argv []string, dir string, port int) (*Server, error) {
	args := append(argv[1:len(argv):len(argv)],
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--location", dir, "--silent", "--disableTelemetry",
		// azblob v1.8.3 sends an API version newer than Azurite 3.37.0 knows.
		"--skipApiVersionCheck")
	cmd := exec.Command(argv[0], args...)
	cmd.Dir = dir
	stderr := &lockedBuffer{}
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("azurite: start %s: %w", argv[1], err)
	}
	s := &Server{
		BlobURL: fmt.Sprintf("http://127.0.0.1:%d/%s", port, Account),
		Port:    port,
		dir:     dir,
		cmd:     cmd,
		stderr:  stderr,
		done:    make(chan struct{}),
	}
	go func() { _ = cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(ReadyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.BlobURL+"?comp=list", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return s, nil // any HTTP answer (403 without a signature) means it is serving
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("azurite exited before it was ready (port %d): %s", port, s.stderr.tail())
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("azurite did not answer on port %d within %s: %s", port, ReadyTimeout, s.stderr.tail())
		}
	}
}

// Require starts a private Azurite for one test (data in t.TempDir(), killed
// at cleanup). See the package doc for what happens when it is not installed.
func Require(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	s, err := Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("azurite: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// SkipIfMissing skips (or, when Required, fails) t if Azurite is not installed.
func SkipIfMissing(t testing.TB) {
	t.Helper()
	if _, err := Command(); err != nil {
		if Required() {
			t.Fatalf("%v; Azurite is required here (CI or MAILSHIFT_REQUIRE_AZURITE=1 is set)", err)
			return
		}
		t.Skipf("%v; skipping (set MAILSHIFT_REQUIRE_AZURITE=1 to make this a failure)", err)
	}
}

// Shared is one Azurite started on first use and kept for the whole test
// binary; a package's TestMain calls Close after m.Run.
type Shared struct {
	mu  sync.Mutex
	s   *Server
	dir string
	err error
}

// Get returns the shared server, starting it on first call; it skips or
// fails t as Require does.
func (sh *Shared) Get(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.s == nil && sh.err == nil {
		sh.dir, sh.err = os.MkdirTemp("", "azurite-*")
		if sh.err == nil {
			sh.s, sh.err = Start(context.Background(), sh.dir)
		}
	}
	if sh.err != nil {
		t.Fatalf("azurite: %v", sh.err)
	}
	return sh.s
}

// Close stops the shared server, if it was started, and removes its data.
func (sh *Shared) Close() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.s != nil {
		sh.s.Close()
		sh.s = nil
	}
	if sh.dir != "" {
		_ = os.RemoveAll(sh.dir)
		sh.dir = ""
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 { // keep the tail only
		l.b.Next(l.b.Len() - 32<<10)
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.b.String())
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}
