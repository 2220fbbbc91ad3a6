package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/tenants"
)

// This file implements oidcprovider.Store: logins, grants and their tokens.
// Keys and secrets are in oidc_keys.go. Every step that moves a login or a
// token from one state to the next is a single conditional UPDATE, or, for
// a code redemption with its grant and for a refresh rotation, one
// statement with data-modifying CTEs on PostgreSQL and one IMMEDIATE
// transaction on SQLite. So each step is one round trip on PostgreSQL, and
// two replicas racing on the same row cannot both win; when the condition
// fails the method reports ErrConflict (or ErrNotFound) and the provider
// reads the row to say why. The SQL is written out per dialect where JSON
// or data-modifying CTEs differ (allowsTenant, redeemPG/redeemTx), never
// translated.

var _ oidcprovider.Store = (*Store)(nil)

const loginColumns = `id, client_id, client_name, request, code_challenge, browser_hash, hint_tenant_id, hint_connection_id,
	tenant_id, connection_id, saml_request_id, saml_request_expires_at, saml_request_used_at,
	done, subject, auth_time, claims, failed_at, failure,
	code_hash, code_expires_at, code_used_at, code_replayed_at, grant_id, created_at, expires_at`

func scanLogin(r rowScanner) (oidcprovider.LoginRecord, error) {
	var (
		l                                           oidcprovider.LoginRecord
		tenantID, connID, samlID, codeHash, grantID sql.NullString
	)
	err := r.Scan(&l.ID, &l.ClientID, &l.ClientName, js(&l.Request), &l.CodeChallenge, &l.BrowserHash, &l.HintTenantID, &l.HintConnectionID,
		&tenantID, &connID, &samlID, tm(&l.SAMLRequestExpiresAt), tm(&l.SAMLRequestUsedAt),
		&l.Done, &l.Subject, tm(&l.AuthTime), js(&l.Claims), tm(&l.FailedAt), &l.Failure,
		&codeHash, tm(&l.CodeExpiresAt), tm(&l.CodeUsedAt), tm(&l.CodeReplayedAt), &grantID, tm(&l.CreatedAt), tm(&l.ExpiresAt))
	if err != nil {
		return oidcprovider.LoginRecord{}, err
	}
	l.TenantID, l.ConnectionID, l.SAMLRequestID, l.GrantID = tenantID.String, connID.String, samlID.String, grantID.String
	l.CodeIssued = codeHash.Valid
	return l, nil
}

// allowsTenant is a predicate on a clients row aliased k: its allow-list is
// empty or holds the tenant id that the SQL expression tenant evaluates to.
// Per dialect, because JSON membership is spelled differently; both are
// exact matches on the array's elements.
func (s *Store) allowsTenant(tenant string) string {
	if s.d.name() == "postgres" {
		return `(jsonb_array_length(k.allowed_tenants) = 0 OR k.allowed_tenants ? ` + tenant + `)`
	}
	return `(json_array_length(k.allowed_tenants) = 0 OR EXISTS (SELECT 1 FROM json_each(k.allowed_tenants) WHERE value = ` + tenant + `))`
}

// CreateLogin inserts a new login.
func (s *Store) CreateLogin(ctx context.Context, l oidcprovider.LoginRecord) error {
	req, err := jsonArg(l.Request)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO logins (id, client_id, client_name, request, redirect_uri, max_age_seconds,
		code_challenge, browser_hash, hint_tenant_id, hint_connection_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		l.ID, l.ClientID, l.ClientName, req, l.Request.RedirectURI, l.Request.MaxAgeSeconds,
		l.CodeChallenge, l.BrowserHash, l.HintTenantID, l.HintConnectionID, s.d.time(l.CreatedAt), s.d.time(l.ExpiresAt))
	if err != nil {
		return s.dbError("store: create login for "+l.ClientID, err)
	}
	return nil
}

// Login returns a login.
func (s *Store) Login(ctx context.Context, id string) (oidcprovider.LoginRecord, error) {
	l, err := scanLogin(s.db.QueryRowContext(ctx, `SELECT `+loginColumns+` FROM logins WHERE id = $1`, id))
	if err != nil {
		return oidcprovider.LoginRecord{}, s.dbError("store: login", err)
	}
	return l, nil
}

