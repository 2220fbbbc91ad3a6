package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// CreateTenant inserts t and all of t.Domains in one transaction: if a domain
// is taken (the error is a *tenants.DomainTakenError) or anything else
// fails, nothing is written. Domains are stored under t.ID.
func (s *Store) CreateTenant(ctx context.Context, t tenants.Tenant) error {
	op := "store: create tenant " + t.ID
	for _, d := range t.Domains {
		if d.TenantID != "" && d.TenantID != t.ID {
			return fmt.Errorf("%s: domain %s names tenant %s: %w", op, d.Name, d.TenantID, tenants.ErrInvalidInput)
		}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)`,
			t.ID, t.Name, s.d.time(t.CreatedAt), s.d.time(t.UpdatedAt)); err != nil {
			return s.dbError(op, err)
		}
		for _, d := range t.Domains {
			d.TenantID = t.ID
			if err := s.insertDomain(ctx, tx, d); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		return nil
	})
}

// insertDomain adds one domain. The primary key on domains.domain is what
// makes a domain unique across tenants, so of two concurrent claims exactly
// one commits and the other gets the unique violation mapped here.
func (s *Store) insertDomain(ctx context.Context, db execer, d tenants.Domain) error {
	_, err := db.ExecContext(ctx,
		`INSERT INTO domains (domain, tenant_id, verified, created_at) VALUES ($1, $2, $3, $4)`,
		d.Name, d.TenantID, d.Verified, s.d.time(d.CreatedAt))
	switch {
	case err == nil:
		return nil
	case s.d.isUniqueViolation(err):
		return &tenants.DomainTakenError{Domain: d.Name}
	case s.d.isForeignKeyViolation(err):
		return fmt.Errorf("tenant %s: %w", d.TenantID, ErrNotFound)
	default:
		return s.dbError("domain "+d.Name, err)
	}
}

// tenantWithDomains selects tenants joined to their domains, one row per
// domain (or one row with NULL domain columns for a tenant without any), in
// tenant order, so that a tenant and its domains come back in one query.
const tenantWithDomains = `SELECT t.id, t.name, t.created_at, t.updated_at, d.domain, d.verified, d.created_at
FROM %s t LEFT JOIN domains d ON d.tenant_id = t.id
%s ORDER BY t.id, d.domain`

// scanTenants folds tenantWithDomains rows into tenants.
func scanTenants(rows *sql.Rows) ([]tenants.Tenant, error) {
	defer rows.Close()
	var out []tenants.Tenant
	for rows.Next() {
		var (
			t        tenants.Tenant
			domain   sql.NullString
			verified sql.NullBool
			dCreated time.Time
		)
		if err := rows.Scan(&t.ID, &t.Name, tm(&t.CreatedAt), tm(&t.UpdatedAt), &domain, &verified, tm(&dCreated)); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].ID != t.ID {
			out = append(out, t)
		}
		if domain.Valid {
			last := &out[len(out)-1]
			last.Domains = append(last.Domains, tenants.Domain{
				Name: domain.String, TenantID: t.ID, Verified: verified.Bool, CreatedAt: dCreated,
			})
		}
	}
	return out, rows.Err()
}

// Tenant returns a tenant with its domains (sorted by name) in one query.
func (s *Store) Tenant(ctx context.Context, id string) (tenants.Tenant, error) {
	op := "store: tenant " + id
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(tenantWithDomains, "tenants", "WHERE t.id = $1"), id)
	if err != nil {
		return tenants.Tenant{}, s.dbError(op, err)
	}
	list, err := scanTenants(rows)
	if err != nil {
		return tenants.Tenant{}, s.dbError(op, err)
	}
	if len(list) == 0 {
		return tenants.Tenant{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return list[0], nil
}

// ListTenants returns tenants with their domains in id order, one page at a
// time, in one query.
func (s *Store) ListTenants(ctx context.Context, p tenants.Page) (items []tenants.Tenant, next string, err error) {
	p = p.Normalized()
	page := `(SELECT id, name, created_at, updated_at FROM tenants WHERE id > $1 ORDER BY id LIMIT $2)`
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(tenantWithDomains, page, ""), p.After, p.Limit+1)
	if err != nil {
		return nil, "", s.dbError("store: list tenants", err)
	}
	list, err := scanTenants(rows)
	if err != nil {
		return nil, "", s.dbError("store: list tenants", err)
	}
	items, next = cut(list, p.Limit, func(t tenants.Tenant) string { return t.ID })
	return items, next, nil
}

// UpdateTenant runs update on the tenant with its row locked and writes the
// result. Only Name and UpdatedAt are written: domains change through
// AddDomain and DeleteDomain, and ID and CreatedAt never change. If update
// returns an error nothing is written and that error is returned
// unchanged. update may run again if the transaction has to be retried.
func (s *Store) UpdateTenant(ctx context.Context, id string, update func(*tenants.Tenant) error) (tenants.Tenant, error) {
	op := "store: update tenant " + id
	var out tenants.Tenant
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var t tenants.Tenant
		err := tx.QueryRowContext(ctx, `SELECT id, name, created_at, updated_at FROM tenants WHERE id = $1`+s.d.forUpdate(), id).
			Scan(&t.ID, &t.Name, tm(&t.CreatedAt), tm(&t.UpdatedAt))
		if err != nil {
			return s.dbError(op, err)
		}
		// A second statement, because PostgreSQL cannot lock the rows of an
		// outer join's nullable side, and only the tenant row needs the lock.
		rows, err := tx.QueryContext(ctx, `SELECT domain, verified, created_at FROM domains WHERE tenant_id = $1 ORDER BY domain`, id)
		if err != nil {
			return s.dbError(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			d := tenants.Domain{TenantID: id}
			if err := rows.Scan(&d.Name, &d.Verified, tm(&d.CreatedAt)); err != nil {
				return s.dbError(op, err)
			}
			t.Domains = append(t.Domains, d)
		}
		if err := rows.Err(); err != nil {
			return s.dbError(op, err)
		}
		next := t
		next.Domains = append([]tenants.Domain(nil), t.Domains...)
		if err := update(&next); err != nil {
			return err
		}
		if next.ID != id {
			return fmt.Errorf("%s: the update changed the id to %q: %w", op, next.ID, tenants.ErrInvalidInput)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tenants SET name = $2, updated_at = $3 WHERE id = $1`,
			id, next.Name, s.d.time(next.UpdatedAt)); err != nil {
			return s.dbError(op, err)
		}
		next.CreatedAt, next.Domains = t.CreatedAt, t.Domains
		out = next
		return nil
	})
	if err != nil {
		return tenants.Tenant{}, err
	}
	return out, nil
}

