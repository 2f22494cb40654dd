package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/progress"
	"github.com/mailshift/mailshift/workflows"
)

// Bounds of `status --watch`.
const (
	defaultWatchEvery = 2 * time.Second
	minWatchEvery     = time.Second
	// watchRoundTimeout bounds one listing, so a stuck server does not
	// freeze the display forever.
	watchRoundTimeout = 30 * time.Second
)

// watchFlag is --watch (every defaultWatchEvery) or --watch=N (seconds,
// or a duration such as 10s).
type watchFlag struct{ every time.Duration }

func (w *watchFlag) IsBoolFlag() bool { return true }

func (w *watchFlag) String() string {
	if w == nil || w.every == 0 {
		return ""
	}
	return w.every.String()
}

func (w *watchFlag) Set(s string) error {
	switch s {
	case "true":
		w.every = defaultWatchEvery
		return nil
	case "false":
		w.every = 0
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return fmt.Errorf("%q is neither seconds nor a duration", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d < minWatchEvery {
		return fmt.Errorf("%s: at least %s", d, minWatchEvery)
	}
	w.every = d
	return nil
}

// statusOptions are status's flags.
type statusOptions struct {
	filter    control.StatusFilter
	campaigns bool
	output    string
	watch     time.Duration
	address   string
}

func parseStatus(args []string) (statusOptions, error) {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var o statusOptions
	var w watchFlag
	fs.StringVar(&o.address, "address", "", "Temporal address")
	fs.StringVar(&o.filter.Phase, "phase", "", "only this MigrationPhase (e.g. PreStage, AwaitingCutover, Completed)")
	fs.StringVar(&o.filter.Wave, "wave", "", "only this wave")
	fs.BoolVar(&o.campaigns, "campaigns", true, "list Campaign workflows too, in their own section (not when organizations are named)")
	fs.StringVar(&o.output, "output", "text", "text or json (one JSON array)")
	fs.Var(&w, "watch", "redraw every 2 seconds (--watch=N: every N seconds) until Ctrl-C or everything shown has ended")
	pos, err := parseAnyOrder(fs, args)
	if err != nil {
		return o, err
	}
	o.filter.Codes, o.watch = pos, w.every
	switch {
	case o.output != "text" && o.output != "json":
		return o, fmt.Errorf("status: --output %q: text or json", o.output)
	case o.output == "json" && o.watch > 0:
		return o, errors.New("status: --watch redraws text; --output json prints one document (run it again to poll)")
	}
	return o, nil
}

func runStatus(ctx context.Context, args []string) error {
	o, err := parseStatus(args)
	if err != nil {
		return err
	}
	c, err := dial(o.address)
	if err != nil {
		return err
	}
	defer c.Close()
	board := progress.NewBoard(os.Stdout)
	board.Address = o.address
	if o.watch > 0 {
		return watchStatus(ctx, c, o, board, os.Stdout)
	}
	orgs, camps, err := control.ListStatus(ctx, c, o.filter, o.campaigns)
	if err != nil {
		return err
	}
	warnMissingKeys(orgs)
	if o.output == "json" {
		return progress.WriteStatusJSON(os.Stdout, orgs, camps)
	}
	board.WriteStatusText(os.Stdout, orgs, camps, time.Now())
	return nil
}

// watchStatus lists and redraws every o.watch until ctx ends (Ctrl-C) or
// every organization and campaign shown has ended. On a terminal it
// redraws the screen; elsewhere it prints the listing again only when
// something other than the transfer rate changed.
func watchStatus(ctx context.Context, c client.Client, o statusOptions, board *progress.Board, w io.Writer) error {
	var last []byte
	for {
		rctx, cancel := context.WithTimeout(ctx, watchRoundTimeout)
		orgs, camps, err := control.ListStatus(rctx, c, o.filter, o.campaigns)
		cancel()
		if ctx.Err() != nil {
			return nil // Ctrl-C ends a watch
		}
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		now := time.Now()
		board.WriteStatusText(&buf, orgs, camps, now)
		if board.TTY {
			fmt.Fprintf(w, "\x1b[H\x1b[2J%s  (every %s, Ctrl-C to stop)\n%s", now.Format("15:04:05"), o.watch, buf.Bytes())
		} else if key, _ := json.Marshal(progress.StatusRows(orgs, camps)); !bytes.Equal(key, last) {
			fmt.Fprintf(w, "--- %s\n%s", now.Format(time.RFC3339), buf.Bytes())
			last = key
		}
		if allEnded(orgs, camps) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.watch):
		}
	}
}

func allEnded(orgs []workflows.Progress, camps []workflows.CampaignProgress) bool {
	for _, r := range progress.StatusRows(orgs, camps) {
		if !r.Terminal {
			return false
		}
	}
	return true
}

// warnMissingKeys says once, on stderr, when organizations are shown from
// their search attributes only because their results are encrypted with
// keys this starter does not have (no counts of messages, no reasons).
func warnMissingKeys(orgs []workflows.Progress) {
	for _, p := range orgs {
		if strings.Contains(p.Reason, codec.ErrUnknownKey.Error()) {
			fmt.Fprintln(os.Stderr, "starter: the workflows' payloads are encrypted and this command has no keys for them, so organizations show only what their search attributes say; set MAILSHIFT_CONFIG to the worker's configuration")
			return
		}
	}
}
