package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// spKeyAAD binds a sealed SP key to its connection, so a sealed blob copied
// into another row does not open. The format is fixed: changing it makes
// every stored key unreadable.
func spKeyAAD(connectionID string) string { return "connections.sp_key:" + connectionID }

const connectionColumns = `id, tenant_id, name, status, preset, idp_entity_id, idp_sso_redirect_url,
	idp_sso_post_url, idp_certificates, idp_metadata_xml, metadata_url, metadata_refreshed_at,
	metadata_next_refresh_at, metadata_last_error, attribute_mapping, policy, sp_key_sealed,
	sp_certificate, created_at, updated_at`

// scanConnection reads connectionColumns and opens the SP key.
func (s *Store) scanConnection(r rowScanner) (tenants.Connection, error) {
	var (
		c      tenants.Connection
		sealed string
	)
	err := r.Scan(&c.ID, &c.TenantID, &c.Name, &c.Status, &c.Preset, &c.IdP.EntityID, &c.IdP.SSORedirectURL,
		&c.IdP.SSOPostURL, js(&c.IdP.Certificates), &c.IdP.MetadataXML, &c.Metadata.URL, tm(&c.Metadata.RefreshedAt),
		tm(&c.Metadata.NextRefreshAt), &c.Metadata.LastError, js(&c.AttributeMapping), js(&c.Policy), &sealed,
		&c.SPCertificate, tm(&c.CreatedAt), tm(&c.UpdatedAt))
	if err != nil {
		return tenants.Connection{}, err
	}
	c.IdP.Certificates = nonEmpty(c.IdP.Certificates)
	key, err := s.sealer.Open(sealed, spKeyAAD(c.ID))
	if err != nil {
		return tenants.Connection{}, fmt.Errorf("opening the SP key of %s: %w", c.ID, err)
	}
	c.SPKey = tenants.Secret(key)
	return c, nil
}

func (s *Store) sealSPKey(c tenants.Connection) (string, error) {
	sealed, err := s.sealer.Seal([]byte(c.SPKey.Reveal()), spKeyAAD(c.ID))
	if err != nil {
		return "", fmt.Errorf("sealing the SP key of %s: %w", c.ID, err)
	}
	return sealed, nil
}

// CreateConnection inserts c with its SP key sealed. ErrNotFound if the
// tenant does not exist, ErrAlreadyExists if the id is taken.
func (s *Store) CreateConnection(ctx context.Context, c tenants.Connection) error {
	op := fmt.Sprintf("store: create connection %s for %s", c.ID, c.TenantID)
	sealed, err := s.sealSPKey(c)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO connections (`+connectionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		c.ID, c.TenantID, c.Name, string(c.Status), string(c.Preset), c.IdP.EntityID, c.IdP.SSORedirectURL,
		c.IdP.SSOPostURL, mustJSON(c.IdP.Certificates), c.IdP.MetadataXML, c.Metadata.URL, s.d.time(c.Metadata.RefreshedAt),
		s.d.time(c.Metadata.NextRefreshAt), c.Metadata.LastError, mustJSON(c.AttributeMapping), mustJSON(c.Policy), sealed,
		c.SPCertificate, s.d.time(c.CreatedAt), s.d.time(c.UpdatedAt))
	switch {
	case err == nil:
		return nil
	case s.d.isForeignKeyViolation(err):
		return fmt.Errorf("%s: tenant %s: %w", op, c.TenantID, ErrNotFound)
	default:
		return s.dbError(op, err)
	}
}

// Connection returns a connection with its SP key opened. It is on the
// path of every login (AuthnRequest and ACS), so it is a single primary-key
// lookup; the JSON it decodes (certificates, mapping, policy) is all needed.
func (s *Store) Connection(ctx context.Context, id string) (tenants.Connection, error) {
	c, err := s.scanConnection(s.db.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = $1`, id))
	if err != nil {
		return tenants.Connection{}, s.dbError("store: connection "+id, err)
	}
	return c, nil
}

// ConnectionRef returns the routing part of a connection (tenant, name,
// preset, status, UpdatedAt) without its key or IdP configuration. The ACS
// calls it on every response to check its cached service provider against
// UpdatedAt, so it reads no JSON and opens no sealed key: one primary-key
// lookup of short columns.
func (s *Store) ConnectionRef(ctx context.Context, id string) (tenants.ConnectionRef, error) {
	r := tenants.ConnectionRef{ID: id}
	err := s.db.QueryRowContext(ctx, `SELECT tenant_id, name, preset, status, updated_at FROM connections WHERE id = $1`, id).
		Scan(&r.TenantID, &r.Name, &r.Preset, &r.Status, tm(&r.UpdatedAt))
	if err != nil {
		return tenants.ConnectionRef{}, s.dbError("store: connection ref "+id, err)
	}
	return r, nil
}

