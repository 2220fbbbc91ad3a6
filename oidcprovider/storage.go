package oidcprovider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/ssobroker/ssobroker/tenants"
)

// opStorage adapts the provider and its Store to op.Storage.
//
// Every method returns either a precise *oidc.Error or
// Provider.serverError: zitadel copies the text of any other error into
// error_description, or, for errors without an auth request, into a
// plain-text body.
type opStorage struct{ p *Provider }

var (
	_ op.Storage                        = (*opStorage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*opStorage)(nil)
	_ op.CanTerminateSessionFromRequest = (*opStorage)(nil)
)

// Token and id prefixes. None of them, nor any subject, contains ':': op
// makes an opaque access token by encrypting tokenID+":"+subject and splits
// on ':' to read it back.
const (
	prefixLogin        = "lgn_"
	prefixGrant        = "grt_"
	prefixAccessToken  = "at_"
	prefixRefreshID    = "rt_"
	refreshTokenPrefix = "ssob_rt_"
	// refreshRefPrefix marks a refresh token handed from GetRefreshTokenInfo
	// to RevokeToken by its hash.
	refreshRefPrefix = "rth_"

	maxRefreshTokenLength = 128
	maxTokenIDLength      = 64
	maxSecretLength       = 256
)

// Revocation reasons stored on grants.
const (
	reasonCodeReplayed  = "code_replayed"
	reasonRefreshReused = "refresh_token_reused"
	reasonRevoked       = "revoked_by_client"
	reasonLogout        = "logout"
)

// CreateAuthRequest persists a login after zitadel validated the client,
// redirect URI (loosely: after QueryUnescape), prompt, scopes and response
// type. It adds what we require on top.
func (s *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	p := s.p
	rs := reqStateFrom(ctx)
	if rs == nil || rs.authorize == nil {
		return nil, p.serverError(ctx, "CreateAuthRequest", errors.New("called outside Provider.Handler"))
	}
	c, err := p.client(ctx, req.ClientID)
	if err != nil {
		if errors.Is(err, tenants.ErrNotFound) {
			return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client")
		}
		return nil, p.serverError(ctx, "CreateAuthRequest: reading client", err, slog.String("client_id", req.ClientID))
	}
	// Exact, byte-for-byte match with a registered URI. zitadel compares
	// after QueryUnescape (so %2F matches /) and then redirects to the raw
	// value; we redirect only to what was registered. No error redirect to
	// an unmatched URI (open redirect).
	if !slices.Contains(c.RedirectURIs, req.RedirectURI) || tenants.ValidateRedirectURI("redirect_uri", req.RedirectURI) != nil {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("The redirect_uri is not registered for this client.")
	}
	if req.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("only response_type=code is supported")
	}
	// form_post would render zitadel's auto-submitting page with inline
	// script (blocked by our CSP); fragment is for implicit flows.
	if req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	}
	if !slices.Contains(req.Scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	// PKCE: S256 only. zitadel itself accepts "plain", which protects
	// nothing against an attacker who can read the authorization request.
	switch {
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge != "" && !validS256Challenge(req.CodeChallenge):
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge must be the base64url SHA-256 of the verifier")
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method without code_challenge")
	case req.CodeChallenge == "" && c.Public:
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with S256 is required for public clients")
	}
	// We keep no single-sign-on session of our own: every login goes to
	// the customer's IdP, so there is never a session to reuse silently.
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired().WithDescription("no session: prompt=none cannot be satisfied")
	}
	ex := rs.authorize
	if ex.organization != "" && !c.AllowsTenant(ex.organization) {
		return nil, oidc.ErrAccessDenied().WithDescription("this organization cannot sign in to this application")
	}

	now := p.clock.Now()
	id, err := tenants.NewToken(prefixLogin, p.random)
	if err != nil {
		return nil, p.serverError(ctx, "CreateAuthRequest: login id", err)
	}
	var maxAge *int64
	if req.MaxAge != nil {
		v := int64(*req.MaxAge)
		maxAge = &v
	}
	var locales []string
	for _, t := range req.UILocales {
		locales = append(locales, t.String())
	}
	rec := LoginRecord{
		ID: id.Reveal(), ClientID: c.ID, ClientName: c.Name,
		Request: AuthParams{
			Scopes: req.Scopes, ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
			RedirectURI: req.RedirectURI, State: req.State, Nonce: req.Nonce, Prompt: req.Prompt,
			MaxAgeSeconds: maxAge, UILocales: locales, LoginHint: req.LoginHint, DomainHint: ex.domainHint,
			ACRValues: req.ACRValues, IDTokenHintSubject: userID,
		},
		CodeChallenge: req.CodeChallenge, BrowserHash: rs.browserHash,
		HintTenantID: ex.organization, HintConnectionID: ex.connection,
		CreatedAt: now, ExpiresAt: now.Add(p.cfg.LoginTTL),
	}
	if err := p.st.CreateLogin(ctx, rec); err != nil {
		return nil, p.serverError(ctx, "CreateAuthRequest: storing login", err, slog.String("client_id", c.ID))
	}
	return &authRequest{rec}, nil
}

