package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/activities"
)

// The error types are constants in activities/errors.go, one list for the
// whole of mailshift. These helpers give the workflows' own errors theirs;
// every one is non-retryable, so no caller retries a refusal and no CLI
// prints it as "retryable: true".

// errContinueAsNew is how a phase tells the run loop to hand over to a new run.
var errContinueAsNew = errors.New("continue as new")

// refused is a control's refusal by its validator.
func refused(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), activities.ErrTypeControlRefused, nil)
}

// tooLate: the organization moved on while a control waited for a lookup.
func tooLate(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), activities.ErrTypeTooLate, nil)
}

// notRetryable: retry-mailbox of a mailbox that neither failed nor was skipped.
func notRetryable(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), activities.ErrTypeMailboxNotRetryable, nil)
}

func configError(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), activities.ErrTypeConfig, nil)
}

// rootCause is the one line of an error worth showing an operator: an
// application error's type and message, not the chain of wrappers.
func rootCause(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if t := app.Type(); t != "" {
			return t + ": " + app.Message()
		}
		return app.Message()
	}
	var to *temporal.TimeoutError
	if errors.As(err, &to) {
		return "timeout: " + to.Error()
	}
	return err.Error()
}