// loginExists tells ErrNotFound from ErrConflict after a conditional update
// touched nothing.
func (s *Store) loginExists(ctx context.Context, op, where string, args ...any) error {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM logins WHERE `+where, args...).Scan(&one)
	if err != nil {
		return s.dbError(op, err)
	}
	return fmt.Errorf("%s: %w", op, ErrConflict)
}

// RouteLogin records the route of a pending login.
func (s *Store) RouteLogin(ctx context.Context, id string, r oidcprovider.LoginRoute, now time.Time) error {
	op := "store: route login to " + r.ConnectionID
	res, err := s.db.ExecContext(ctx, `UPDATE logins
		SET tenant_id = $2, connection_id = $3, saml_request_id = $4, saml_request_expires_at = $5
		WHERE id = $1 AND NOT done AND failed_at IS NULL AND expires_at > $6 AND saml_request_used_at IS NULL
		  AND (hint_tenant_id = '' OR hint_tenant_id = $2) AND (hint_connection_id = '' OR hint_connection_id = $3)
		  AND EXISTS (SELECT 1 FROM connections c WHERE c.id = $3 AND c.tenant_id = $2)
		  AND EXISTS (SELECT 1 FROM clients k WHERE k.id = logins.client_id AND `+s.allowsTenant("$2")+`)`,
		id, r.TenantID, r.ConnectionID, r.SAMLRequestID, s.d.time(r.SAMLRequestExpiresAt), s.d.time(now))
	return s.loginTransition(ctx, op, id, res, err)
}

// ConsumeSAMLRequest spends a login's SAML request once.
func (s *Store) ConsumeSAMLRequest(ctx context.Context, connectionID, samlRequestID string, now time.Time) (oidcprovider.LoginRecord, error) {
	op := "store: consume SAML request on " + connectionID
	l, err := scanLogin(s.db.QueryRowContext(ctx, `UPDATE logins SET saml_request_used_at = $3
		WHERE connection_id = $1 AND saml_request_id = $2 AND saml_request_used_at IS NULL
		  AND saml_request_expires_at > $3 AND NOT done AND failed_at IS NULL AND expires_at > $3
		RETURNING `+loginColumns, connectionID, samlRequestID, s.d.time(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return oidcprovider.LoginRecord{}, s.loginExists(ctx, op, `connection_id = $1 AND saml_request_id = $2`, connectionID, samlRequestID)
	}
	if err != nil {
		return oidcprovider.LoginRecord{}, s.dbError(op, err)
	}
	return l, nil
}

// LoginBySAMLRequest finds the login of a SAML request.
func (s *Store) LoginBySAMLRequest(ctx context.Context, connectionID, samlRequestID string) (oidcprovider.LoginRecord, error) {
	l, err := scanLogin(s.db.QueryRowContext(ctx, `SELECT `+loginColumns+` FROM logins
		WHERE connection_id = $1 AND saml_request_id = $2`, connectionID, samlRequestID))
	if err != nil {
		return oidcprovider.LoginRecord{}, s.dbError("store: login by SAML request on "+connectionID, err)
	}
	return l, nil
}

// CompleteLogin marks a routed, answered login done.
func (s *Store) CompleteLogin(ctx context.Context, id string, c oidcprovider.LoginCompletion, now time.Time) error {
	op := "store: complete login for " + c.Subject
	claims, err := jsonArg(c.Claims)
	if err != nil {
		return err
	}
	// max_age in whole seconds against an age rounded up, and prompt=login
	// against the login's creation: plain comparisons, the same in both
	// dialects.
	res, err := s.db.ExecContext(ctx, `UPDATE logins SET done = TRUE, subject = $4, auth_time = $5, claims = $6
		WHERE id = $1 AND NOT done AND failed_at IS NULL AND expires_at > $7
		  AND tenant_id = $2 AND connection_id = $3 AND saml_request_used_at IS NOT NULL
		  AND (max_age_seconds IS NULL
		       OR (max_age_seconds = 0 AND created_at <= $8)
		       OR (max_age_seconds > 0 AND max_age_seconds >= $9))
		  AND EXISTS (SELECT 1 FROM clients k WHERE k.id = logins.client_id AND `+s.allowsTenant("$2")+`)`,
		id, c.TenantID, c.ConnectionID, c.Subject, s.d.time(c.AuthTime), claims, s.d.time(now),
		s.d.time(c.AuthTimeLatest), c.AuthAgeSeconds)
	return s.loginTransition(ctx, op, id, res, err)
}

// FailLogin ends a pending login with an error.
func (s *Store) FailLogin(ctx context.Context, id, failure string, now time.Time) (oidcprovider.LoginRecord, error) {
	op := "store: fail login"
	l, err := scanLogin(s.db.QueryRowContext(ctx, `UPDATE logins SET failed_at = $2, failure = $3
		WHERE id = $1 AND NOT done AND failed_at IS NULL RETURNING `+loginColumns, id, s.d.time(now), failure))
	if errors.Is(err, sql.ErrNoRows) {
		return oidcprovider.LoginRecord{}, s.loginExists(ctx, op, `id = $1`, id)
	}
	if err != nil {
		return oidcprovider.LoginRecord{}, s.dbError(op, err)
	}
	return l, nil
}

// SaveCode attaches the only code a login gets.
func (s *Store) SaveCode(ctx context.Context, loginID, codeHash, browserHash string, expiresAt, now time.Time) (oidcprovider.LoginRecord, error) {
	op := "store: save code"
	l, err := scanLogin(s.db.QueryRowContext(ctx, `UPDATE logins SET code_hash = $2, code_expires_at = $3
		WHERE id = $1 AND done AND failed_at IS NULL AND code_hash IS NULL AND expires_at > $5 AND browser_hash = $4
		RETURNING `+loginColumns, loginID, codeHash, s.d.time(expiresAt), browserHash, s.d.time(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return oidcprovider.LoginRecord{}, s.loginExists(ctx, op, `id = $1`, loginID)
	}
	if err != nil {
		return oidcprovider.LoginRecord{}, s.dbError(op, err)
	}
	return l, nil
}

// redeemable is the condition on a logins row for a code redemption, with
// parameters $1 code hash, $2 client, $3 PKCE challenge, $4 redirect_uri,
// $5 now.
const redeemable = `code_hash = $1 AND client_id = $2 AND code_challenge = $3 AND redirect_uri = $4
	AND code_used_at IS NULL AND code_expires_at > $5 AND done AND failed_at IS NULL`

// RedeemCode spends a code and creates its grant atomically; a second
// redemption revokes that grant.
func (s *Store) RedeemCode(ctx context.Context, r oidcprovider.CodeRedemption, now time.Time) (oidcprovider.LoginRecord, oidcprovider.Grant, error) {
	op := "store: redeem code of " + r.ClientID
	var (
		l   oidcprovider.LoginRecord
		err error
	)
	if s.d.name() == "postgres" {
		l, err = s.redeemPG(ctx, r, now)
	} else {
		l, err = s.redeemTx(ctx, r, now)
	}
	if err == nil {
		return l, grantOf(l, r, now), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return oidcprovider.LoginRecord{}, oidcprovider.Grant{}, s.dbError(op, err)
	}
	return oidcprovider.LoginRecord{}, oidcprovider.Grant{}, s.redeemFailure(ctx, op, r, now)
}

func offline(l oidcprovider.LoginRecord) bool {
	for _, sc := range l.Request.Scopes {
		if sc == "offline_access" {
			return true
		}
	}
	return false
}

// grantOf is the grant RedeemCode created for l.
func grantOf(l oidcprovider.LoginRecord, r oidcprovider.CodeRedemption, now time.Time) oidcprovider.Grant {
	exp := r.AccessExpiresAt
	if offline(l) {
		exp = r.RefreshExpiresAt
	}
	return oidcprovider.Grant{
		ID: r.GrantID, LoginID: l.ID, ClientID: l.ClientID, Subject: l.Subject, TenantID: l.TenantID,
		ConnectionID: l.ConnectionID, IdP: l.Claims.IdP, Scopes: l.Request.Scopes, AuthTime: l.AuthTime,
		CreatedAt: now, ExpiresAt: exp,
	}
}

// redeemPG is one statement, hence one round trip. Data-modifying CTEs run
// exactly once on one snapshot, and each insert feeds from the row the
// UPDATE returned, so nothing is written unless the code qualified; the
// UPDATE's row lock makes concurrent redemptions of one code serialize,
// and the loser re-reads code_used_at and matches nothing.
func (s *Store) redeemPG(ctx context.Context, r oidcprovider.CodeRedemption, now time.Time) (oidcprovider.LoginRecord, error) {
	return scanLogin(s.db.QueryRowContext(ctx, `WITH l AS (
			UPDATE logins SET code_used_at = $5::timestamptz, grant_id = $6::text,
				expires_at = GREATEST(expires_at, CASE WHEN request->'scopes' ? 'offline_access' THEN $11::timestamptz ELSE $8::timestamptz END)
			WHERE `+redeemable+`
			  AND EXISTS (SELECT 1 FROM identities i WHERE i.sub = logins.subject AND i.status = 'active')
			  AND EXISTS (SELECT 1 FROM clients k WHERE k.id = logins.client_id AND `+s.allowsTenant("logins.tenant_id")+`)
			RETURNING `+loginColumns+`, request->'scopes' ? 'offline_access' AS offline
		), g AS (
			INSERT INTO grants (id, login_id, client_id, subject, tenant_id, connection_id, idp, scopes, auth_time, created_at, expires_at)
			SELECT $6::text, id, client_id, subject, tenant_id, connection_id, claims->>'idp', request->'scopes', auth_time,
				$5::timestamptz, CASE WHEN offline THEN $11::timestamptz ELSE $8::timestamptz END
			FROM l
			RETURNING id, scopes
		), a AS (
			INSERT INTO access_tokens (id, grant_id, scopes, created_at, expires_at)
			SELECT $7::text, g.id, g.scopes, $5::timestamptz, CASE WHEN l.offline THEN $9::timestamptz ELSE $8::timestamptz END
			FROM g, l
			RETURNING 1
		), rt AS (
			INSERT INTO refresh_tokens (token_hash, id, grant_id, created_at, expires_at)
			SELECT $10::text, $12::text, g.id, $5::timestamptz, $11::timestamptz FROM g, l WHERE l.offline
			RETURNING 1
		)
		SELECT `+loginColumns+` FROM l`,
		r.CodeHash, r.ClientID, r.CodeChallenge, r.RedirectURI, s.d.time(now), r.GrantID, r.AccessTokenID,
		s.d.time(r.AccessExpiresAt), s.d.time(r.OfflineAccessExpiresAt), r.RefreshTokenHash, s.d.time(r.RefreshExpiresAt), r.RefreshTokenID))
}

// redeemTx does the same in one IMMEDIATE transaction (SQLite holds its
// single write lock from BEGIN, so redemptions serialize).
func (s *Store) redeemTx(ctx context.Context, r oidcprovider.CodeRedemption, now time.Time) (oidcprovider.LoginRecord, error) {
	var l oidcprovider.LoginRecord
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		l, err = scanLogin(tx.QueryRowContext(ctx, `UPDATE logins SET code_used_at = $5, grant_id = $6
			WHERE `+redeemable+`
			  AND EXISTS (SELECT 1 FROM identities i WHERE i.sub = logins.subject AND i.status = 'active')
			  AND EXISTS (SELECT 1 FROM clients k WHERE k.id = logins.client_id AND `+s.allowsTenant("logins.tenant_id")+`)
			RETURNING `+loginColumns,
			r.CodeHash, r.ClientID, r.CodeChallenge, r.RedirectURI, s.d.time(now), r.GrantID))
		if err != nil {
			return err
		}
		g := grantOf(l, r, now)
		scopes, err := jsonArg(g.Scopes)
		if err != nil {
			return err
		}
		if g.ExpiresAt.After(l.ExpiresAt) {
			if _, err := tx.ExecContext(ctx, `UPDATE logins SET expires_at = $2 WHERE id = $1`, l.ID, s.d.time(g.ExpiresAt)); err != nil {
				return err
			}
			l.ExpiresAt = g.ExpiresAt
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO grants (id, login_id, client_id, subject, tenant_id, connection_id, idp, scopes, auth_time, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			g.ID, g.LoginID, g.ClientID, g.Subject, g.TenantID, g.ConnectionID, g.IdP, scopes,
			s.d.time(g.AuthTime), s.d.time(g.CreatedAt), s.d.time(g.ExpiresAt)); err != nil {
			return err
		}
		atExp := r.AccessExpiresAt
		if offline(l) {
			atExp = r.OfflineAccessExpiresAt
		}
		at := oidcprovider.AccessToken{ID: r.AccessTokenID, GrantID: g.ID, CreatedAt: now, ExpiresAt: atExp}
		if err := insertAccessToken(ctx, tx, s.d, at, scopes); err != nil {
			return err
		}
		if offline(l) {
			return insertRefreshToken(ctx, tx, s.d, oidcprovider.RefreshToken{
				ID: r.RefreshTokenID, Hash: r.RefreshTokenHash, GrantID: g.ID, CreatedAt: now, ExpiresAt: r.RefreshExpiresAt})
		}
		return nil
	})
	return l, err
}

// redeemFailure says why a code did not redeem: a valid code refused for
// the identity or the tenant (not spent), a replay (its grant revoked), or
// nothing usable.
func (s *Store) redeemFailure(ctx context.Context, op string, r oidcprovider.CodeRedemption, now time.Time) error {
	var (
		status  sql.NullString
		allowed bool
	)
	err := s.db.QueryRowContext(ctx, `SELECT i.status, EXISTS (SELECT 1 FROM clients k WHERE k.id = logins.client_id AND `+s.allowsTenant("logins.tenant_id")+`)
		FROM logins LEFT JOIN identities i ON i.sub = logins.subject
		WHERE `+redeemable, r.CodeHash, r.ClientID, r.CodeChallenge, r.RedirectURI, s.d.time(now)).Scan(&status, &allowed)
	switch {
	case err == nil && status.String != string(tenants.IdentityActive):
		return fmt.Errorf("%s: %w", op, oidcprovider.ErrIdentityInactive)
	case err == nil && !allowed:
		return fmt.Errorf("%s: %w", op, oidcprovider.ErrTenantNotAllowed)
	case err == nil:
		return fmt.Errorf("%s: %w", op, ErrConflict) // redeemable again: a concurrent change
	case !errors.Is(err, sql.ErrNoRows):
		return s.dbError(op, err)
	}
	// A code presented again after its redemption, by anyone, with or
	// without the verifier: it leaked, so what it yielded goes.
	replayed := false
	err = s.tx(ctx, func(tx *sql.Tx) error {
		replayed = false
		var grantID sql.NullString
		err := tx.QueryRowContext(ctx, `UPDATE logins SET code_replayed_at = COALESCE(code_replayed_at, $2)
			WHERE code_hash = $1 AND code_used_at IS NOT NULL RETURNING grant_id`, r.CodeHash, s.d.time(now)).Scan(&grantID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return s.dbError(op+": marking replay", err)
		}
		replayed = true
		if grantID.Valid {
			if _, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_at = $2, revoked_reason = $3
				WHERE id = $1 AND revoked_at IS NULL`, grantID.String, s.d.time(now), "code_replayed"); err != nil {
				return s.dbError(op+": revoking grant", err)
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case replayed:
		return fmt.Errorf("%s: %w", op, oidcprovider.ErrCodeReplayed)
	default:
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
}