// AuthRequestByID serves zitadel's own callback, which Handler does not
// route (see Provider.callback); it is kept correct for completeness.
func (s *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	if !validLoginID(id) {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired login")
	}
	l, err := s.p.st.Login(ctx, id)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired login")
	case err != nil:
		return nil, s.p.serverError(ctx, "AuthRequestByID", err)
	case !l.ExpiresAt.After(s.p.clock.Now()):
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired login")
	}
	return &authRequest{l}, nil
}

// AuthRequestByCode redeems a code: the token wrapper has authenticated
// the client and hashed the PKCE verifier, so a code is spent only by its
// own client, with the right verifier and redirect_uri. zitadel would
// otherwise look the code up before authenticating anyone, letting anyone
// holding a stolen code burn it. The grant and its tokens are created in
// the same statement (so a code is never spent without its grant existing
// for a replay to revoke); CreateAccessToken and
// CreateAccessAndRefreshTokens then hand zitadel what was created.
func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	p := s.p
	rs := reqStateFrom(ctx)
	if rs == nil || rs.authClientID == "" {
		return nil, oidc.ErrInvalidClient().WithDescription("client authentication required")
	}
	if rs.codeLogin != nil {
		if rs.code != code {
			return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
		}
		return rs.codeLogin, nil
	}
	c, err := p.client(ctx, rs.authClientID)
	if err != nil {
		return nil, p.serverError(ctx, "AuthRequestByCode: reading client", err, slog.String("client_id", rs.authClientID))
	}
	now := p.clock.Now()
	raw, err := tenants.NewToken(refreshTokenPrefix, p.random)
	if err != nil {
		return nil, p.serverError(ctx, "AuthRequestByCode: refresh token", err)
	}
	atExp := now.Add(ttl(c.AccessTokenTTL, p.cfg.AccessTokenTTL))
	rtExp := now.Add(ttl(c.RefreshTokenTTL, p.cfg.RefreshTokenTTL))
	r := CodeRedemption{
		CodeHash: hashToken(code), ClientID: c.ID, CodeChallenge: rs.codeChallenge, RedirectURI: rs.redirectURI,
		GrantID: p.newID(prefixGrant), AccessTokenID: p.newID(prefixAccessToken),
		AccessExpiresAt: atExp, OfflineAccessExpiresAt: minTime(atExp, rtExp),
		RefreshTokenID: p.newID(prefixRefreshID), RefreshTokenHash: hashToken(raw.Reveal()), RefreshExpiresAt: rtExp,
	}
	l, _, err := p.st.RedeemCode(ctx, r, now)
	switch {
	case errors.Is(err, ErrCodeReplayed):
		p.log.LogAttrs(ctx, slog.LevelWarn, "oidcprovider: authorization code replayed; its grant is revoked",
			slog.String("client_id", c.ID))
		p.revoked(ctx, Revocation{ClientID: c.ID, Subject: l.Subject, TenantID: l.TenantID, ConnectionID: l.ConnectionID, Reason: reasonCodeReplayed, Grants: 1})
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	case errors.Is(err, ErrTenantNotAllowed):
		// Defence in depth: StartSAML and CompleteLogin checked the
		// allow-list, but it may have changed since.
		p.log.LogAttrs(ctx, slog.LevelWarn, "oidcprovider: token refused: tenant not allowed by client", slog.String("client_id", c.ID))
		return nil, oidc.ErrInvalidGrant().WithDescription("this organization cannot sign in to this application")
	case errors.Is(err, ErrIdentityInactive):
		p.log.LogAttrs(ctx, slog.LevelWarn, "oidcprovider: token refused: identity deactivated", slog.String("client_id", c.ID))
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	case errors.Is(err, tenants.ErrNotFound), errors.Is(err, tenants.ErrConflict):
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	case err != nil:
		return nil, p.serverError(ctx, "AuthRequestByCode", err, slog.String("client_id", c.ID))
	}
	if l.Subject == "" || strings.Contains(l.Subject, ":") || l.Claims.Subject != l.Subject {
		return nil, p.serverError(ctx, "AuthRequestByCode", errors.New("login has no valid subject"), slog.String("login_id", l.ID))
	}
	ar := &authRequest{l}
	rs.code, rs.codeLogin, rs.redemption, rs.refreshToken = code, ar, &r, raw.Reveal()
	return ar, nil
}

