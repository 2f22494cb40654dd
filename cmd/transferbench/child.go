package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/procstat"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/transfer"
)

// childJob is what the parent hands a re-executed child (as JSON on stdin):
// the child's peak RSS is then its own.
type childJob struct {
	Mode     string   `json:"mode"` // "mailshift" or "read"
	Src      string   `json:"src"`  // host:port
	Tgt      string   `json:"tgt"`
	Users    []string `json:"users"`
	Pass     []string `json:"passwords"`
	Parallel int      `json:"parallel"`
	Lanes    int      `json:"lanes"`  // folders of one mailbox at once (mailshift)
	Window   int      `json:"window"` // APPENDs in flight per lane (0: one at a time)
	// CheckpointDir keeps one checkpoint per mailbox; UseCheckpoint resumes
	// from it (a re-run); without it a pass starts from nothing.
	CheckpointDir string `json:"checkpoint_dir"`
	UseCheckpoint bool   `json:"use_checkpoint"`
}

type childResult struct {
	Messages   int64 `json:"messages"` // copied (mailshift) or read (read)
	Bytes      int64 `json:"bytes"`
	BodiesRead int64 `json:"bodies_read"`
	Matched    int64 `json:"matched"`
	Skipped    int64 `json:"skipped"`
	PeakRSSKB  int64 `json:"peak_rss_kb"` // VmHWM of the child itself
}

func runChild() error {
	var job childJob
	if err := json.NewDecoder(os.Stdin).Decode(&job); err != nil {
		return err
	}
	ctx := context.Background()
	var res childResult
	var mu atomicResult
	err := parallel(len(job.Users), job.Parallel, func(i int) error {
		switch job.Mode {
		case "mailshift":
			return childMailshift(ctx, job, i, &mu)
		case "read":
			return childRead(ctx, job, i, &mu)
		}
		return fmt.Errorf("unknown child mode %q", job.Mode)
	})
	res = mu.result()
	res.PeakRSSKB = procstat.PeakRSS(0) >> 10
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return err
	}
	return err
}

type atomicResult struct {
	messages, bytes, bodies, matched, skipped atomic.Int64
}

func (a *atomicResult) result() childResult {
	return childResult{Messages: a.messages.Load(), Bytes: a.bytes.Load(), BodiesRead: a.bodies.Load(), Matched: a.matched.Load(), Skipped: a.skipped.Load()}
}

func dialConn(ctx context.Context, hostport, user, pw string) (*imapconn.Conn, error) {
	addr, err := imapconn.ParseAddress("imap://" + hostport)
	if err != nil {
		return nil, err
	}
	return imapconn.Dial(ctx, addr, imapconn.Login{Username: user, Password: pw}, imapconn.Options{})
}

func childMailshift(ctx context.Context, job childJob, i int, acc *atomicResult) error {
	user, pw := job.Users[i], job.Pass[i]
	cpPath := filepath.Join(job.CheckpointDir, user+".json")
	var cp transfer.Checkpoint
	if job.UseCheckpoint {
		b, err := os.ReadFile(cpPath)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &cp); err != nil {
			return err
		}
	}
	// Like the activity: retry a pass that ended with a retryable error on
	// new connections from the checkpoint it reached.
	for attempt := 1; ; attempt++ {
		src, err := dialConn(ctx, job.Src, user, pw)
		if err != nil {
			return err
		}
		tgt, err := dialConn(ctx, job.Tgt, user, pw)
		if err != nil {
			src.Close()
			return err
		}
		var st transfer.Stats
		dial := func(ctx context.Context) (*imapconn.Conn, *imapconn.Conn, func(), error) {
			s, err := dialConn(ctx, job.Src, user, pw)
			if err != nil {
				return nil, nil, nil, err
			}
			t, err := dialConn(ctx, job.Tgt, user, pw)
			if err != nil {
				s.Close()
				return nil, nil, nil, err
			}
			return s, t, func() { s.Close(); t.Close() }, nil
		}
		appender := func(ctx context.Context) (*imapconn.Appender, error) {
			addr, err := imapconn.ParseAddress("imap://" + job.Tgt)
			if err != nil {
				return nil, err
			}
			return imapconn.DialAppender(ctx, addr, imapconn.Login{Username: user, Password: pw}, imapconn.Options{}, job.Window)
		}
		opts := transfer.Options{MaxLargeItems: -1, MaxBadItems: -1, SyncFlags: true, Lanes: job.Lanes, Dial: dial, AppendWindow: job.Window}
		if job.Window > 0 {
			opts.Appender = appender
		}
		cp, st, err = transfer.Run(ctx, src, tgt, cp, opts)
		src.Close()
		tgt.Close()
		acc.messages.Add(st.Copied)
		acc.bytes.Add(st.Bytes)
		acc.bodies.Add(st.BodiesRead)
		acc.matched.Add(st.Matched)
		acc.skipped.Add(int64(st.Skipped))
		b, _ := json.Marshal(cp)
		if werr := os.WriteFile(cpPath, b, 0o600); werr != nil && err == nil {
			err = werr
		}
		var ie *imapconn.Error
		if err != nil && attempt < 5 && errors.As(err, &ie) && !ie.Permanent {
			fmt.Fprintf(os.Stderr, "%s: attempt %d: %v (retrying)\n", user, attempt, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", user, err)
		}
		return nil
	}
}

// childRead is the read limit: every body of every folder fetched with one
// UID FETCH 1:* per folder and discarded.
func childRead(ctx context.Context, job childJob, i int, acc *atomicResult) error {
	c, err := imapclient.DialInsecure(job.Src, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(job.Users[i], job.Pass[i]).Wait(); err != nil {
		return err
	}
	fs, err := estate.ListFolders(c)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if f.NoSelect {
			continue
		}
		sel, err := c.Select(f.Name, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return err
		}
		if sel.NumMessages == 0 {
			continue
		}
		cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
					n, err := io.Copy(io.Discard, b.Literal)
					if err != nil {
						cmd.Close()
						return err
					}
					acc.bytes.Add(n)
					acc.messages.Add(1)
					acc.bodies.Add(1)
				}
			}
		}
		if err := cmd.Close(); err != nil {
			return err
		}
	}
	return c.Logout().Wait()
}
