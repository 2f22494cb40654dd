package activities

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/staging"
	"github.com/mailshift/mailshift/internal/transfer"
)

// Error types of the application errors the activities and the workflows
// raise, all of them defined here.
const (
	// ErrTypeAuth: a login was refused (IMAP imapconn.KindAuth).
	ErrTypeAuth = "AuthFailed"
	// ErrTypeNotFound: a mailbox or folder does not exist (IMAP
	// imapconn.KindNonExistent), or a mailbox is not in its organization.
	ErrTypeNotFound = "MailboxNotFound"
	// ErrTypePolicy: the transfer policy's limits were exceeded
	// (transfer.ErrPolicy).
	ErrTypePolicy = "PolicyExceeded"
	// ErrTypeConfig: the worker's configuration or an input is wrong
	// (among others imapconn.KindConfig: plaintext to a host that is not
	// loopback refused, a server certificate that does not verify).
	ErrTypeConfig = "ConfigError"
	// ErrTypeOverQuota: the target refused for want of quota (IMAP
	// imapconn.KindOverQuota).
	ErrTypeOverQuota = "OverQuota"
	// ErrTypeStagingAuth: the staging store refused the worker's
	// credentials (staging.ErrAuth).
	ErrTypeStagingAuth = "StagingAuthFailed"
	// ErrTypeTooBig: the server refused a message or command as too large;
	// the IMAP fault kind, passed on as it is (imapconn.KindTooBig).
	ErrTypeTooBig = imapconn.KindTooBig
	// ErrTypeRejected: the server answered NO or BAD to a command; the IMAP
	// fault kind, passed on as it is (imapconn.KindRejected).
	ErrTypeRejected = imapconn.KindRejected
	// ErrTypeTooLate: a mailbox control (the skip-mailbox or retry-mailbox
	// update) came after the organization had moved on (past the routing
	// switch, finished or rolling back); the mailbox is left as it was.
	ErrTypeTooLate = "TooLate"
	// ErrTypeMailboxNotRetryable: the retry-mailbox update named a mailbox
	// that is neither failed nor skipped.
	ErrTypeMailboxNotRetryable = "NotRetryable"
	// ErrTypeControlRefused: an operator control's validator refused it
	// (a missing person or reason, an unknown field, the wrong phase).
	ErrTypeControlRefused = "ControlRefused"
	// ErrTypeHandedBack: the worker was stopping (SIGTERM), so the activity
	// stopped at its checkpoint and gave its work back to be retried at
	// once, on another worker or on this one when it returns. Retryable.
	ErrTypeHandedBack = "HandedBack"
	// ErrTypeClaimed: another organization holds the target mailbox (one
	// writer per target mailbox, see claims.go).
	ErrTypeClaimed = "MailboxClaimed"
	// ErrTypeOrganizationRolledBack and ErrTypeOrganizationFailed end an
	// Organization workflow that rolled back or failed (its Progress is the
	// error's details, see workflows.OrganizationEnded), so the Web UI
	// lists it as Failed and never as a green Completed.
	ErrTypeOrganizationRolledBack = "OrganizationRolledBack"
	ErrTypeOrganizationFailed     = "OrganizationFailed"
)

// NonRetryable lists the error types a retry cannot fix.
var NonRetryable = []string{ErrTypeAuth, ErrTypeNotFound, ErrTypePolicy, ErrTypeConfig, ErrTypeOverQuota, ErrTypeStagingAuth, ErrTypeClaimed}

// temporalError turns a fault of an activity's work (a classified IMAP
// fault, a staging store or a transfer policy error) into the error the
// activity returns, prefixed: a permanent fault becomes a non-retryable
// application error with a type (ErrType*) the workflow and the UI can
// read; any other fault stays a plain error, which Temporal retries.
func temporalError(prefix string, err error) error {
	// Already decided (a connection's login refused, a claim): kept as
	// it is, so its type and retryability survive.
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return err
	}
	var ie *imapconn.Error
	if errors.As(err, &ie) {
		if !ie.Permanent {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		typ := ie.Kind
		switch ie.Kind {
		case imapconn.KindAuth:
			typ = ErrTypeAuth
		case imapconn.KindConfig:
			typ = ErrTypeConfig
		case imapconn.KindNonExistent:
			typ = ErrTypeNotFound
		case imapconn.KindOverQuota:
			typ = ErrTypeOverQuota
		case imapconn.KindTooBig:
			typ = ErrTypeTooBig
		case imapconn.KindRejected:
			typ = ErrTypeRejected
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