// SaveAuthCode is zitadel's hook for its own callback, which Handler does
// not route; it still enforces the browser binding.
func (s *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	p := s.p
	rs := reqStateFrom(ctx)
	if rs == nil || rs.browserHash == "" {
		return oidc.ErrInvalidRequest().WithDescription("this sign-in must be finished in the browser that started it")
	}
	now := p.clock.Now()
	if _, err := p.st.SaveCode(ctx, id, hashToken(code), rs.browserHash, now.Add(p.cfg.CodeTTL), now); err != nil {
		if errors.Is(err, tenants.ErrNotFound) || errors.Is(err, tenants.ErrConflict) {
			return oidc.ErrInvalidRequest().WithDescription("unknown or expired login")
		}
		return p.serverError(ctx, "SaveAuthCode", err)
	}
	return nil
}

// DeleteAuthRequest does nothing: a redeemed login stays as long as its
// grant so that a replayed code finds and revokes it (DeleteExpiredOIDC
// removes it later). Consumption already made the code unusable.
func (s *opStorage) DeleteAuthRequest(context.Context, string) error { return nil }

func (s *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	ar, ok := req.(*authRequest)
	if !ok {
		return "", time.Time{}, s.p.serverError(ctx, "CreateAccessToken", fmt.Errorf("unsupported token request %T", req))
	}
	id, _, exp, err := s.p.redeemedTokens(ctx, ar, false)
	return id, exp, err
}

func (s *opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	switch r := req.(type) {
	case *authRequest:
		return s.p.redeemedTokens(ctx, r, true)
	case *refreshRequest:
		return s.p.rotate(ctx, r, current)
	default:
		return "", "", time.Time{}, s.p.serverError(ctx, "CreateAccessAndRefreshTokens", fmt.Errorf("unsupported token request %T", req))
	}
}

// redeemedTokens hands zitadel the tokens RedeemCode created for this
// login in this request.
func (p *Provider) redeemedTokens(ctx context.Context, ar *authRequest, offline bool) (accessID, refresh string, exp time.Time, err error) {
	rs := reqStateFrom(ctx)
	if rs == nil || rs.redemption == nil || rs.codeLogin == nil || rs.codeLogin.l.ID != ar.l.ID {
		return "", "", time.Time{}, p.serverError(ctx, "issuing tokens", errors.New("no code redeemed in this request"))
	}
	r := rs.redemption
	if !offline {
		if slices.Contains(ar.l.Request.Scopes, oidc.ScopeOfflineAccess) {
			return r.AccessTokenID, "", r.OfflineAccessExpiresAt, nil
		}
		return r.AccessTokenID, "", r.AccessExpiresAt, nil
	}
	return r.AccessTokenID, rs.refreshToken, r.OfflineAccessExpiresAt, nil
}

