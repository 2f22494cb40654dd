package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/codes"

	"github.com/mailshift/mailshift/workflows"
)

const (
	// WorkerWait is how long migrate and campaign give a worker to be seen
	// polling the task queue before they say that none does.
	WorkerWait = 15 * time.Second
	// WorkerHintEvery is how often the hint is repeated while no worker
	// polls.
	WorkerHintEvery = time.Minute

	// workerPollEvery is how often WaitForWorker describes the task queue.
	workerPollEvery = time.Second
	// describeTimeout bounds one look when WaitForWorker has no bound of its
	// own (within <= 0).
	describeTimeout = 5 * time.Second
)

// ErrNoWorker is WaitForWorker's answer when no worker was seen in time.
var ErrNoWorker = errors.New("no worker polls the task queue")

// Pollers counts the pollers the server has seen on a task queue, by
// identity, for each kind of task. A mailshift worker polls both kinds.
type Pollers struct {
	Workflow, Activity int
}

// Ready reports whether both workflow and activity tasks have a poller.
func (p Pollers) Ready() bool { return p.Workflow > 0 && p.Activity > 0 }

// TaskQueuePollers describes the task queue's workflow and activity sides.
//
// It uses DescribeTaskQueue in its default (legacy) mode, one call per
// kind: every server version and Temporal Cloud answer it with the pollers
// of the last few minutes (the server's poller history, 5 minutes by
// default), so a worker that died a moment ago may still count. The
// enhanced mode (DescribeTaskQueueEnhanced) is deprecated in the SDK and
// the server.
func TaskQueuePollers(ctx context.Context, c client.Client, taskQueue string) (Pollers, error) {
	var p Pollers
	for _, k := range []struct {
		typ enumspb.TaskQueueType
		n   *int
	}{{enumspb.TASK_QUEUE_TYPE_WORKFLOW, &p.Workflow}, {enumspb.TASK_QUEUE_TYPE_ACTIVITY, &p.Activity}} {
		resp, err := c.DescribeTaskQueue(ctx, taskQueue, k.typ)
		if err != nil {
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				continue // a queue nobody touched yet: no pollers
			}
			return p, err
		}
		seen := map[string]bool{}
		for _, pi := range resp.GetPollers() {
			seen[pi.GetIdentity()] = true
		}
		*k.n = len(seen)
	}
	return p, nil
}

// WaitForWorker looks at the task queue every second until both its
// workflow and activity tasks have a poller, for at most within. It
// returns the pollers last seen, and ErrNoWorker (wrapped) when within
// passed without a worker; within <= 0 takes a single look. Transient
// errors (server unavailable, overloaded, slow) are retried until the
// bound and then returned if no look succeeded; others (permission denied,
// unknown namespace) at once; ctx's error when ctx ends.
func WaitForWorker(ctx context.Context, c client.Client, taskQueue string, within time.Duration) (Pollers, error) {
	if taskQueue == "" {
		taskQueue = workflows.TaskQueue
	}
	once := within <= 0
	if once {
		within = describeTimeout
	}
	bound, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(min(workerPollEvery, within))
	defer tick.Stop()
	var last Pollers
	var lastErr error
	looked := false
look:
	for {
		p, err := TaskQueuePollers(bound, c, taskQueue)
		switch {
		case ctx.Err() != nil:
			return last, ctx.Err()
		case err == nil:
			last, lastErr, looked = p, nil, true
			if p.Ready() {
				return p, nil
			}
		case bound.Err() == nil && !transient(err):
			return last, fmt.Errorf("describe task queue %q: %w", taskQueue, err)
		default: // transient, or cut short by the bound
			lastErr = err
		}
		if once {
			break
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-bound.Done():
			break look
		case <-tick.C:
		}
	}
	if !looked {
		return last, fmt.Errorf("describe task queue %q: %w", taskQueue, lastErr)
	}
	return last, fmt.Errorf("%w %q (%s)", ErrNoWorker, taskQueue, last)
}

