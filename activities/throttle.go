package activities

import (
	"context"
	"time"

	"github.com/mailshift/mailshift/internal/imapconn"
)

// whileThrottled runs check again each time the target throttles it
// (Exchange Online may throttle the FETCHes of a validation or a
// readiness check as it does APPENDs), after waiting as asked with the
// activity heartbeating, for at most maxThrottledWait in all. A check
// starts again from the beginning: it changes nothing, and it is cheap
// beside a copy. Without this, a throttled check was an activity failure,
// retried by Temporal's policy without the back-off the server asked for.
func whileThrottled[T any](ctx context.Context, check func() (T, error)) (T, error) {
	var waited time.Duration
	for {
		res, err := check()
		d, ok := imapconn.Throttled(err)
		if !ok || ctx.Err() != nil || waited+d > maxThrottledWait {
			return res, err
		}
		waited += d
		stop := keepAlive(ctx)
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		stop()
		if ctx.Err() != nil {
			return res, err
		}
	}
}