func insertAccessToken(ctx context.Context, tx *sql.Tx, d dialect, at oidcprovider.AccessToken, scopes any) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO access_tokens (id, grant_id, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		at.ID, at.GrantID, scopes, d.time(at.CreatedAt), d.time(at.ExpiresAt))
	return err
}

func insertRefreshToken(ctx context.Context, tx *sql.Tx, d dialect, rt oidcprovider.RefreshToken) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (token_hash, id, grant_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		rt.Hash, rt.ID, rt.GrantID, d.time(rt.CreatedAt), d.time(rt.ExpiresAt))
	return err
}

const grantColumns = `g.id, g.login_id, g.client_id, g.subject, g.tenant_id, g.connection_id, g.idp, g.scopes,
	g.auth_time, g.created_at, g.expires_at, g.revoked_at, g.revoked_reason`

// tokenIdentityColumns is what claims and status checks need.
const tokenIdentityColumns = `i.sub, i.tenant_id, i.connection_id, i.idp_subject, i.email, i.email_verified, i.profile, i.status`

func grantDest(g *oidcprovider.Grant) []any {
	return []any{&g.ID, &g.LoginID, &g.ClientID, &g.Subject, &g.TenantID, &g.ConnectionID, &g.IdP, js(&g.Scopes),
		tm(&g.AuthTime), tm(&g.CreatedAt), tm(&g.ExpiresAt), tm(&g.RevokedAt), &g.RevokedReason}
}

