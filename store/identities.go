package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

const identityColumns = `sub, tenant_id, connection_id, idp_subject, email, email_verified, profile, status,
	created_at, updated_at, last_login_at`

func scanIdentity(r rowScanner) (tenants.Identity, error) {
	var id tenants.Identity
	err := r.Scan(&id.Subject, &id.TenantID, &id.ConnectionID, &id.IdPSubject, &id.Email, &id.EmailVerified,
		js(&id.Profile), &id.Status, tm(&id.CreatedAt), tm(&id.UpdatedAt), tm(&id.LastLoginAt))
	if err != nil {
		return tenants.Identity{}, err
	}
	return id, nil
}

// upsertIdentity inserts an identity or refreshes the one stored for
// (connection_id, idp_subject). It runs on every login, so it is a single
// statement (one round trip, atomic against a concurrent first login of the
// same user), and RETURNING brings back only the columns the update keeps
// (sub, tenant, status, created_at): the rest is what we just wrote, so the
// profile JSON is not read back and decoded.
const upsertIdentity = `INSERT INTO identities (` + identityColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (connection_id, idp_subject) DO UPDATE SET
	email = excluded.email,
	email_verified = excluded.email_verified,
	profile = excluded.profile,
	updated_at = excluded.updated_at,
	last_login_at = excluded.last_login_at
RETURNING sub, tenant_id, status, created_at`

// UpsertIdentity inserts id, or, when (ConnectionID, IdPSubject) exists,
// updates its email, profile, UpdatedAt and LastLoginAt and keeps its
// Subject, CreatedAt and Status. It returns the stored identity. ErrNotFound
// if the connection does not exist or belongs to another tenant than
// id.TenantID.
func (s *Store) UpsertIdentity(ctx context.Context, id tenants.Identity) (tenants.Identity, error) {
	op := fmt.Sprintf("store: upsert identity %s of %s", id.IdPSubject, id.ConnectionID)
	profile, err := jsonArg(id.Profile)
	if err != nil {
		return tenants.Identity{}, fmt.Errorf("%s: %w", op, err)
	}
	if id.Status == "" {
		id.Status = tenants.IdentityActive
	}
	out := id
	err = s.db.QueryRowContext(ctx, upsertIdentity,
		id.Subject, id.TenantID, id.ConnectionID, id.IdPSubject, id.Email, id.EmailVerified,
		profile, string(id.Status), s.d.time(id.CreatedAt), s.d.time(id.UpdatedAt), s.d.time(id.LastLoginAt)).
		Scan(&out.Subject, &out.TenantID, &out.Status, tm(&out.CreatedAt))
	switch {
	case err == nil:
		return out, nil
	case s.d.isForeignKeyViolation(err):
		// The foreign key is (tenant_id, connection_id): a connection of
		// another tenant is as absent as a deleted one.
		return tenants.Identity{}, fmt.Errorf("%s: connection %s of tenant %s: %w", op, id.ConnectionID, id.TenantID, ErrNotFound)
	default:
		return tenants.Identity{}, s.dbError(op, err)
	}
}

// Identity returns an identity by its subject.
func (s *Store) Identity(ctx context.Context, sub string) (tenants.Identity, error) {
	id, err := scanIdentity(s.db.QueryRowContext(ctx, `SELECT `+identityColumns+` FROM identities WHERE sub = $1`, sub))
	if err != nil {
		return tenants.Identity{}, s.dbError("store: identity "+sub, err)
	}
	return id, nil
}

// ListIdentities lists a tenant's identities in subject order, or every
// identity when tenantID is empty (as ListConnections does).
func (s *Store) ListIdentities(ctx context.Context, tenantID string, p tenants.Page) (items []tenants.Identity, next string, err error) {
	p = p.Normalized()
	op := "store: list identities of " + tenantID
	var rows *sql.Rows
	if tenantID == "" {
		op = "store: list identities"
		rows, err = s.db.QueryContext(ctx, `SELECT `+identityColumns+` FROM identities
			WHERE sub > $1 ORDER BY sub LIMIT $2`, p.After, p.Limit+1)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT `+identityColumns+` FROM identities
			WHERE tenant_id = $3 AND sub > $1 ORDER BY sub LIMIT $2`, p.After, p.Limit+1, tenantID)
	}
	if err != nil {
		return nil, "", s.dbError(op, err)
	}
	defer rows.Close()
	var list []tenants.Identity
	for rows.Next() {
		id, err := scanIdentity(rows)
		if err != nil {
			return nil, "", s.dbError(op, err)
		}
		list = append(list, id)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.dbError(op, err)
	}
	items, next = cut(list, p.Limit, func(id tenants.Identity) string { return id.Subject })
	return items, next, nil
}

// revokedIdentityDeactivated is the grants.revoked_reason written when an
// identity is deactivated.
const revokedIdentityDeactivated = "identity_deactivated"

// SetIdentityStatus changes an identity's status and sets UpdatedAt to now.
// Deactivating also revokes every live grant of that subject in the same
// transaction, so no token issued before the deactivation outlives it.
func (s *Store) SetIdentityStatus(ctx context.Context, sub string, status tenants.IdentityStatus, now time.Time) (tenants.Identity, error) {
	op := fmt.Sprintf("store: set identity %s %s", sub, status)
	if status != tenants.IdentityActive && status != tenants.IdentityDeactivated {
		return tenants.Identity{}, fmt.Errorf("%s: %w", op, &tenants.ValidationError{Field: "status", Reason: fmt.Sprintf("%q is not active or deactivated", status)})
	}
	var out tenants.Identity
	err := s.tx(ctx, func(tx *sql.Tx) error {
		id, err := scanIdentity(tx.QueryRowContext(ctx, `UPDATE identities SET status = $2, updated_at = $3
			WHERE sub = $1 RETURNING `+identityColumns, sub, string(status), s.d.time(now)))
		if err != nil {
			return s.dbError(op, err)
		}
		if status == tenants.IdentityDeactivated {
			if _, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_at = $2, revoked_reason = $3
				WHERE subject = $1 AND revoked_at IS NULL`, sub, s.d.time(now), revokedIdentityDeactivated); err != nil {
				return s.dbError(op+": revoking grants", err)
			}
		}
		out = id
		return nil
	})
	if err != nil {
		return tenants.Identity{}, err
	}
	return out, nil
}
