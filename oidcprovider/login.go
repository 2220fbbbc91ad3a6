package oidcprovider

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/ssobroker/ssobroker/tenants"
)

// LoginState is where a login is in its flow.
type LoginState string

const (
	// LoginPending waits for the hosted page to choose a route.
	LoginPending LoginState = "pending"
	// LoginRouted has sent its SAML AuthnRequest (StartSAML) and waits
	// for the IdP's response.
	LoginRouted LoginState = "routed"
	// LoginResponded has received its SAML response (LoginBySAMLRequest)
	// and waits for CompleteLogin.
	LoginResponded LoginState = "responded"
	// LoginDone is completed; the browser collects the code at the
	// callback.
	LoginDone    LoginState = "done"
	LoginFailed  LoginState = "failed"
	LoginExpired LoginState = "expired"
)

// Login is what the hosted page and the ACS need to know about a login.
type Login struct {
	ID         string
	ClientID   string
	ClientName string
	Scopes     []string
	// Hints from the application: LoginHint is usually an email,
	// DomainHint a normalized domain, Organization a tenant id and
	// Connection a connection id. When Organization or Connection is set,
	// StartSAML routes only there.
	LoginHint    string
	DomainHint   string
	Organization string
	Connection   string
	Prompt       []string
	// ForceAuthn: the application asked for a fresh authentication
	// (prompt=login or max_age=0); set ForceAuthn on the AuthnRequest.
	ForceAuthn bool
	// MaxAge is max_age, nil when absent. CompleteLogin refuses an IdP
	// authentication older than that.
	MaxAge    *time.Duration
	UILocales []string

	State         LoginState
	TenantID      string
	ConnectionID  string
	SAMLRequestID string
	Subject       string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

func (p *Provider) toLogin(l LoginRecord) Login {
	out := Login{
		ID: l.ID, ClientID: l.ClientID, ClientName: l.ClientName, Scopes: l.Request.Scopes,
		LoginHint: l.Request.LoginHint, DomainHint: l.Request.DomainHint,
		Organization: l.HintTenantID, Connection: l.HintConnectionID,
		Prompt: l.Request.Prompt, UILocales: l.Request.UILocales,
		State: p.state(l), TenantID: l.TenantID, ConnectionID: l.ConnectionID, SAMLRequestID: l.SAMLRequestID,
		Subject: l.Subject, CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt,
	}
	if m := l.Request.MaxAgeSeconds; m != nil {
		d := time.Duration(*m) * time.Second
		out.MaxAge = &d
		out.ForceAuthn = *m == 0
	}
	if slices.Contains(l.Request.Prompt, oidc.PromptLogin) {
		out.ForceAuthn = true
	}
	return out
}

// state reads a login's state. Done and failed are final; a redeemed login
// reports done even after its TTL, as it lives on with its grant.
func (p *Provider) state(l LoginRecord) LoginState {
	switch {
	case !l.FailedAt.IsZero():
		return LoginFailed
	case l.Done:
		return LoginDone
	case !l.ExpiresAt.After(p.clock.Now()):
		return LoginExpired
	case !l.SAMLRequestUsedAt.IsZero():
		return LoginResponded
	case l.SAMLRequestID != "":
		return LoginRouted
	default:
		return LoginPending
	}
}

// stateError maps a state that forbids an operation to its error.
func stateError(s LoginState) error {
	switch s {
	case LoginDone:
		return ErrLoginDone
	case LoginFailed:
		return ErrLoginFailed
	case LoginExpired:
		return ErrLoginExpired
	}
	return nil
}

// Login returns a login for the hosted page (one store round trip). An
// unknown id is ErrLoginNotFound; an expired login is returned with State
// LoginExpired.
func (p *Provider) Login(ctx context.Context, id string) (Login, error) {
	if !validLoginID(id) {
		return Login{}, ErrLoginNotFound
	}
	l, err := p.st.Login(ctx, id)
	if err != nil {
		return Login{}, p.loginReadError(id, err)
	}
	return p.toLogin(l), nil
}

func (p *Provider) loginReadError(id string, err error) error {
	if errors.Is(err, tenants.ErrNotFound) {
		return ErrLoginNotFound
	}
	return fmt.Errorf("oidcprovider: reading login %s: %w", id, err)
}

// maxSAMLRequestID bounds the AuthnRequest ID (crewjam's are "id-"+40 hex).
const maxSAMLRequestID = 256

// StartSAML records the route the hosted page chose and the ID of the
// AuthnRequest it is about to send, valid until expiresAt. It can be called
// again (the user went back and picked another route) until the IdP's
// response has been received. It refuses, with a *TenantNotAllowedError, a
// tenant the client's AllowedTenants excludes (read now, not at
// /authorize); with ErrRouteMismatch a route that contradicts the
// application's organization or connection parameter or a connection of
// another tenant; and with ErrLoginDone, ErrLoginFailed or ErrLoginExpired
// a login past its time. One store round trip when it succeeds.
func (p *Provider) StartSAML(ctx context.Context, loginID, tenantID, connectionID, samlRequestID string, expiresAt time.Time) error {
	now := p.clock.Now()
	switch {
	case !validLoginID(loginID):
		return ErrLoginNotFound
	case !validPrefixedID(tenantID, tenants.PrefixTenant), !validPrefixedID(connectionID, tenants.PrefixConnection):
		return fmt.Errorf("%w: tenant or connection id is malformed", ErrInvalidInput)
	case samlRequestID == "" || len(samlRequestID) > maxSAMLRequestID || !printableASCII(samlRequestID):
		return fmt.Errorf("%w: SAML request id is empty, too long or not printable ASCII", ErrInvalidInput)
	case !expiresAt.After(now):
		return fmt.Errorf("%w: SAML request already expired", ErrInvalidInput)
	}
	r := LoginRoute{TenantID: tenantID, ConnectionID: connectionID, SAMLRequestID: samlRequestID, SAMLRequestExpiresAt: expiresAt}
	err := p.st.RouteLogin(ctx, loginID, r, now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tenants.ErrAlreadyExists):
		return fmt.Errorf("%w: SAML request id %s is already in use", ErrInvalidInput, samlRequestID)
	case errors.Is(err, tenants.ErrNotFound):
		return ErrLoginNotFound
	case !errors.Is(err, tenants.ErrConflict):
		return fmt.Errorf("oidcprovider: routing login %s: %w", loginID, err)
	}
	// Why was it refused? Read again, for the broker's message and audit.
	l, err := p.st.Login(ctx, loginID)
	if err != nil {
		return p.loginReadError(loginID, err)
	}
	if serr := stateError(p.state(l)); serr != nil {
		return serr
	}
	if !l.SAMLRequestUsedAt.IsZero() {
		return fmt.Errorf("%w: the IdP has already answered this login", ErrLoginDone)
	}
	if (l.HintTenantID != "" && l.HintTenantID != tenantID) || (l.HintConnectionID != "" && l.HintConnectionID != connectionID) {
		return ErrRouteMismatch
	}
	c, err := p.st.Client(ctx, l.ClientID)
	if err != nil {
		return fmt.Errorf("oidcprovider: reading client %s: %w", l.ClientID, err)
	}
	if !c.AllowsTenant(tenantID) {
		return &TenantNotAllowedError{ClientID: c.ID, TenantID: tenantID}
	}
	return fmt.Errorf("%w: connection %s is not a connection of tenant %s", ErrRouteMismatch, connectionID, tenantID)
}

