package control

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

func TestNoWorkerHintText(t *testing.T) {
	tgt := WorkerTarget{Address: "127.0.0.1:7233", Namespace: "default", TaskQueue: "mailshift", Config: "/etc/mailshift/mailshift.yaml"}
	got := tgt.NoWorkerHint(15*time.Second+300*time.Millisecond, Pollers{})
	want := `no worker is polling task queue "mailshift" in namespace "default" at 127.0.0.1:7233 (none seen for 15s): the migration waits until one does.
  start one with the same Temporal client settings as this command (TLS, API key, profile): TEMPORAL_ADDRESS=127.0.0.1:7233 TEMPORAL_NAMESPACE=default MAILSHIFT_CONFIG=/etc/mailshift/mailshift.yaml go run ./worker (or bin/worker)`
	if got != want {
		t.Fatalf("hint:\n%s\nwant:\n%s", got, want)
	}

	// Another queue needs MAILSHIFT_TASK_QUEUE; an unknown config a
	// placeholder; odd values are quoted for the shell.
	tgt = WorkerTarget{Address: "temporal.example:7233", Namespace: "mail prod", TaskQueue: "mailshift-eu"}
	got = tgt.NoWorkerHint(75*time.Second, Pollers{Workflow: 2})
	want = `no worker is polling both workflow and activity tasks on task queue "mailshift-eu" in namespace "mail prod" at temporal.example:7233 (2 workflow pollers, 0 activity pollers for 1m15s): the migration waits until one does.
  start one with the same Temporal client settings as this command (TLS, API key, profile): TEMPORAL_ADDRESS=temporal.example:7233 TEMPORAL_NAMESPACE='mail prod' MAILSHIFT_TASK_QUEUE=mailshift-eu MAILSHIFT_CONFIG=/path/to/mailshift.yaml go run ./worker (or bin/worker)`
	if got != want {
		t.Fatalf("hint:\n%s\nwant:\n%s", got, want)
	}

	// Defaults fill what the client settings left empty.
	if got, want := (WorkerTarget{}).WorkerFound(Pollers{Workflow: 1, Activity: 1}), `a worker is now polling task queue "mailshift" in namespace "default" (1 workflow poller, 1 activity poller)`; got != want {
		t.Fatalf("found: %q, want %q", got, want)
	}
	for d, want := range map[time.Duration]string{time.Minute: "1m", 90 * time.Second: "1m30s", 2 * time.Hour: "2h0m", 500 * time.Millisecond: "500ms"} {
		if got := roundSeconds(d); got != want {
			t.Errorf("roundSeconds(%s) = %q, want %q", d, got, want)
		}
	}
	for s, want := range map[string]string{"a/b.yaml": "a/b.yaml", "": "''", "it's": `'it'\''s'`, "$HOME": "'$HOME'"} {
		if got := shellQuote(s); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", s, got, want)
		}
	}
}

// fakeQueue answers DescribeTaskQueue from a script; everything else of
// client.Client is absent.
type fakeQueue struct {
	client.Client
	mu    sync.Mutex
	calls int
	// answer gives the pollers (or error) of a kind at the n-th call.
	answer func(n int, typ enumspb.TaskQueueType) (int, error)
}

func (f *fakeQueue) DescribeTaskQueue(ctx context.Context, tq string, typ enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	k, err := f.answer(n, typ)
	if err != nil {
		return nil, err
	}
	resp := &workflowservice.DescribeTaskQueueResponse{}
	for i := range k {
		resp.Pollers = append(resp.Pollers, &taskqueuepb.PollerInfo{Identity: strings.Repeat("w", i+1)})
	}
	return resp, nil
}