// rotate redeems a refresh token for the next access and refresh tokens.
func (p *Provider) rotate(ctx context.Context, r *refreshRequest, current string) (accessID, refresh string, exp time.Time, err error) {
	g := r.st.Grant
	c, err := p.client(ctx, g.ClientID)
	if err != nil {
		if errors.Is(err, tenants.ErrNotFound) {
			return "", "", time.Time{}, oidc.ErrInvalidClient().WithDescription("unknown client")
		}
		return "", "", time.Time{}, p.serverError(ctx, "refreshing tokens: reading client", err)
	}
	if !c.AllowsTenant(g.TenantID) {
		p.log.LogAttrs(ctx, slog.LevelWarn, "oidcprovider: refresh refused: tenant not allowed by client",
			slog.String("client_id", c.ID), slog.String("tenant_id", g.TenantID))
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("this organization cannot sign in to this application")
	}
	now := p.clock.Now()
	atExp := now.Add(ttl(c.AccessTokenTTL, p.cfg.AccessTokenTTL))
	if atExp.After(g.ExpiresAt) {
		atExp = g.ExpiresAt
	}
	raw, err := tenants.NewToken(refreshTokenPrefix, p.random)
	if err != nil {
		return "", "", time.Time{}, p.serverError(ctx, "refreshing tokens: refresh token", err)
	}
	at := AccessToken{ID: p.newID(prefixAccessToken), GrantID: g.ID, Scopes: r.scopes, CreatedAt: now, ExpiresAt: atExp}
	rt := RefreshToken{ID: p.newID(prefixRefreshID), Hash: hashToken(raw.Reveal()), GrantID: g.ID, CreatedAt: now, ExpiresAt: g.ExpiresAt}
	switch err := p.st.RotateRefreshToken(ctx, hashToken(current), at, rt, now); {
	case errors.Is(err, ErrRefreshTokenReused):
		// Lost a race with another use of the same token: that is reuse
		// too (RFC 9700 §4.14.2), so the family goes.
		p.revokeGrant(ctx, g, reasonRefreshReused, now)
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	case err != nil:
		return "", "", time.Time{}, p.serverError(ctx, "refreshing tokens", err, slog.String("client_id", c.ID))
	}
	return at.ID, raw.Reveal(), atExp, nil
}

func (p *Provider) revokeGrant(ctx context.Context, g Grant, reason string, now time.Time) {
	p.log.LogAttrs(ctx, slog.LevelWarn, "oidcprovider: revoking grant", slog.String("grant_id", g.ID), slog.String("reason", reason))
	if err := p.st.RevokeGrant(ctx, g.ID, reason, now); err != nil && !errors.Is(err, tenants.ErrNotFound) {
		p.log.LogAttrs(ctx, slog.LevelError, "oidcprovider: revoking grant failed", slog.String("grant_id", g.ID), slog.Any("error", err))
		return
	}
	p.revoked(ctx, Revocation{ClientID: g.ClientID, Subject: g.Subject, TenantID: g.TenantID, ConnectionID: g.ConnectionID, Reason: reason, Grants: 1})
}

// revoked reports a revocation to Config.OnRevoke (the audit log).
func (p *Provider) revoked(ctx context.Context, r Revocation) {
	if p.cfg.OnRevoke != nil {
		p.cfg.OnRevoke(ctx, r)
	}
}

