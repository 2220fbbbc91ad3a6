package store

import (
	"context"
	"fmt"
	"time"
)

// Portal links and sessions are stored by the hash of their token: the
// token itself is only ever in the link or the cookie.

// CreatePortalLink stores a one-time link for a tenant's IT admin.
// ErrNotFound if the tenant does not exist.
func (s *Store) CreatePortalLink(ctx context.Context, tokenHash, tenantID string, createdAt, expiresAt time.Time) error {
	return s.insertPortal(ctx, "portal_links", "store: create portal link for "+tenantID, tokenHash, tenantID, createdAt, expiresAt)
}

// CreatePortalSession stores a portal session opened from a link.
// ErrNotFound if the tenant does not exist.
func (s *Store) CreatePortalSession(ctx context.Context, tokenHash, tenantID string, createdAt, expiresAt time.Time) error {
	return s.insertPortal(ctx, "portal_sessions", "store: create portal session for "+tenantID, tokenHash, tenantID, createdAt, expiresAt)
}

// insertPortal inserts into portal_links or portal_sessions (table is one
// of those constants, never input).
func (s *Store) insertPortal(ctx context.Context, table, op, tokenHash, tenantID string, createdAt, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO `+table+` (token_hash, tenant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		tokenHash, tenantID, s.d.time(createdAt), s.d.time(expiresAt))
	switch {
	case err == nil:
		return nil
	case s.d.isForeignKeyViolation(err):
		return fmt.Errorf("%s: tenant %s: %w", op, tenantID, ErrNotFound)
	default:
		return s.dbError(op, err)
	}
}

// OpenPortalLink uses a link: it returns the link's tenant and marks the
// link opened, in one conditional UPDATE, so that of two concurrent opens
// exactly one wins. An unknown, already opened or expired link is
// ErrNotFound (the three are deliberately indistinguishable to the caller).
func (s *Store) OpenPortalLink(ctx context.Context, tokenHash string, now time.Time) (tenantID string, err error) {
	err = s.db.QueryRowContext(ctx, `UPDATE portal_links SET opened_at = $2
		WHERE token_hash = $1 AND opened_at IS NULL AND expires_at > $2
		RETURNING tenant_id`, tokenHash, s.d.time(now)).Scan(&tenantID)
	if err != nil {
		return "", s.dbError("store: open portal link (unknown, used or expired)", err)
	}
	return tenantID, nil
}

// PortalSession returns the tenant of a live session; ErrNotFound if the
// session is unknown or expired.
func (s *Store) PortalSession(ctx context.Context, tokenHash string, now time.Time) (tenantID string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT tenant_id FROM portal_sessions WHERE token_hash = $1 AND expires_at > $2`,
		tokenHash, s.d.time(now)).Scan(&tenantID)
	if err != nil {
		return "", s.dbError("store: portal session (unknown or expired)", err)
	}
	return tenantID, nil
}

// DeletePortalSession ends a session (logout); ErrNotFound if there is none.
func (s *Store) DeletePortalSession(ctx context.Context, tokenHash string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM portal_sessions WHERE token_hash = $1`, tokenHash)
	return affected(res, err, "store: delete portal session")
}