// DeleteTenant deletes a tenant. Foreign keys cascade to its domains,
// connections, identities, portal links and sessions, and the OIDC logins
// and grants (with their tokens) that name it; audit events stay.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM tenants WHERE id = $1`, id)
	if err != nil {
		return s.dbError("store: delete tenant "+id, err)
	}
	return affected(res, nil, "store: delete tenant "+id)
}

// AddDomain adds a domain to an existing tenant: a *tenants.DomainTakenError
// if any tenant (this one included) holds it, ErrNotFound if the tenant
// does not exist.
func (s *Store) AddDomain(ctx context.Context, d tenants.Domain) error {
	if err := s.insertDomain(ctx, s.db, d); err != nil {
		return fmt.Errorf("store: add domain %s to %s: %w", d.Name, d.TenantID, err)
	}
	return nil
}

// Domain returns the owner record of a normalized domain.
func (s *Store) Domain(ctx context.Context, name string) (tenants.Domain, error) {
	d := tenants.Domain{Name: name}
	err := s.db.QueryRowContext(ctx, `SELECT tenant_id, verified, created_at FROM domains WHERE domain = $1`, name).
		Scan(&d.TenantID, &d.Verified, tm(&d.CreatedAt))
	if err != nil {
		return tenants.Domain{}, s.dbError("store: domain "+name, err)
	}
	return d, nil
}