// TokenRequestByRefreshToken reads a refresh token's grant. A token that was
// already rotated is reuse: the whole grant is revoked.
func (s *opStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	p := s.p
	rs := reqStateFrom(ctx)
	if rs != nil && rs.refreshGrant != nil {
		if rs.refresh != token {
			return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
		}
		return rs.refreshGrant, nil
	}
	if len(token) > maxRefreshTokenLength || !strings.HasPrefix(token, refreshTokenPrefix) {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	st, err := p.st.RefreshToken(ctx, hashToken(token))
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	case err != nil:
		return nil, p.serverError(ctx, "TokenRequestByRefreshToken", err)
	}
	now := p.clock.Now()
	g := st.Grant
	switch {
	case !st.Refresh.UsedAt.IsZero():
		if g.RevokedAt.IsZero() {
			p.revokeGrant(ctx, g, reasonRefreshReused, now)
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	case !g.RevokedAt.IsZero(), !st.Refresh.ExpiresAt.After(now), !g.ExpiresAt.After(now),
		st.Identity.Status != tenants.IdentityActive, st.Identity.Subject != g.Subject:
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	claims := claimsOf(st.Identity, g.IdP)
	claims.TenantID, claims.ConnectionID = g.TenantID, g.ConnectionID
	r := &refreshRequest{st: st, scopes: g.Scopes, claims: claims}
	if rs != nil {
		rs.refresh, rs.refreshGrant = token, r
	}
	return r, nil
}

// TerminateSession revokes the subject's grants for the client. With either
// missing nothing is revoked: a bare client_id must not log out every user
// of an application (logout CSRF).
func (s *opStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	if userID == "" || clientID == "" {
		return nil
	}
	n, err := s.p.st.RevokeGrants(ctx, userID, clientID, reasonLogout, s.p.clock.Now())
	if err != nil {
		return s.p.serverError(ctx, "TerminateSession", err, slog.String("client_id", clientID))
	}
	s.p.log.LogAttrs(ctx, slog.LevelInfo, "oidcprovider: logout revoked grants",
		slog.String("client_id", clientID), slog.String("sub", userID), slog.Int64("grants", n))
	if n > 0 {
		s.p.revoked(ctx, Revocation{ClientID: clientID, Subject: userID, Reason: reasonLogout, Grants: n})
	}
	return nil
}

// TerminateSessionFromRequest: the user and client come from a verified
// id_token_hint (zitadel sets ClientID to its azp and accepts expired
// hints), so only the holder of an ID token can log its subject out.
func (s *opStorage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if err := s.TerminateSession(ctx, req.UserID, req.ClientID); err != nil {
		return "", err
	}
	return req.RedirectURI, nil
}

// RevokeToken revokes a refresh token's grant (rth_ reference from
// GetRefreshTokenInfo) or one access token (at_ id decrypted by zitadel).
// Unknown tokens are not an error (RFC 7009 §2.2); tokens of another client
// are refused.
func (s *opStorage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	p := s.p
	now := p.clock.Now()
	if userID == "" {
		return nil // neither one of our refresh tokens nor a decryptable access token
	}
	var (
		st  TokenState
		err error
	)
	switch {
	case strings.HasPrefix(tokenOrID, refreshRefPrefix):
		st, err = p.st.RefreshToken(ctx, strings.TrimPrefix(tokenOrID, refreshRefPrefix))
	case strings.HasPrefix(tokenOrID, prefixAccessToken) && len(tokenOrID) <= maxTokenIDLength:
		st, err = p.st.AccessToken(ctx, tokenOrID)
	default:
		return nil
	}
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return nil
	case err != nil:
		return p.serverError(ctx, "RevokeToken", err, slog.String("client_id", clientID))
	case st.Grant.ClientID != clientID || st.Grant.Subject != userID:
		return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
	}
	if st.Refresh != nil {
		err = p.st.RevokeGrant(ctx, st.Grant.ID, reasonRevoked, now)
	} else {
		err = p.st.RevokeAccessToken(ctx, st.Access.ID, now)
	}
	if err != nil && !errors.Is(err, tenants.ErrNotFound) {
		return p.serverError(ctx, "RevokeToken", err, slog.String("client_id", clientID))
	}
	r := Revocation{ClientID: clientID, Subject: st.Grant.Subject, TenantID: st.Grant.TenantID, ConnectionID: st.Grant.ConnectionID, Reason: reasonRevoked}
	if st.Refresh != nil {
		r.Grants = 1
	} else {
		r.AccessTokens = 1
	}
	p.revoked(ctx, r)
	return nil
}

// GetRefreshTokenInfo hands a refresh token to RevokeToken by its hash (the
// token itself never leaves this package). Anything else is
// op.ErrInvalidRefreshToken, so zitadel tries it as an access token.
func (s *opStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	if len(token) > maxRefreshTokenLength || !strings.HasPrefix(token, refreshTokenPrefix) {
		return "", "", op.ErrInvalidRefreshToken
	}
	h := hashToken(token)
	st, err := s.p.st.RefreshToken(ctx, h)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return "", "", op.ErrInvalidRefreshToken
	case err != nil:
		return "", "", s.p.serverError(ctx, "GetRefreshTokenInfo", err, slog.String("client_id", clientID))
	}
	return st.Grant.Subject, refreshRefPrefix + h, nil
}

func (s *opStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	snap, err := s.p.keys.snapshot(ctx)
	if err != nil {
		return nil, s.p.serverError(ctx, "SigningKey", err)
	}
	k := snap.signer(s.p.clock.Now())
	if k == nil {
		return nil, s.p.serverError(ctx, "SigningKey", errors.New("no active signing key"))
	}
	return k.signing, nil
}

func (s *opStorage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	snap, err := s.p.keys.snapshot(ctx)
	if err != nil {
		return nil, s.p.serverError(ctx, "SignatureAlgorithms", err)
	}
	return snap.algs, nil
}

func (s *opStorage) KeySet(ctx context.Context) ([]op.Key, error) {
	snap, err := s.p.keys.snapshot(ctx)
	if err != nil {
		return nil, s.p.serverError(ctx, "KeySet", err)
	}
	return snap.published, nil
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p.client(ctx, id)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	case err != nil:
		return nil, s.p.serverError(ctx, "GetClientByClientID", err, slog.String("client_id", id))
	}
	return &client{c: c, loginURL: s.p.cfg.LoginURL, idTTL: ttl(c.IDTokenTTL, s.p.cfg.IDTokenTTL)}, nil
}

