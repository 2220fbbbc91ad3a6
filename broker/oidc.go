package broker

import (
	"context"
	"errors"
	"time"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/tenants"
)

// oidcLogins adapts the OIDC provider to loginFlow, turning its typed
// errors into the audit reasons the ACS records. It is the only place that
// knows oidcprovider's error set.
type oidcLogins struct {
	p *oidcprovider.Provider
}

// Reasons for failures of the login flow itself.
const (
	reasonLoginExpired        = "login_expired"
	reasonRequestReplayed     = "in_response_to_replayed"
	reasonRequestExpired      = "in_response_to_expired"
	reasonRouteMismatch       = "route_mismatch"
	reasonReauthRequired      = "reauthentication_required"
	reasonLoginStateConflicts = "login_state_conflict"
)

func flowErr(err error) error {
	if err == nil {
		return nil
	}
	var reason string
	var base error
	switch {
	case errors.Is(err, oidcprovider.ErrTenantNotAllowed):
		reason, base = reasonTenantNotAllowed, errTenantNotAllowed
	case errors.Is(err, oidcprovider.ErrRouteMismatch):
		reason, base = reasonRouteMismatch, errTenantNotAllowed
	case errors.Is(err, oidcprovider.ErrSAMLRequestUnknown):
		reason, base = reasonUnknownRequest, errLoginGone
	case errors.Is(err, oidcprovider.ErrSAMLRequestReplayed):
		reason, base = reasonRequestReplayed, errLoginGone
	case errors.Is(err, oidcprovider.ErrSAMLRequestExpired):
		reason, base = reasonRequestExpired, errLoginGone
	case errors.Is(err, oidcprovider.ErrLoginNotFound), errors.Is(err, oidcprovider.ErrLoginExpired),
		errors.Is(err, oidcprovider.ErrLoginDone), errors.Is(err, oidcprovider.ErrLoginFailed):
		reason, base = reasonLoginExpired, errLoginGone
	case errors.Is(err, oidcprovider.ErrNotRouted):
		reason, base = reasonLoginStateConflicts, errLoginGone
	case errors.Is(err, oidcprovider.ErrIdentityInactive):
		reason = reasonIdentityDeactivated
	case errors.Is(err, oidcprovider.ErrReauthenticationRequired):
		reason = reasonReauthRequired
	default:
		return &flowError{reason: reasonInternal, err: err}
	}
	if base != nil {
		return &flowError{reason: reason, err: errors.Join(base, err)}
	}
	return &flowError{reason: reason, err: err}
}

func toLoginInfo(l oidcprovider.Login) loginInfo {
	return loginInfo{
		ID: l.ID, ClientID: l.ClientID, ClientName: l.ClientName,
		LoginHint: l.LoginHint, DomainHint: l.DomainHint, Organization: l.Organization, Connection: l.Connection,
		ForceAuthn: l.ForceAuthn, MaxAge: l.MaxAge, TenantID: l.TenantID, ConnectionID: l.ConnectionID, CreatedAt: l.CreatedAt,
	}
}

func (o oidcLogins) Login(ctx context.Context, id string) (loginInfo, error) {
	l, err := o.p.Login(ctx, id)
	if err != nil {
		return loginInfo{}, flowErr(err)
	}
	switch l.State {
	case oidcprovider.LoginDone, oidcprovider.LoginFailed, oidcprovider.LoginExpired:
		return loginInfo{}, flowErr(oidcprovider.ErrLoginDone)
	}
	return toLoginInfo(l), nil
}

func (o oidcLogins) StartSAML(ctx context.Context, loginID, tenantID, connectionID, samlRequestID string, expiresAt time.Time) error {
	return flowErr(o.p.StartSAML(ctx, loginID, tenantID, connectionID, samlRequestID, expiresAt))
}

func (o oidcLogins) PeekSAMLRequest(ctx context.Context, connectionID, samlRequestID string) (loginInfo, error) {
	l, err := o.p.PeekSAMLRequest(ctx, connectionID, samlRequestID)
	return toLoginInfo(l), flowErr(err)
}

func (o oidcLogins) ConsumeSAMLRequest(ctx context.Context, connectionID, samlRequestID string) (loginInfo, error) {
	l, err := o.p.LoginBySAMLRequest(ctx, connectionID, samlRequestID)
	return toLoginInfo(l), flowErr(err)
}

func (o oidcLogins) CheckAuthTime(li loginInfo, authTime time.Time) error {
	return flowErr(o.p.CheckAuthTime(li.CreatedAt, li.ForceAuthn, li.MaxAge, authTime))
}

func (o oidcLogins) CompleteLogin(ctx context.Context, loginID string, id tenants.Identity, conn tenants.Connection, authTime time.Time) (string, error) {
	u, err := o.p.CompleteLogin(ctx, loginID, id, conn, authTime)
	return u, flowErr(err)
}

func (o oidcLogins) FailLogin(ctx context.Context, loginID, oidcError, description string) (string, error) {
	u, err := o.p.FailLogin(ctx, loginID, oidcError, description)
	return u, flowErr(err)
}