func identityDest(i *tenants.Identity) []any {
	return []any{&i.Subject, &i.TenantID, &i.ConnectionID, &i.IdPSubject, &i.Email, &i.EmailVerified, js(&i.Profile), (*string)(&i.Status)}
}

// AccessToken reads an access token with its grant and identity.
func (s *Store) AccessToken(ctx context.Context, id string) (oidcprovider.TokenState, error) {
	var (
		st oidcprovider.TokenState
		at oidcprovider.AccessToken
	)
	dest := []any{&at.ID, &at.GrantID, js(&at.Scopes), tm(&at.CreatedAt), tm(&at.ExpiresAt), tm(&at.RevokedAt)}
	dest = append(append(dest, grantDest(&st.Grant)...), identityDest(&st.Identity)...)
	err := s.db.QueryRowContext(ctx, `SELECT a.id, a.grant_id, a.scopes, a.created_at, a.expires_at, a.revoked_at,
		`+grantColumns+`, `+tokenIdentityColumns+`
		FROM access_tokens a JOIN grants g ON g.id = a.grant_id JOIN identities i ON i.sub = g.subject
		WHERE a.id = $1`, id).Scan(dest...)
	if err != nil {
		return oidcprovider.TokenState{}, s.dbError("store: access token", err)
	}
	st.Access = &at
	return st, nil
}

