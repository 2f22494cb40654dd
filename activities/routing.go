package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/routing"
)

// SwitchRouting points delivery for the organization's addresses at the
// target (or back at the source with Revert).
func (a *Activities) SwitchRouting(ctx context.Context, in RoutingInput) (RoutingResult, error) {
	r := a.Router
	if r == nil {
		r = routing.None{}
	}
	var n int
	var err error
	if in.Revert {
		n, err = r.Revert(ctx, in.Org, in.Addresses)
	} else {
		n, err = r.Switch(ctx, in.Org, in.Addresses)
	}
	if errors.Is(err, routing.ErrPermanent) {
		return RoutingResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("organization %s: routing via %s: %v", in.Org, r.Describe(), err), ErrTypeConfig, nil)
	}
	if err != nil {
		return RoutingResult{}, fmt.Errorf("organization %s: routing via %s: %w", in.Org, r.Describe(), err)
	}
	return RoutingResult{Router: r.Describe(), Changed: n}, nil
}