// LoginBySAMLRequest is for the ACS: it finds the login whose AuthnRequest
// the response answers (InResponseTo), on any replica, and consumes the
// request atomically, so that a second response to the same request fails
// with ErrSAMLRequestReplayed. Other failures: ErrSAMLRequestUnknown (no
// such request on this connection: unsolicited, or sent to another
// tenant's ACS), ErrSAMLRequestExpired, ErrLoginDone, ErrLoginFailed,
// ErrLoginExpired. One store round trip when it succeeds.
//
// Consuming before the response is validated lets anyone who knows a
// request ID spend it (the login then fails, nothing more). To avoid that,
// call PeekSAMLRequest, validate, then LoginBySAMLRequest.
func (p *Provider) LoginBySAMLRequest(ctx context.Context, connectionID, samlRequestID string) (Login, error) {
	if !validPrefixedID(connectionID, tenants.PrefixConnection) || samlRequestID == "" || len(samlRequestID) > maxSAMLRequestID {
		return Login{}, ErrSAMLRequestUnknown
	}
	now := p.clock.Now()
	l, err := p.st.ConsumeSAMLRequest(ctx, connectionID, samlRequestID, now)
	switch {
	case err == nil:
		return p.toLogin(l), nil
	case errors.Is(err, tenants.ErrNotFound):
		return Login{}, ErrSAMLRequestUnknown
	case !errors.Is(err, tenants.ErrConflict):
		return Login{}, fmt.Errorf("oidcprovider: consuming SAML request on %s: %w", connectionID, err)
	}
	_, err = p.PeekSAMLRequest(ctx, connectionID, samlRequestID)
	if err == nil {
		// It became consumable between the two reads: only a concurrent
		// consumer can have changed it, and it won.
		return Login{}, ErrSAMLRequestReplayed
	}
	return Login{}, err
}