// RefreshToken reads a refresh token (by hash) with its grant and identity.
func (s *Store) RefreshToken(ctx context.Context, tokenHash string) (oidcprovider.TokenState, error) {
	var (
		st oidcprovider.TokenState
		rt oidcprovider.RefreshToken
	)
	dest := []any{&rt.Hash, &rt.ID, &rt.GrantID, tm(&rt.CreatedAt), tm(&rt.ExpiresAt), tm(&rt.UsedAt)}
	dest = append(append(dest, grantDest(&st.Grant)...), identityDest(&st.Identity)...)
	err := s.db.QueryRowContext(ctx, `SELECT r.token_hash, r.id, r.grant_id, r.created_at, r.expires_at, r.used_at,
		`+grantColumns+`, `+tokenIdentityColumns+`
		FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN identities i ON i.sub = g.subject
		WHERE r.token_hash = $1`, tokenHash).Scan(dest...)
	if err != nil {
		return oidcprovider.TokenState{}, s.dbError("store: refresh token", err)
	}
	st.Refresh = &rt
	return st, nil
}

// RotateRefreshToken spends a refresh token for the next pair.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, at oidcprovider.AccessToken, rt oidcprovider.RefreshToken, now time.Time) error {
	op := "store: rotate refresh token of grant " + rt.GrantID
	atScopes, err := jsonArg(at.Scopes)
	if err != nil {
		return err
	}
	var n int64
	if s.d.name() == "postgres" {
		err = s.db.QueryRowContext(ctx, `WITH u AS (
				UPDATE refresh_tokens SET used_at = $2::timestamptz
				WHERE token_hash = $1 AND grant_id = $3 AND used_at IS NULL AND expires_at > $2::timestamptz
				  AND EXISTS (SELECT 1 FROM grants WHERE id = $3 AND revoked_at IS NULL AND expires_at > $2::timestamptz)
				RETURNING grant_id
			), a AS (
				INSERT INTO access_tokens (id, grant_id, scopes, created_at, expires_at)
				SELECT $4::text, u.grant_id, $5::jsonb, $2::timestamptz, $6::timestamptz FROM u
				RETURNING id
			), r AS (
				INSERT INTO refresh_tokens (token_hash, id, grant_id, created_at, expires_at)
				SELECT $7::text, $8::text, u.grant_id, $2::timestamptz, $9::timestamptz FROM u
				RETURNING 1
			)
			SELECT count(*) FROM a`,
			oldHash, s.d.time(now), rt.GrantID, at.ID, atScopes, s.d.time(at.ExpiresAt),
			rt.Hash, rt.ID, s.d.time(rt.ExpiresAt)).Scan(&n)
	} else {
		err = s.tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $2
				WHERE token_hash = $1 AND grant_id = $3 AND used_at IS NULL AND expires_at > $2
				  AND EXISTS (SELECT 1 FROM grants WHERE id = $3 AND revoked_at IS NULL AND expires_at > $2)`,
				oldHash, s.d.time(now), rt.GrantID)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			if err := insertAccessToken(ctx, tx, s.d, at, atScopes); err != nil {
				return err
			}
			return insertRefreshToken(ctx, tx, s.d, rt)
		})
	}
	if err != nil {
		return s.dbError(op, err)
	}
	if n != 1 {
		return fmt.Errorf("%s: %w", op, oidcprovider.ErrRefreshTokenReused)
	}
	return nil
}

// RevokeGrant revokes a grant, keeping the first reason.
func (s *Store) RevokeGrant(ctx context.Context, grantID, reason string, now time.Time) error {
	op := "store: revoke grant " + grantID
	res, err := s.db.ExecContext(ctx, `UPDATE grants SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL`,
		grantID, s.d.time(now), reason)
	if err != nil {
		return s.dbError(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.dbError(op, err)
	} else if n == 0 {
		var one int
		return s.dbErrorNil(op, s.db.QueryRowContext(ctx, `SELECT 1 FROM grants WHERE id = $1`, grantID).Scan(&one))
	}
	return nil
}

// RevokeAccessToken revokes one access token.
func (s *Store) RevokeAccessToken(ctx context.Context, id string, now time.Time) error {
	op := "store: revoke access token"
	res, err := s.db.ExecContext(ctx, `UPDATE access_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, s.d.time(now))
	if err != nil {
		return s.dbError(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.dbError(op, err)
	} else if n == 0 {
		var one int
		return s.dbErrorNil(op, s.db.QueryRowContext(ctx, `SELECT 1 FROM access_tokens WHERE id = $1`, id).Scan(&one))
	}
	return nil
}

