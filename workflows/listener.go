package workflows

import "go.temporal.io/sdk/workflow"

// listen handles signals in a coroutine of its own until the returned stop
// is called. A value delivered to a channel this coroutine is blocked on
// is handed to it directly, not buffered, so a ReceiveAsync drain in
// another coroutine cannot see it: a run that drained its signals and
// continued as new in the same workflow task lost such a value (a mailbox
// outcome that arrived with the last hand-over answer). stop blocks until
// the coroutine has taken the quit value, which it can only do once it has
// handled whatever it was handed; after that it handles nothing, so a
// drain is complete.
func listen(ctx workflow.Context, add func(ctx workflow.Context, sel workflow.Selector)) (stop func(workflow.Context)) {
	quit := workflow.NewChannel(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for done := false; !done; {
			sel := workflow.NewSelector(ctx)
			add(ctx, sel)
			sel.AddReceive(quit, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				done = true
			})
			sel.Select(ctx)
		}
	})
	stopped := false
	return func(ctx workflow.Context) {
		if !stopped {
			stopped = true
			quit.Send(ctx, nil)
		}
	}
}