// PeekSAMLRequest finds the login awaiting a SAML response without
// consuming the request, with the same errors as LoginBySAMLRequest.
func (p *Provider) PeekSAMLRequest(ctx context.Context, connectionID, samlRequestID string) (Login, error) {
	if !validPrefixedID(connectionID, tenants.PrefixConnection) || samlRequestID == "" || len(samlRequestID) > maxSAMLRequestID {
		return Login{}, ErrSAMLRequestUnknown
	}
	l, err := p.st.LoginBySAMLRequest(ctx, connectionID, samlRequestID)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return Login{}, ErrSAMLRequestUnknown
	case err != nil:
		return Login{}, fmt.Errorf("oidcprovider: finding SAML request on %s: %w", connectionID, err)
	}
	now := p.clock.Now()
	s := p.state(l)
	switch {
	case s == LoginResponded:
		return Login{}, ErrSAMLRequestReplayed
	case stateError(s) != nil:
		return Login{}, stateError(s)
	case !l.SAMLRequestExpiresAt.After(now):
		return Login{}, ErrSAMLRequestExpired
	}
	return p.toLogin(l), nil
}

// CompleteLogin finishes a login for an identity the ACS just upserted
// (pass the Identity the store returned, whose Status is current) and
// returns the absolute URL of the callback the browser must go to.
//
// It requires the login to be routed to conn with its SAML response
// received (ErrNotRouted), the identity to be active (ErrIdentityInactive)
// and to belong to conn (ErrRouteMismatch), the client to allow the tenant
// now (*TenantNotAllowedError), and authTime (the assertion's
// AuthnInstant; zero means now) to satisfy prompt=login and max_age with
// Config.ClockSkew (ErrReauthenticationRequired). One store round trip when
// it succeeds: every condition is part of one conditional UPDATE, and only
// a refusal reads the login again to name its reason.
func (p *Provider) CompleteLogin(ctx context.Context, loginID string, id tenants.Identity, conn tenants.Connection, authTime time.Time) (callbackURL string, err error) {
	now := p.clock.Now()
	switch {
	case !validLoginID(loginID):
		return "", ErrLoginNotFound
	case id.Status != tenants.IdentityActive:
		return "", ErrIdentityInactive
	case id.Subject == "" || len(id.Subject) > 64 || strings.ContainsAny(id.Subject, ": "):
		return "", fmt.Errorf("%w: identity subject is malformed", ErrInvalidInput)
	case id.ConnectionID != conn.ID || id.TenantID != conn.TenantID:
		return "", fmt.Errorf("%w: identity %s does not belong to connection %s", ErrRouteMismatch, id.Subject, conn.ID)
	case conn.Status != tenants.StatusActive:
		return "", fmt.Errorf("%w: connection %s is inactive", ErrRouteMismatch, conn.ID)
	}
	if authTime.IsZero() {
		authTime = now
	}
	if authTime.After(now.Add(p.cfg.ClockSkew)) {
		return "", fmt.Errorf("%w: authentication time is in the future", ErrInvalidInput)
	}
	c := LoginCompletion{
		TenantID: conn.TenantID, ConnectionID: conn.ID, Subject: id.Subject, AuthTime: authTime.UTC(),
		Claims:         claimsOf(id, string(conn.Preset)),
		AuthTimeLatest: authTime.Add(p.cfg.ClockSkew),
		AuthAgeSeconds: int64(math.Ceil((now.Sub(authTime) - p.cfg.ClockSkew).Seconds())),
	}
	err = p.st.CompleteLogin(ctx, loginID, c, now)
	switch {
	case err == nil:
		p.log.LogAttrs(ctx, slog.LevelInfo, "oidcprovider: login completed", slog.String("login_id", loginID),
			slog.String("tenant_id", conn.TenantID), slog.String("sub", id.Subject))
		return p.callbackURL(loginID), nil
	case errors.Is(err, tenants.ErrNotFound):
		return "", ErrLoginNotFound
	case !errors.Is(err, tenants.ErrConflict):
		return "", fmt.Errorf("oidcprovider: completing login %s: %w", loginID, err)
	}
	// Refused: read the login (and the client) again to say why.
	l, err := p.st.Login(ctx, loginID)
	if err != nil {
		return "", p.loginReadError(loginID, err)
	}
	if err := p.checkCompletable(l, conn, authTime, now); err != nil {
		return "", err
	}
	cl, err := p.st.Client(ctx, l.ClientID)
	if err != nil {
		return "", fmt.Errorf("oidcprovider: reading client %s: %w", l.ClientID, err)
	}
	if !cl.AllowsTenant(conn.TenantID) {
		return "", &TenantNotAllowedError{ClientID: cl.ID, TenantID: conn.TenantID}
	}
	return "", fmt.Errorf("oidcprovider: completing login %s: %w", loginID, tenants.ErrConflict)
}