// RevokeGrants revokes a subject's live grants for one client.
func (s *Store) RevokeGrants(ctx context.Context, subject, clientID, reason string, now time.Time) (int64, error) {
	op := "store: revoke grants of " + subject + " for " + clientID
	if subject == "" || clientID == "" {
		return 0, fmt.Errorf("%s: subject and client are both required: %w", op, tenants.ErrInvalidInput)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE grants SET revoked_at = $3, revoked_reason = $4
		WHERE subject = $1 AND client_id = $2 AND revoked_at IS NULL`, subject, clientID, s.d.time(now), reason)
	if err != nil {
		return 0, s.dbError(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.dbError(op, err)
	}
	return n, nil
}

// dbErrorNil is dbError that passes nil through.
func (s *Store) dbErrorNil(op string, err error) error {
	if err == nil {
		return nil
	}
	return s.dbError(op, err)
}

// oidcGCTables lists what DeleteExpiredOIDC collects, in an order that
// deletes tokens before the grants that would cascade to them (smaller
// statements). A login outlives its code: once redeemed it is kept as long
// as its grant (RedeemCode extends expires_at), for replay detection.
var oidcGCTables = []struct{ name, stmt string }{
	{"access_tokens", `DELETE FROM access_tokens WHERE id IN (SELECT id FROM access_tokens WHERE expires_at <= $1 LIMIT $2)`},
	{"refresh_tokens", `DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens WHERE expires_at <= $1 LIMIT $2)`},
	{"grants", `DELETE FROM grants WHERE id IN (SELECT id FROM grants WHERE expires_at <= $1 LIMIT $2)`},
	{"logins", `DELETE FROM logins WHERE id IN (SELECT id FROM logins WHERE expires_at <= $1 LIMIT $2)`},
	{"signing_keys", `DELETE FROM signing_keys WHERE id IN (SELECT id FROM signing_keys WHERE expires_at <= $1 LIMIT $2)`},
}

// oidcGCBatch bounds the rows one statement deletes, so GC never holds
// long locks.
const oidcGCBatch = 1000

// DeleteExpiredOIDC deletes expired logins, grants, tokens and keys.
func (s *Store) DeleteExpiredOIDC(ctx context.Context, now time.Time) (n int64, err error) {
	for _, t := range oidcGCTables {
		for {
			res, err := s.db.ExecContext(ctx, t.stmt, s.d.time(now), oidcGCBatch)
			if err != nil {
				return n, s.dbError("store: delete expired "+t.name, err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return n, s.dbError("store: delete expired "+t.name, err)
			}
			n += k
			if k < oidcGCBatch {
				break
			}
		}
	}
	return n, nil
}

// encodeKey and decodeKey store DER as base64 text.
func encodeKey(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

func decodeKey(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// loginTransition finishes a conditional UPDATE of one login: no row
// changed means a precondition failed, and loginExists tells whether the
// login is missing (ErrNotFound) or in the wrong state (ErrConflict).
func (s *Store) loginTransition(ctx context.Context, op, id string, res sql.Result, err error) error {
	if err != nil {
		return s.dbError(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.dbError(op, err)
	} else if n == 0 {
		return s.loginExists(ctx, op, `id = $1`, id)
	}
	return nil
}