// ListConnections lists a tenant's connections, or every connection when
// tenantID is empty, in id order.
func (s *Store) ListConnections(ctx context.Context, tenantID string, p tenants.Page) (items []tenants.Connection, next string, err error) {
	p = p.Normalized()
	op := "store: list connections of " + tenantID
	var rows *sql.Rows
	if tenantID == "" {
		op = "store: list connections"
		rows, err = s.db.QueryContext(ctx, `SELECT `+connectionColumns+` FROM connections
			WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.Limit+1)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT `+connectionColumns+` FROM connections
			WHERE tenant_id = $3 AND id > $1 ORDER BY id LIMIT $2`, p.After, p.Limit+1, tenantID)
	}
	if err != nil {
		return nil, "", s.dbError(op, err)
	}
	list, err := s.scanConnections(rows)
	if err != nil {
		return nil, "", s.dbError(op, err)
	}
	items, next = cut(list, p.Limit, func(c tenants.Connection) string { return c.ID })
	return items, next, nil
}

func (s *Store) scanConnections(rows *sql.Rows) ([]tenants.Connection, error) {
	defer rows.Close()
	var out []tenants.Connection
	for rows.Next() {
		c, err := s.scanConnection(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpdateConnection runs update on the connection with its row locked and
// writes the result (the SP key sealed afresh). ID, TenantID and CreatedAt
// do not change; changing ID or TenantID is an error. If update returns an
// error nothing is written and that error is returned unchanged. update may
// run again if the transaction has to be retried.
func (s *Store) UpdateConnection(ctx context.Context, id string, update func(*tenants.Connection) error) (tenants.Connection, error) {
	op := "store: update connection " + id
	var out tenants.Connection
	err := s.tx(ctx, func(tx *sql.Tx) error {
		c, err := s.scanConnection(tx.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = $1`+s.d.forUpdate(), id))
		if err != nil {
			return s.dbError(op, err)
		}
		next := c
		next.IdP.Certificates = append([]string(nil), c.IdP.Certificates...)
		if err := update(&next); err != nil {
			return err
		}
		if next.ID != c.ID || next.TenantID != c.TenantID {
			return fmt.Errorf("%s: the update changed the id or tenant: %w", op, tenants.ErrInvalidInput)
		}
		next.CreatedAt = c.CreatedAt
		sealed, err := s.sealSPKey(next)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE connections SET name = $2, status = $3, preset = $4,
			idp_entity_id = $5, idp_sso_redirect_url = $6, idp_sso_post_url = $7, idp_certificates = $8,
			idp_metadata_xml = $9, metadata_url = $10, metadata_refreshed_at = $11, metadata_next_refresh_at = $12,
			metadata_last_error = $13, attribute_mapping = $14, policy = $15, sp_key_sealed = $16,
			sp_certificate = $17, updated_at = $18
			WHERE id = $1`,
			id, next.Name, string(next.Status), string(next.Preset),
			next.IdP.EntityID, next.IdP.SSORedirectURL, next.IdP.SSOPostURL, mustJSON(next.IdP.Certificates),
			next.IdP.MetadataXML, next.Metadata.URL, s.d.time(next.Metadata.RefreshedAt), s.d.time(next.Metadata.NextRefreshAt),
			next.Metadata.LastError, mustJSON(next.AttributeMapping), mustJSON(next.Policy), sealed,
			next.SPCertificate, s.d.time(next.UpdatedAt))
		if err != nil {
			return s.dbError(op, err)
		}
		next.IdP.Certificates = nonEmpty(next.IdP.Certificates)
		out = next
		return nil
	})
	if err != nil {
		return tenants.Connection{}, err
	}
	return out, nil
}

// DeleteConnection deletes a connection; its identities (and their grants)
// and in-flight logins go with it.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM connections WHERE id = $1`, id)
	return affected(res, err, "store: delete connection "+id)
}

// ConnectionsDueForRefresh returns up to limit connections with a metadata
// URL whose NextRefreshAt is at or before now, most overdue first. A
// connection never scheduled (zero NextRefreshAt, stored as NULL) is the
// most overdue of all.
func (s *Store) ConnectionsDueForRefresh(ctx context.Context, now time.Time, limit int) ([]tenants.Connection, error) {
	limit = tenants.Page{Limit: limit}.Normalized().Limit
	rows, err := s.db.QueryContext(ctx, `SELECT `+connectionColumns+` FROM connections
		WHERE metadata_url <> '' AND (metadata_next_refresh_at IS NULL OR metadata_next_refresh_at <= $1)
		ORDER BY metadata_next_refresh_at ASC NULLS FIRST, id LIMIT $2`, s.d.time(now), limit)
	if err != nil {
		return nil, s.dbError("store: connections due for refresh", err)
	}
	list, err := s.scanConnections(rows)
	if err != nil {
		return nil, s.dbError("store: connections due for refresh", err)
	}
	return list, nil
}
