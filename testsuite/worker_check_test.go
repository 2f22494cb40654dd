package testsuite

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/workerapp"
	"github.com/mailshift/mailshift/workflows"
)

// TestNoWorkerHintOnTheEmbeddedServer is issue #14's "no silent waits" on a
// real server (four partitions per task queue, as a cluster has): an
// organization started on a task queue no worker polls gets the hint,
// naming the queue, namespace and address, within the bound and again at
// the repeat interval, then one "now polling" line when a worker starts
// there; an organization on the demo worker's queue gets no hint at all.
func TestNoWorkerHintOnTheEmbeddedServer(t *testing.T) {
	ctx, env := startDemo(t, time.Minute, demo.Options{Seed: 4, Scale: 0.15})
	var err error
	require.GreaterOrEqual(t, len(env.Inputs), 2)
	target := control.WorkerTarget{Address: env.Server.FrontendAddr(), Namespace: env.Server.Namespace()}
	const within, every = 2 * time.Second, 3 * time.Second

	// The demo worker polls the mailshift queue: no hint, and no waiting
	// for the bound either.
	_, err = control.Start(ctx, env.Client, workflows.TaskQueue, env.Inputs[0])
	require.NoError(t, err)
	withWorker := target
	withWorker.TaskQueue = workflows.TaskQueue
	var said []string
	start := time.Now()
	require.NoError(t, control.WatchWorker(ctx, env.Client, withWorker, within, every, func(s string) { said = append(said, s) }))
	require.Empty(t, said)
	require.Less(t, time.Since(start), within, "a polling worker is seen before the bound")

	// Nobody polls this queue.
	const lonely = "mailshift-no-worker"
	_, err = control.Start(ctx, env.Client, lonely, env.Inputs[1])
	require.NoError(t, err)
	noWorker := target
	noWorker.TaskQueue = lonely
	type note struct {
		at  time.Duration
		msg string
	}
	notes := make(chan note, 10)
	watched := make(chan error, 1)
	start = time.Now()
	go func() {
		watched <- control.WatchWorker(ctx, env.Client, noWorker, within, every, func(s string) { notes <- note{time.Since(start), s} })
	}()
	next := func(what string) note {
		t.Helper()
		select {
		case n := <-notes:
			t.Logf("%s after %s:\n%s", what, n.at.Round(time.Millisecond), n.msg)
			return n
		case err := <-watched:
			t.Fatalf("WatchWorker returned %v before the %s", err, what)
		case <-time.After(3 * every):
			t.Fatalf("no %s", what)
		}
		return note{}
	}
	first := next("hint")
	require.GreaterOrEqual(t, first.at, within)
	require.Less(t, first.at, within+every, "the hint comes at the bound")
	require.Contains(t, first.msg, `no worker is polling task queue "mailshift-no-worker" in namespace "default" at `+env.Server.FrontendAddr())
	require.Contains(t, first.msg, "MAILSHIFT_TASK_QUEUE=mailshift-no-worker")
	second := next("repeated hint")
	require.Contains(t, second.msg, `no worker is polling task queue "mailshift-no-worker"`)
	require.InDelta(t, float64(first.at+every), float64(second.at), float64(every/2), "repeated every %s", every)

	// A worker starts there: said once, and the watch ends.
	w := worker.New(env.Client, lonely, workerapp.WorkerOptions(worker.Options{}))
	workerapp.Register(w, env.Activities)
	require.NoError(t, w.Start())
	defer w.Stop()
	found := next("worker found")
	require.Equal(t, `a worker is now polling task queue "mailshift-no-worker" in namespace "default" (1 workflow poller, 1 activity poller)`, found.msg)
	select {
	case err := <-watched:
		require.NoError(t, err)
	case <-time.After(every):
		t.Fatal("WatchWorker did not return after the worker appeared")
	}
	require.Empty(t, notes)
}