func TestWaitForWorker(t *testing.T) {
	ctx := context.Background()
	t.Run("present at once", func(t *testing.T) {
		f := &fakeQueue{answer: func(int, enumspb.TaskQueueType) (int, error) { return 1, nil }}
		p, err := WaitForWorker(ctx, f, "q", time.Minute)
		if err != nil || !p.Ready() || f.calls != 2 {
			t.Fatalf("pollers %v, err %v, calls %d", p, err, f.calls)
		}
	})
	t.Run("activity pollers missing until the bound", func(t *testing.T) {
		f := &fakeQueue{answer: func(_ int, typ enumspb.TaskQueueType) (int, error) {
			if typ == enumspb.TASK_QUEUE_TYPE_WORKFLOW {
				return 1, nil
			}
			return 0, nil
		}}
		start := time.Now()
		p, err := WaitForWorker(ctx, f, "q", 300*time.Millisecond)
		if !errors.Is(err, ErrNoWorker) || p != (Pollers{Workflow: 1}) {
			t.Fatalf("pollers %v, err %v", p, err)
		}
		if took := time.Since(start); took < 300*time.Millisecond || took > 2*time.Second {
			t.Fatalf("took %s for a 300ms bound", took)
		}
	})
	t.Run("transient errors then a worker", func(t *testing.T) {
		f := &fakeQueue{answer: func(n int, _ enumspb.TaskQueueType) (int, error) {
			if n < 3 {
				return 0, serviceerror.NewUnavailable("restarting")
			}
			return 1, nil
		}}
		p, err := WaitForWorker(ctx, f, "q", 10*time.Second)
		if err != nil || !p.Ready() {
			t.Fatalf("pollers %v, err %v", p, err)
		}
	})
	t.Run("permanent error at once", func(t *testing.T) {
		f := &fakeQueue{answer: func(int, enumspb.TaskQueueType) (int, error) {
			return 0, serviceerror.NewPermissionDenied("no", "")
		}}
		_, err := WaitForWorker(ctx, f, "q", time.Minute)
		var pd *serviceerror.PermissionDenied
		if !errors.As(err, &pd) || f.calls != 1 {
			t.Fatalf("err %v after %d calls", err, f.calls)
		}
	})
	t.Run("only transient errors", func(t *testing.T) {
		f := &fakeQueue{answer: func(int, enumspb.TaskQueueType) (int, error) { return 0, serviceerror.NewUnavailable("down") }}
		_, err := WaitForWorker(ctx, f, "q", 200*time.Millisecond)
		var un *serviceerror.Unavailable
		if !errors.As(err, &un) || errors.Is(err, ErrNoWorker) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("context ends the wait", func(t *testing.T) {
		f := &fakeQueue{answer: func(int, enumspb.TaskQueueType) (int, error) { return 0, nil }}
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := WaitForWorker(cctx, f, "q", time.Minute)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestWatchWorkerRepeatsThenSaysOnce(t *testing.T) {
	// No poller for the first 1.2 s, then a worker.
	start := time.Now()
	f := &fakeQueue{answer: func(int, enumspb.TaskQueueType) (int, error) {
		if time.Since(start) < 1200*time.Millisecond {
			return 0, nil
		}
		return 1, nil
	}}
	var said []string
	err := WatchWorker(context.Background(), f, WorkerTarget{TaskQueue: "q"}, 300*time.Millisecond, 400*time.Millisecond, func(s string) { said = append(said, s) })
	if err != nil {
		t.Fatal(err)
	}
	// Hints at ~0.3 s, ~0.7 s and ~1.1 s, then the worker.
	if len(said) < 3 {
		t.Fatalf("said %q", said)
	}
	for _, s := range said[:len(said)-1] {
		if !strings.HasPrefix(s, `no worker is polling task queue "q" in namespace "default" at `) || !strings.Contains(s, "this hint repeats every 400ms") {
			t.Fatalf("hint %q", s)
		}
	}
	if last := said[len(said)-1]; !strings.HasPrefix(last, `a worker is now polling task queue "q"`) {
		t.Fatalf("last %q", last)
	}

	// A worker at once: nothing said.
	said = nil
	f = &fakeQueue{answer: func(int, enumspb.TaskQueueType) (int, error) { return 1, nil }}
	if err := WatchWorker(context.Background(), f, WorkerTarget{}, time.Second, time.Second, func(s string) { said = append(said, s) }); err != nil || said != nil {
		t.Fatalf("err %v, said %q", err, said)
	}
}