// AuthorizeClientIDSecret checks a confidential client's secret in constant
// time, the previous secret within its grace period included. The error
// text is generic: zitadel's introspection endpoint prints it.
func (s *opStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.p.client(ctx, id)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	case err != nil:
		return s.p.serverError(ctx, "AuthorizeClientIDSecret", err, slog.String("client_id", id))
	}
	if len(secret) > maxSecretLength || !tenants.AuthenticateClient(c, tenants.Secret(secret), s.p.clock.Now()) {
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in zitadel; SetUserinfoFromRequest
// does the work.
func (s *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims from the snapshot the
// request carries (taken at CompleteLogin for a code, read with the
// refresh token for a refresh): no store round trip.
func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	var c Claims
	switch r := req.(type) {
	case *authRequest:
		c = r.l.Claims
	case *refreshRequest:
		c = r.claims
	default:
		return s.p.serverError(ctx, "SetUserinfoFromRequest", fmt.Errorf("unsupported request %T", req))
	}
	if c.Subject == "" || c.Subject != req.GetSubject() {
		return s.p.serverError(ctx, "SetUserinfoFromRequest", errors.New("claims do not match the subject"))
	}
	setUserinfo(info, c, scopes, nil, false)
	return nil
}

// errTokenInactive is what /userinfo reports for every unusable token, and
// what makes /introspect answer active:false.
func errTokenInactive() *oidc.Error {
	return &oidc.Error{ErrorType: "invalid_token", Description: "the access token is invalid, expired or revoked"}
}

// activeAccessToken is the check op leaves to us: op only decrypts the
// token. It must exist, belong to subject, be unexpired and unrevoked, its
// grant live, and its identity active.
func (p *Provider) activeAccessToken(ctx context.Context, tokenID, subject string) (TokenState, error) {
	if !strings.HasPrefix(tokenID, prefixAccessToken) || len(tokenID) > maxTokenIDLength {
		return TokenState{}, errTokenInactive()
	}
	st, err := p.st.AccessToken(ctx, tokenID)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return TokenState{}, errTokenInactive()
	case err != nil:
		return TokenState{}, p.serverError(ctx, "reading access token", err)
	}
	now := p.clock.Now()
	g := st.Grant
	if g.Subject != subject || !st.Access.RevokedAt.IsZero() || !st.Access.ExpiresAt.After(now) ||
		!g.RevokedAt.IsZero() || !g.ExpiresAt.After(now) ||
		st.Identity.Status != tenants.IdentityActive || st.Identity.Subject != subject {
		return TokenState{}, errTokenInactive()
	}
	return st, nil
}

// SetUserinfoFromToken serves /userinfo with the identity as it is now.
func (s *opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	st, err := s.p.activeAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	c := claimsOf(st.Identity, st.Grant.IdP)
	c.TenantID, c.ConnectionID = st.Grant.TenantID, st.Grant.ConnectionID
	setUserinfo(info, c, st.Access.Scopes, st.Identity.Profile.Attributes, true)
	return nil
}

// SetIntrospectionFromToken: zitadel sets active:true whenever this returns
// nil and marshals whatever was filled in otherwise, so every check comes
// before the first field is set. A token is active only for the client it
// was issued to.
func (s *opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	st, err := s.p.activeAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if st.Grant.ClientID != clientID {
		return errTokenInactive()
	}
	g := st.Grant
	resp.Scope = st.Access.Scopes
	resp.ClientID = g.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(st.Access.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(st.Access.CreatedAt)
	resp.AuthTime = oidc.FromTime(g.AuthTime)
	resp.Subject = g.Subject
	resp.Audience = oidc.Audience{g.ClientID}
	resp.Issuer = s.p.cfg.Issuer
	resp.Claims = map[string]any{"org_id": g.TenantID, "connection_id": g.ConnectionID}
	return nil
}

// GetPrivateClaimsFromScopes feeds JWT access tokens, which we never issue.
func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID backs private_key_jwt, the JWT-bearer grant and
// request objects, none of which we support. zitadel keeps the JWT-bearer
// grant always on, so this must always fail.
func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("JWT client authentication is not supported")
}

func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

func (s *opStorage) Health(ctx context.Context) error { return s.p.st.Health(ctx) }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func ttl(client, def time.Duration) time.Duration {
	if client > 0 {
		return client
	}
	return def
}