// DeleteDomain removes a domain from a tenant. The tenant is part of the
// condition, so a tenant can never delete another tenant's domain: that is
// ErrNotFound, as is a domain nobody holds.
func (s *Store) DeleteDomain(ctx context.Context, tenantID, domain string) error {
	op := fmt.Sprintf("store: delete domain %s of %s", domain, tenantID)
	res, err := s.db.ExecContext(ctx, `DELETE FROM domains WHERE domain = $1 AND tenant_id = $2`, domain, tenantID)
	if err != nil {
		return s.dbError(op, err)
	}
	return affected(res, nil, op)
}

// routeQuery answers the hosted page: domain -> tenant -> active connections.
// It is on every login's path, so it is one query (one round trip) over
// primary keys and the (tenant_id, id) key of connections, and it reads no
// JSON columns. The outer join keeps the domain and tenant when the tenant
// has no active connection, which the caller reports differently from an
// unknown domain.
const routeQuery = `SELECT d.verified, d.created_at, t.id, t.name, t.created_at, t.updated_at,
	c.id, c.name, c.preset, c.status, c.updated_at
FROM domains d
JOIN tenants t ON t.id = d.tenant_id
LEFT JOIN connections c ON c.tenant_id = t.id AND c.status = 'active'
WHERE d.domain = $1
ORDER BY c.created_at, c.id`

// routeTenantQuery is routeQuery for the organization= hint: the tenant
// and its active connections, in the same column shape (no domain).
const routeTenantQuery = `SELECT false, t.created_at, t.id, t.name, t.created_at, t.updated_at,
	c.id, c.name, c.preset, c.status, c.updated_at
FROM tenants t
LEFT JOIN connections c ON c.tenant_id = t.id AND c.status = 'active'
WHERE t.id = $1
ORDER BY c.created_at, c.id`

// RouteDomain returns the domain's record, its tenant (without Domains) and
// the tenant's active connections, oldest first. ErrNotFound if no tenant
// owns the domain.
func (s *Store) RouteDomain(ctx context.Context, domain string) (tenants.Route, error) {
	r, err := s.route(ctx, "store: route domain "+domain, routeQuery, domain)
	if err != nil {
		return tenants.Route{}, err
	}
	r.Domain.Name, r.Domain.TenantID = domain, r.Tenant.ID
	return r, nil
}

// RouteTenant returns a tenant (without Domains) and its active
// connections, oldest first, in one query; Route.Domain is empty.
// ErrNotFound if the tenant does not exist.
func (s *Store) RouteTenant(ctx context.Context, tenantID string) (tenants.Route, error) {
	r, err := s.route(ctx, "store: route tenant "+tenantID, routeTenantQuery, tenantID)
	if err != nil {
		return tenants.Route{}, err
	}
	r.Domain = tenants.Domain{}
	return r, nil
}

func (s *Store) route(ctx context.Context, op, query, arg string) (tenants.Route, error) {
	rows, err := s.db.QueryContext(ctx, query, arg)
	if err != nil {
		return tenants.Route{}, s.dbError(op, err)
	}
	defer rows.Close()
	var r tenants.Route
	found := false
	for rows.Next() {
		var (
			cID, cName, cPreset, cStatus sql.NullString
			cUpdated                     time.Time
		)
		if err := rows.Scan(&r.Domain.Verified, tm(&r.Domain.CreatedAt),
			&r.Tenant.ID, &r.Tenant.Name, tm(&r.Tenant.CreatedAt), tm(&r.Tenant.UpdatedAt),
			&cID, &cName, &cPreset, &cStatus, tm(&cUpdated)); err != nil {
			return tenants.Route{}, s.dbError(op, err)
		}
		found = true
		if cID.Valid {
			r.Connections = append(r.Connections, tenants.ConnectionRef{
				ID: cID.String, TenantID: r.Tenant.ID, Name: cName.String, Preset: tenants.Preset(cPreset.String),
				Status: tenants.ConnectionStatus(cStatus.String), UpdatedAt: cUpdated,
			})
		}
	}
	if err := rows.Err(); err != nil {
		return tenants.Route{}, s.dbError(op, err)
	}
	if !found {
		return tenants.Route{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return r, nil
}
