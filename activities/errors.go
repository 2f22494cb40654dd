package activities

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// Error types of non-retryable application errors.
const (
	ErrTypeAuth           = "AuthFailed"
	ErrTypeNotFound       = "MailboxNotFound"
	ErrTypePolicy         = "PolicyExceeded"
	ErrTypeConfig         = "ConfigError"
	ErrTypeOverQuota      = "OverQuota"
	ErrTypeValidation     = "ValidationFailed"
	ErrTypeFolderConflict = "FolderConflict"
	ErrTypeStagingAuth    = "StagingAuthFailed"
)

// NonRetryable lists the error types a retry cannot fix.
var NonRetryable = []string{ErrTypeAuth, ErrTypeNotFound, ErrTypePolicy, ErrTypeConfig, ErrTypeOverQuota, ErrTypeFolderConflict, ErrTypeStagingAuth}

// wrapIMAP turns a classified IMAP fault into a Temporal error: permanent
// faults are non-retryable with a type the workflow and the UI can read.
func wrapIMAP(prefix string, err error) error {
	var ie *imapconn.Error
	if errors.As(err, &ie) {
		if !ie.Permanent {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		typ := ie.Kind
		switch ie.Kind {
		case imapconn.KindAuth:
			typ = ErrTypeAuth
		case imapconn.KindNonExistent:
			typ = ErrTypeNotFound
		case imapconn.KindOverQuota:
			typ = ErrTypeOverQuota
		}
		return temporal.NewNonRetryableApplicationError(prefix+": "+err.Error(), typ, nil)
	}
	if errors.Is(err, staging.ErrAuth) {
		return temporal.NewNonRetryableApplicationError(prefix+": "+err.Error(), ErrTypeStagingAuth, nil)
	}
	if errors.Is(err, transfer.ErrPolicy) {
		return temporal.NewNonRetryableApplicationError(prefix+": "+err.Error(), ErrTypePolicy, nil)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// nonRetryable returns err's non-retryable application error, or nil.
func nonRetryable(err error) *temporal.ApplicationError {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.NonRetryable() {
		return ae
	}
	return nil
}