func (p *Provider) checkCompletable(l LoginRecord, conn tenants.Connection, authTime, now time.Time) error {
	s := p.state(l)
	if err := stateError(s); err != nil {
		return err
	}
	if s != LoginResponded || l.TenantID != conn.TenantID || l.ConnectionID != conn.ID {
		return ErrNotRouted
	}
	lg := p.toLogin(l)
	return p.checkAuthTime(lg.CreatedAt, lg.ForceAuthn, lg.MaxAge, authTime, now)
}

// CheckAuthTime applies CompleteLogin's freshness rule to a login as Login,
// PeekSAMLRequest or LoginBySAMLRequest returned it (pass its CreatedAt,
// ForceAuthn and MaxAge) and the assertion's AuthnInstant, without a store
// round trip: the ACS can refuse a stale authentication before it upserts
// the identity, so a refused login has no side effect. CompleteLogin checks
// again, in its own statement. Errors: ErrReauthenticationRequired, or
// ErrInvalidInput for an authentication time in the future.
func (p *Provider) CheckAuthTime(createdAt time.Time, forceAuthn bool, maxAge *time.Duration, authTime time.Time) error {
	return p.checkAuthTime(createdAt, forceAuthn, maxAge, authTime, p.clock.Now())
}

func (p *Provider) checkAuthTime(createdAt time.Time, forceAuthn bool, maxAge *time.Duration, authTime, now time.Time) error {
	if authTime.IsZero() {
		authTime = now
	}
	skew := p.cfg.ClockSkew
	switch {
	case authTime.After(now.Add(skew)):
		return fmt.Errorf("%w: authentication time is in the future", ErrInvalidInput)
	// prompt=login or max_age=0: authenticated after this login started.
	case forceAuthn && authTime.Before(createdAt.Add(-skew)):
		return ErrReauthenticationRequired
	// max_age: within max_age of now (OIDC Core §3.1.2.1).
	case maxAge != nil && *maxAge > 0 && authTime.Before(now.Add(-*maxAge-skew)):
		return ErrReauthenticationRequired
	}
	return nil
}