// transient tells errors worth another look from those that will not
// change (bad namespace, no permission, an old server).
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch serviceerror.ToStatus(err).Code() {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

func (p Pollers) String() string {
	return fmt.Sprintf("%s, %s", plural(p.Workflow, "workflow poller"), plural(p.Activity, "activity poller"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// WorkerTarget is where a worker should poll, for the hint that tells an
// operator how to start one.
type WorkerTarget struct {
	Address   string // Temporal frontend, host:port
	Namespace string
	TaskQueue string
	// Config is the worker configuration's path for the hint; "" shows a
	// placeholder.
	Config string
}

// NoWorkerHint is the message for a task queue without a worker after
// waited: what is missing and how to start a worker there. The caller adds
// what happens next.
func (t WorkerTarget) NoWorkerHint(waited time.Duration, p Pollers) string {
	t = t.withDefaults()
	what, seen := "no worker is polling", "none seen for "+roundSeconds(waited)
	if p.Workflow > 0 || p.Activity > 0 {
		what, seen = "no worker is polling both workflow and activity tasks on", fmt.Sprintf("%s for %s", p, roundSeconds(waited))
	}
	cmd := []string{"TEMPORAL_ADDRESS=" + shellQuote(t.Address), "TEMPORAL_NAMESPACE=" + shellQuote(t.Namespace)}
	if t.TaskQueue != workflows.TaskQueue {
		cmd = append(cmd, "MAILSHIFT_TASK_QUEUE="+shellQuote(t.TaskQueue))
	}
	cfg := "/path/to/mailshift.yaml"
	if t.Config != "" {
		cfg = shellQuote(t.Config)
	}
	cmd = append(cmd, "MAILSHIFT_CONFIG="+cfg)
	return fmt.Sprintf("%s task queue %q in namespace %q at %s (%s): the migration waits until one does.\n"+
		"  start one with the same Temporal client settings as this command (TLS, API key, profile): %s go run ./worker (or bin/worker)",
		what, t.TaskQueue, t.Namespace, t.Address, seen, strings.Join(cmd, " "))
}

// WorkerFound is the message once a worker polls after a hint.
func (t WorkerTarget) WorkerFound(p Pollers) string {
	t = t.withDefaults()
	return fmt.Sprintf("a worker is now polling task queue %q in namespace %q (%s)", t.TaskQueue, t.Namespace, p)
}

func (t WorkerTarget) withDefaults() WorkerTarget {
	if t.Address == "" {
		t.Address = client.DefaultHostPort
	}
	if t.Namespace == "" {
		t.Namespace = client.DefaultNamespace
	}
	if t.TaskQueue == "" {
		t.TaskQueue = workflows.TaskQueue
	}
	return t
}

// WatchWorker waits up to within for a worker on t's task queue. If none
// comes, it calls say with the hint, then keeps looking and repeats the
// hint every `every` while none polls; when one appears after a hint it
// says so once and returns nil. It returns nil at once (saying nothing)
// when a worker polls within the bound, ctx's error when ctx ends, and
// WaitForWorker's error when the task queue cannot be described.
func WatchWorker(ctx context.Context, c client.Client, t WorkerTarget, within, every time.Duration, say func(string)) error {
	if every <= 0 {
		every = WorkerHintEvery
	}
	start := time.Now()
	wait := within
	hinted := false
	for {
		p, err := WaitForWorker(ctx, c, t.TaskQueue, wait)
		switch {
		case err == nil:
			if hinted {
				say(t.WorkerFound(p))
			}
			return nil
		case !errors.Is(err, ErrNoWorker):
			return err
		}
		say(t.NoWorkerHint(time.Since(start), p) + fmt.Sprintf("\n  still waiting; this hint repeats every %s while no worker polls", roundSeconds(every)))
		hinted = true
		wait = every
	}
}

// roundSeconds writes d as 15s, 1m, 1m15s.
func roundSeconds(d time.Duration) string {
	if d >= time.Second {
		d = d.Round(time.Second)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@,+=%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
