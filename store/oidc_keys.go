package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ssobroker/ssobroker/oidcprovider"
)

// Associated data binding sealed OIDC values to their rows. ResealAll
// relies on these formats (prefix + id); changing one makes every stored
// value unreadable.
const (
	signingKeyAADPrefix = "signing_keys.private_key:"
	oidcSecretAADPrefix = "oidc_secrets.value:"
)

// SigningKeys returns every signing key, oldest generation first, with its
// private key opened.
func (s *Store) SigningKeys(ctx context.Context) ([]oidcprovider.SigningKey, error) {
	const op = "store: signing keys"
	rows, err := s.db.QueryContext(ctx, `SELECT id, generation, algorithm, private_key_sealed, public_key,
		created_at, active_from, retire_at, expires_at FROM signing_keys ORDER BY generation`)
	if err != nil {
		return nil, s.dbError(op, err)
	}
	defer rows.Close()
	var out []oidcprovider.SigningKey
	for rows.Next() {
		var (
			k              oidcprovider.SigningKey
			sealed, public string
		)
		if err := rows.Scan(&k.ID, &k.Generation, &k.Algorithm, &sealed, &public,
			tm(&k.CreatedAt), tm(&k.ActiveFrom), tm(&k.RetireAt), tm(&k.ExpiresAt)); err != nil {
			return nil, s.dbError(op, err)
		}
		if k.PrivateKey, err = s.sealer.Open(sealed, signingKeyAADPrefix+k.ID); err != nil {
			return nil, fmt.Errorf("%s: opening key %s: %w", op, k.ID, err)
		}
		if k.PublicKey, err = decodeKey(public); err != nil {
			return nil, fmt.Errorf("%s: decoding public key %s: %w", op, k.ID, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbError(op, err)
	}
	return out, nil
}

// CreateSigningKey inserts the next signing key and schedules its
// predecessor's retirement, in one transaction.
func (s *Store) CreateSigningKey(ctx context.Context, k oidcprovider.SigningKey, prevExpiresAt time.Time) error {
	op := fmt.Sprintf("store: create signing key generation %d", k.Generation)
	sealed, err := s.sealer.Seal(k.PrivateKey, signingKeyAADPrefix+k.ID)
	if err != nil {
		return fmt.Errorf("%s: sealing: %w", op, err)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, generation, algorithm, private_key_sealed, public_key,
			created_at, active_from) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Generation, k.Algorithm, sealed, encodeKey(k.PublicKey), s.d.time(k.CreatedAt), s.d.time(k.ActiveFrom)); err != nil {
			return s.dbError(op, err)
		}
		if prevExpiresAt.IsZero() {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retire_at = $2, expires_at = $3 WHERE generation = $1`,
			k.Generation-1, s.d.time(k.ActiveFrom), s.d.time(prevExpiresAt)); err != nil {
			return s.dbError(op+": retiring predecessor", err)
		}
		return nil
	})
}

// Secret returns a shared secret, storing candidate first if it has none.
func (s *Store) Secret(ctx context.Context, id string, candidate []byte, now time.Time) ([]byte, error) {
	op := "store: secret " + id
	sealed, err := s.sealer.Seal(candidate, oidcSecretAADPrefix+id)
	if err != nil {
		return nil, fmt.Errorf("%s: sealing: %w", op, err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO oidc_secrets (id, value_sealed, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, id, sealed, s.d.time(now)); err != nil {
		return nil, s.dbError(op, err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT value_sealed FROM oidc_secrets WHERE id = $1`, id).Scan(&sealed); err != nil {
		return nil, s.dbError(op, err)
	}
	v, err := s.sealer.Open(sealed, oidcSecretAADPrefix+id)
	if err != nil {
		return nil, fmt.Errorf("%s: opening: %w", op, err)
	}
	return v, nil
}