func (p *Provider) callbackURL(loginID string) string {
	// Absolute, from the static issuer: op.AuthCallbackURL would build it
	// from the issuer in the request context, which the broker's login and
	// ACS handlers do not carry (a relative URL there breaks the redirect).
	return p.cfg.Issuer + callbackPath + "?id=" + url.QueryEscape(loginID)
}

// Error codes FailLogin sends to the client (RFC 6749 §4.1.2.1, OIDC Core
// §3.1.2.6), with the generic description used when none is given.
var failureCodes = map[string]string{
	"access_denied":           "The sign-in was denied.",
	"login_required":          "The user must sign in.",
	"interaction_required":    "The sign-in needs user interaction.",
	"server_error":            "The sign-in failed because of an error at the identity provider or the broker.",
	"temporarily_unavailable": "Sign-in is temporarily unavailable.",
}

// FailLogin ends a login with an error sent to the client: it returns the
// client's redirect_uri with error, error_description and state. The
// description reaches the application and its user: pass a generic text
// (or "" for the default); a description that is not short printable ASCII
// is replaced by the default. oidcErr is one of access_denied,
// login_required, interaction_required, server_error,
// temporarily_unavailable.
func (p *Provider) FailLogin(ctx context.Context, loginID, oidcErr, description string) (redirectURL string, err error) {
	def, ok := failureCodes[oidcErr]
	switch {
	case !validLoginID(loginID):
		return "", ErrLoginNotFound
	case !ok:
		return "", fmt.Errorf("%w: unsupported error code %q", ErrInvalidInput, oidcErr)
	}
	if description == "" || len(description) > 200 || !errorDescriptionChars(description) {
		description = def
	}
	l, err := p.st.FailLogin(ctx, loginID, oidcErr, p.clock.Now())
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return "", ErrLoginNotFound
	case errors.Is(err, tenants.ErrConflict):
		if l, err := p.st.Login(ctx, loginID); err == nil && l.Done {
			return "", ErrLoginDone
		}
		return "", ErrLoginFailed
	case err != nil:
		return "", fmt.Errorf("oidcprovider: failing login %s: %w", loginID, err)
	}
	e := &oidc.Error{ErrorType: "access_denied", Description: description, State: l.Request.State}
	switch oidcErr {
	case "login_required":
		e.ErrorType = oidc.LoginRequired
	case "interaction_required":
		e.ErrorType = oidc.InteractionRequired
	case "server_error":
		e.ErrorType = oidc.ServerError
	case "temporarily_unavailable":
		e.ErrorType = "temporarily_unavailable"
	}
	u, err := op.AuthResponseURL(l.Request.RedirectURI, oidc.ResponseType(l.Request.ResponseType), oidc.ResponseMode(l.Request.ResponseMode), e, p.op.Encoder())
	if err != nil {
		return "", fmt.Errorf("oidcprovider: building error redirect for %s: %w", loginID, err)
	}
	return u, nil
}

// errorDescriptionChars: RFC 6749 §4.1.2.1 allows %x20-21 / %x23-5B /
// %x5D-7E.
func errorDescriptionChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func base64Decode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
