package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// Token lifetimes are stored as whole seconds: they are validated to be at
// least a minute, and seconds read well in SQL.
const clientColumns = `id, name, public, secret_hash, previous_secret_hash, previous_secret_expires_at,
	redirect_uris, post_logout_redirect_uris, initiate_login_uri, allowed_tenants,
	access_token_ttl_seconds, id_token_ttl_seconds, refresh_token_ttl_seconds, created_at, updated_at`

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

func scanClient(r rowScanner) (tenants.Client, error) {
	var (
		c                 tenants.Client
		access, idt, refr int64
	)
	err := r.Scan(&c.ID, &c.Name, &c.Public, &c.SecretHash, &c.PreviousSecretHash, tm(&c.PreviousSecretExpiresAt),
		js(&c.RedirectURIs), js(&c.PostLogoutRedirectURIs), &c.InitiateLoginURI, js(&c.AllowedTenants),
		&access, &idt, &refr, tm(&c.CreatedAt), tm(&c.UpdatedAt))
	if err != nil {
		return tenants.Client{}, err
	}
	c.RedirectURIs = nonEmpty(c.RedirectURIs)
	c.PostLogoutRedirectURIs = nonEmpty(c.PostLogoutRedirectURIs)
	c.AllowedTenants = nonEmpty(c.AllowedTenants)
	c.AccessTokenTTL = time.Duration(access) * time.Second
	c.IDTokenTTL = time.Duration(idt) * time.Second
	c.RefreshTokenTTL = time.Duration(refr) * time.Second
	return c, nil
}

// CreateClient inserts c; ErrAlreadyExists if the id is taken.
func (s *Store) CreateClient(ctx context.Context, c tenants.Client) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		c.ID, c.Name, c.Public, c.SecretHash, c.PreviousSecretHash, s.d.time(c.PreviousSecretExpiresAt),
		mustJSON(c.RedirectURIs), mustJSON(c.PostLogoutRedirectURIs), c.InitiateLoginURI, mustJSON(c.AllowedTenants),
		seconds(c.AccessTokenTTL), seconds(c.IDTokenTTL), seconds(c.RefreshTokenTTL), s.d.time(c.CreatedAt), s.d.time(c.UpdatedAt))
	if err != nil {
		return s.dbError("store: create client "+c.ID, err)
	}
	return nil
}

// Client returns a client.
func (s *Store) Client(ctx context.Context, id string) (tenants.Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if err != nil {
		return tenants.Client{}, s.dbError("store: client "+id, err)
	}
	return c, nil
}

// ListClients lists clients in id order.
func (s *Store) ListClients(ctx context.Context, p tenants.Page) (items []tenants.Client, next string, err error) {
	p = p.Normalized()
	const op = "store: list clients"
	rows, err := s.db.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.Limit+1)
	if err != nil {
		return nil, "", s.dbError(op, err)
	}
	defer rows.Close()
	var list []tenants.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, "", s.dbError(op, err)
		}
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.dbError(op, err)
	}
	items, next = cut(list, p.Limit, func(c tenants.Client) string { return c.ID })
	return items, next, nil
}

// UpdateClient runs update on the client with its row locked and writes the
// result. ID and CreatedAt do not change; changing ID is an error. If update
// returns an error nothing is written and that error is returned unchanged.
// update may run again if the transaction has to be retried.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(*tenants.Client) error) (tenants.Client, error) {
	op := "store: update client " + id
	var out tenants.Client
	err := s.tx(ctx, func(tx *sql.Tx) error {
		c, err := scanClient(tx.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`+s.d.forUpdate(), id))
		if err != nil {
			return s.dbError(op, err)
		}
		next := c
		next.RedirectURIs = append([]string(nil), c.RedirectURIs...)
		next.PostLogoutRedirectURIs = append([]string(nil), c.PostLogoutRedirectURIs...)
		next.AllowedTenants = append([]string(nil), c.AllowedTenants...)
		if err := update(&next); err != nil {
			return err
		}
		if next.ID != id {
			return fmt.Errorf("%s: the update changed the id to %q: %w", op, next.ID, tenants.ErrInvalidInput)
		}
		next.CreatedAt = c.CreatedAt
		_, err = tx.ExecContext(ctx, `UPDATE clients SET name = $2, public = $3, secret_hash = $4,
			previous_secret_hash = $5, previous_secret_expires_at = $6, redirect_uris = $7,
			post_logout_redirect_uris = $8, initiate_login_uri = $9, allowed_tenants = $10,
			access_token_ttl_seconds = $11, id_token_ttl_seconds = $12, refresh_token_ttl_seconds = $13,
			updated_at = $14
			WHERE id = $1`,
			id, next.Name, next.Public, next.SecretHash,
			next.PreviousSecretHash, s.d.time(next.PreviousSecretExpiresAt), mustJSON(next.RedirectURIs),
			mustJSON(next.PostLogoutRedirectURIs), next.InitiateLoginURI, mustJSON(next.AllowedTenants),
			seconds(next.AccessTokenTTL), seconds(next.IDTokenTTL), seconds(next.RefreshTokenTTL),
			s.d.time(next.UpdatedAt))
		if err != nil {
			return s.dbError(op, err)
		}
		next.RedirectURIs = nonEmpty(next.RedirectURIs)
		next.PostLogoutRedirectURIs = nonEmpty(next.PostLogoutRedirectURIs)
		next.AllowedTenants = nonEmpty(next.AllowedTenants)
		out = next
		return nil
	})
	if err != nil {
		return tenants.Client{}, err
	}
	return out, nil
}

// DeleteClient deletes a client; its logins and grants go with it.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM clients WHERE id = $1`, id)
	return affected(res, err, "store: delete client "+id)
}
