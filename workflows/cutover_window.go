package workflows

import (
	"time"

	"github.com/mailshift/mailshift/internal/schedule"
)

// cutoverWindow is an organization's cutover window, evaluated on workflow
// time only (workflow.Now), so replay always sees the same answer.
type cutoverWindow struct{ w schedule.Window }

func parseCutoverWindow(spec string) (*cutoverWindow, error) {
	w, err := schedule.ParseWindow(spec)
	if err != nil {
		return nil, err
	}
	return &cutoverWindow{w: w}, nil
}

// at reports whether the window is open at now and, if not, when it opens
// next (zero if never).
func (c *cutoverWindow) at(now time.Time) (open bool, next time.Time) {
	start, _, ok := c.w.Next(now)
	if !ok {
		return false, time.Time{}
	}
	if !start.After(now) {
		return true, time.Time{}
	}
	return false, start
}
