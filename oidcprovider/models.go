package oidcprovider

import (
	"log/slog"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/ssobroker/ssobroker/tenants"
)

var (
	_ op.AuthRequest         = (*authRequest)(nil)
	_ op.LogAuthRequest      = (*authRequest)(nil)
	_ op.RefreshTokenRequest = (*refreshRequest)(nil)
	_ op.Client              = (*client)(nil)
)

// authRequest is the op.AuthRequest view of a login.
type authRequest struct{ l LoginRecord }

func (a *authRequest) GetID() string          { return a.l.ID }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return nil }
func (a *authRequest) GetAudience() []string  { return []string{a.l.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.l.AuthTime }
func (a *authRequest) GetClientID() string    { return a.l.ClientID }

// GetCodeChallenge must return nil without PKCE: zitadel treats any
// non-nil challenge as one that needs a verifier.
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.l.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.l.CodeChallenge, Method: oidc.CodeChallengeMethodS256}
}
func (a *authRequest) GetNonce() string       { return a.l.Request.Nonce }
func (a *authRequest) GetRedirectURI() string { return a.l.Request.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.l.Request.ResponseType)
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.l.Request.ResponseMode)
}
func (a *authRequest) GetScopes() []string { return a.l.Request.Scopes }
func (a *authRequest) GetState() string    { return a.l.Request.State }
func (a *authRequest) GetSubject() string  { return a.l.Subject }
func (a *authRequest) Done() bool          { return a.l.Done && a.l.FailedAt.IsZero() }

// LogValue keeps zitadel's error logs to what identifies the login.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("login_id", a.l.ID), slog.String("client_id", a.l.ClientID))
}

// refreshRequest is the op.RefreshTokenRequest view of a refresh token's
// grant, with the identity as it is now (a refreshed ID token carries
// current claims).
type refreshRequest struct {
	st     TokenState
	scopes []string
	claims Claims
}

func (r *refreshRequest) GetAMR() []string            { return nil }
func (r *refreshRequest) GetAudience() []string       { return []string{r.st.Grant.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.st.Grant.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.st.Grant.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.st.Grant.Subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// client is the op.Client view of a directory client.
type client struct {
	c        tenants.Client
	loginURL func(string) string
	idTTL    time.Duration
}

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

// ApplicationType is never Native: zitadel matches loopback redirect URIs of
// native clients on any port (RFC 8252 §7.3), and we match exactly.
func (c *client) ApplicationType() op.ApplicationType {
	if c.c.Public {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.Public {
		return oidc.AuthMethodNone
	}
	// Basic here still admits client_secret_post: zitadel checks the secret
	// from either place, and Config.AuthMethodPost is on.
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(id string) string            { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return c.idTTL }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true } // see setUserinfo
func (c *client) IsScopeAllowed(scope string) bool {
	return scope == ScopeGroups || scope == ScopeRawAttributes
}
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// DevMode lets zitadel accept an http redirect URI of a public
// (user-agent) client after the exact match, which it otherwise refuses.
// That is safe because registration (tenants.ValidateRedirectURI) admits
// http only for loopback hosts, and CreateAuthRequest checks the requested
// URI again. Confidential clients need no such switch.
func (c *client) DevMode() bool { return c.c.Public }
