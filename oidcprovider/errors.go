package oidcprovider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/ssobroker/ssobroker/tenants"
)

// Errors the login API returns, each a distinct reason the broker can show
// or audit. Test with errors.Is.
var (
	// ErrLoginNotFound also matches tenants.ErrNotFound.
	ErrLoginNotFound = fmt.Errorf("oidcprovider: login not found: %w", tenants.ErrNotFound)
	ErrLoginExpired  = errors.New("oidcprovider: login expired")
	ErrLoginDone     = errors.New("oidcprovider: login already completed")
	ErrLoginFailed   = errors.New("oidcprovider: login already failed")
	// ErrNotRouted: CompleteLogin before the login's SAML request was
	// consumed, or for another tenant or connection than the route.
	ErrNotRouted = errors.New("oidcprovider: login not routed to this connection or SAML response not received")
	// ErrTenantNotAllowed: the client's allow-list excludes the tenant. The
	// concrete error is a *TenantNotAllowedError.
	ErrTenantNotAllowed = errors.New("oidcprovider: the application does not accept users of this organization")
	// ErrRouteMismatch: the route contradicts the organization or connection
	// the application asked for, or the connection is not the tenant's.
	ErrRouteMismatch = errors.New("oidcprovider: route does not match the requested organization or connection")
	// ErrSAMLRequestUnknown, ErrSAMLRequestReplayed and
	// ErrSAMLRequestExpired are the outcomes of LoginBySAMLRequest that find
	// no usable login (InResponseTo unknown on this connection, already
	// consumed, or too old).
	ErrSAMLRequestUnknown  = fmt.Errorf("oidcprovider: no login awaits this SAML response: %w", tenants.ErrNotFound)
	ErrSAMLRequestReplayed = errors.New("oidcprovider: SAML response for this request already received")
	ErrSAMLRequestExpired  = errors.New("oidcprovider: SAML request expired")
	// ErrIdentityInactive: the identity is deactivated.
	ErrIdentityInactive = errors.New("oidcprovider: identity is deactivated")
	// ErrReauthenticationRequired: the application asked for a fresh login
	// (prompt=login, max_age) and the IdP's authentication instant is older.
	ErrReauthenticationRequired = errors.New("oidcprovider: the IdP did not re-authenticate the user as the application required")
	// ErrInvalidInput: an argument is malformed (ids, times, error codes).
	ErrInvalidInput = fmt.Errorf("oidcprovider: %w", tenants.ErrInvalidInput)
)

// Errors the store reports from token operations.
var (
	// ErrCodeReplayed: an authorization code was presented after it had been
	// redeemed; the store revoked what it issued.
	ErrCodeReplayed = errors.New("oidcprovider: authorization code replayed")
	// ErrRefreshTokenReused: a rotated refresh token was presented again (or
	// its grant is revoked); the grant is revoked.
	ErrRefreshTokenReused = errors.New("oidcprovider: refresh token reused")
)

// TenantNotAllowedError reports that a client's AllowedTenants excludes a
// tenant. It matches ErrTenantNotAllowed.
type TenantNotAllowedError struct {
	ClientID string
	TenantID string
}

func (e *TenantNotAllowedError) Error() string {
	return fmt.Sprintf("oidcprovider: client %s does not allow tenant %s", e.ClientID, e.TenantID)
}

// Is lets errors.Is match ErrTenantNotAllowed.
func (e *TenantNotAllowedError) Is(target error) bool { return target == ErrTenantNotAllowed }

// internalError hides the text of an internal failure from every place
// zitadel might copy err.Error() into a response (AuthRequestError writes it
// verbatim as a plain-text 400 when it has no auth request; the
// introspection endpoint writes it as a 401 body), while errors.Is/As still
// reach the cause. The cause is logged once, where it happens.
type internalError struct{ err error }

func (e internalError) Error() string { return "internal error" }
func (e internalError) Unwrap() error { return e.err }

// serverError logs err with the operation and returns the oidc error that
// goes to the client: server_error with a fixed description, the cause
// attached (for errors.Is) but never printed.
func (p *Provider) serverError(ctx context.Context, op string, err error, attrs ...slog.Attr) *oidc.Error {
	p.log.LogAttrs(ctx, slog.LevelError, "oidcprovider: "+op+" failed", append(attrs, slog.Any("error", err))...)
	return oidc.ErrServerError().WithDescription("internal error").WithParent(internalError{err})
}
