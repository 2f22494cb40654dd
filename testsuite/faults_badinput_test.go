package testsuite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// badInventories are the inventory check's bad-input cases: each is an
// inventory whose third line (the second mailbox) is broken one way, with
// the words its error must hold (the line and the field).
var badInventories = []struct {
	name, file string
	row        []byte
	want       []string
}{
	{"a 10 MB field", "big.csv", []byte("ACME,b@acme.example,b@acme.example,b@acme.example,1," + strings.Repeat("x", 10<<20)),
		[]string{"line 3", "field organization_name", "over the limit"}},
	{"Latin-1 bytes in source_user", "latin1.csv", []byte("ACME,b@acme.example,j\xe9r\xf4me@acme.example,b@acme.example,1,Acme"),
		[]string{"line 3", "field source_user", "not valid UTF-8", "0xE9"}},
	{"non-UTF-8 organization code", "orgcode.csv", []byte("AC\xffME,b@acme.example,b@acme.example,b@acme.example,1,Acme"),
		[]string{"line 3", "field organization", "not valid UTF-8", "0xFF"}},
	{"an extra field past the header", "extra.csv", []byte("ACME,b@acme.example,b@acme.example,b@acme.example,1,Acme,surplus"),
		[]string{"line 3", "7 fields", "the header has 6"}},
	{"a NUL byte in source_user", "nul.csv", []byte("ACME,b@acme.example,b\x00@acme.example,b@acme.example,1,Acme"),
		[]string{"line 3", "field source_user", "U+0000"}},
}

// TestFaultSuiteBadInput runs the starter as a user would on broken
// inventories, with nothing else started (no Temporal server, no worker,
// no mail server): `starter plan` and `starter migrate` must both refuse
// before they contact anything, exit non-zero, and name the line and the
// field. The table it logs is docs/faults.md's second one.
func TestFaultSuiteBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the starter")
	}
	bin := buildStarter(t)
	dir := t.TempDir()
	// Nobody listens there: a migrate that got past the check would fail
	// to connect, with another message.
	nowhere := freeLoopbackAddr(t)
	var table strings.Builder
	table.WriteString("| bad input | command | exit status | error (stderr) |\n|---|---|---:|---|\n")
	for _, bc := range badInventories {
		inv := append([]byte("organization,mailbox,source_user,target_user,wave,organization_name\n"+
			"ACME,a@acme.example,a@acme.example,a@acme.example,1,Acme\n"), bc.row...)
		require.NoError(t, os.WriteFile(filepath.Join(dir, bc.file), append(inv, '\n'), 0o600))
		for _, args := range [][]string{
			{"plan", "--inventory", bc.file},
			{"migrate", "--inventory", bc.file, "--address", nowhere},
		} {
			code, stderr, took := runIn(t, dir, bin, args...)
			require.NotZero(t, code, "%s: starter %s succeeded", bc.name, args[0])
			for _, w := range bc.want {
				require.Contains(t, stderr, w, "%s: starter %s", bc.name, args[0])
			}
			require.NotContains(t, stderr, "Temporal", "%s: starter %s got past the check", bc.name, args[0])
			require.Less(t, took, 10*time.Second, "%s: a check before anything starts is fast", bc.name)
			fmt.Fprintf(&table, "| %s | `starter %s` | %d | `%s` |\n", bc.name, strings.Join(args[:3], " "), code, stderr)
		}
	}
	t.Logf("bad-input table (docs/faults.md):\n%s", table.String())
}

// runIn runs bin with args in dir and returns its exit status, its stderr
// (trimmed) and how long it took.
func runIn(t *testing.T, dir, bin string, args ...string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("starter %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), strings.TrimSpace(stderr.String()), took
}
