package tenants

import "errors"

// Sentinels at the storage contract. The store wraps them with the operation
// and ids; callers test with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict reports a write that lost a race or would break an
	// invariant other than uniqueness (e.g. a foreign key).
	ErrConflict = errors.New("conflict")
)

// Directory-level errors, each a distinct reason an operator can act on.
var (
	ErrDomainTaken     = errors.New("domain belongs to another tenant")
	ErrInvalidDomain   = errors.New("invalid domain")
	ErrInvalidEmail    = errors.New("invalid email address")
	ErrNoSSO           = errors.New("no SSO connection for this email domain")
	ErrInvalidRedirect = errors.New("invalid redirect URI")
	ErrInvalidInput    = errors.New("invalid input")
)

// ValidationError names the field that failed and why. It wraps
// ErrInvalidInput (or a more specific sentinel) so callers can map it to a
// 422 with errors.Is while showing Field and Reason to the operator.
type ValidationError struct {
	Field  string
	Reason string
	Err    error
}

func (e *ValidationError) Error() string {
	return e.Field + ": " + e.Reason
}

func (e *ValidationError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrInvalidInput
}

func invalid(field, reason string) error {
	return &ValidationError{Field: field, Reason: reason}
}

func invalidWith(field, reason string, err error) error {
	return &ValidationError{Field: field, Reason: reason, Err: err}
}
