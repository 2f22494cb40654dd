package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/embedded"
	"github.com/mailshift/mailshift/internal/progress"
)

// ConfigFile is the name of the worker configuration the demo writes into
// its work directory.
const ConfigFile = "mailshift.yaml"

// writeConfig writes cfg as <dir>/mailshift.yaml, the file a separate
// worker or `starter report --config` would read. Its secrets are the
// demo's file: references (the password files beside it), never values.
func writeConfig(dir string, cfg *config.Config) (string, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("demo worker configuration: %w", err)
	}
	path := filepath.Join(dir, ConfigFile)
	head := "# The demo's worker configuration, written by `starter demo`; its mail servers\n" +
		"# live in the demo's process and are gone when it ends.\n"
	if err := os.WriteFile(path, append([]byte(head), b...), 0o600); err != nil {
		return "", fmt.Errorf("demo worker configuration: %w", err)
	}
	return path, nil
}

// saveSession records the running demo for commands that take no
// configuration (starter report). With the work directory going away at
// the end the record goes too; otherwise it stays after the demo ends, so
// reports can still be read from the staging store it points to (the next
// demo or serve on the same address replaces it).
func (e *Env) saveSession(removeAtEnd bool) error {
	s := embedded.Session{
		Kind: "demo", Address: e.Server.FrontendAddr(), Namespace: e.Server.Namespace(), UIURL: e.Server.UIURL(),
		Config: e.ConfigPath, WorkDir: e.WorkDir, PID: os.Getpid(), Started: time.Now().UTC(),
	}
	if err := embedded.Save(s); err != nil {
		return fmt.Errorf("recording the demo session: %w", err)
	}
	if removeAtEnd {
		// e.stops run in reverse: this runs before the work directory is
		// removed, after everything started later has stopped.
		e.stops = append(e.stops, func() { _ = embedded.Remove(s.Address, s.PID) })
	}
	return nil
}

// reportHint is the pasteable report command printed at the end.
func (e *Env) reportHint(requested string, workDirGoes bool) string {
	if len(e.Inputs) == 0 {
		return ""
	}
	codes := make([]string, len(e.Inputs))
	for i, in := range e.Inputs {
		codes[i] = in.Code
	}
	org := codes[0]
	cmd := "starter report " + progress.ShellQuote(org) + " --format html --out " +
		progress.ShellQuote(filepath.Join(e.WorkDir, org+"-report.html"))
	// report finds the demo by the address it would dial; the demo's
	// default is also the client's (localhost and 127.0.0.1 are one).
	if addr := e.Server.FrontendAddr(); requested != "" && requested != "127.0.0.1:7233" {
		cmd += " --address " + progress.ShellQuote(addr)
	}
	what := fmt.Sprintf("HTML report (progress charts, skipped items, score, failures) of one organization (%s)", strings.Join(codes, ", "))
	if workDirGoes {
		return fmt.Sprintf("\n%s: this run's work directory is removed as it ends; run the demo with --keep or --workdir DIR, then\n  go run ./%s", what, cmd)
	}
	return fmt.Sprintf("\n%s, from another terminal (no --config needed):\n  go run ./%s", what, cmd)
}
