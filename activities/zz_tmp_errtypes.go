package activities

// Temporary until the activities split lands.
const (
	ErrTypeTooLate             = "TooLate"
	ErrTypeMailboxNotRetryable = "NotRetryable"
	ErrTypeControlRefused      = "ControlRefused"
)
