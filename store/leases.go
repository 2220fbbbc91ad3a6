package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// acquireLease takes a lease in one statement: insert it, take over an
// expired one, or renew our own. The primary key serializes concurrent
// attempts, and a holder that loses sees no returned row.
const acquireLease = `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder
RETURNING holder`

// AcquireLease makes holder the holder of the named lease until now+ttl if
// the lease is free, expired, or already held by holder (a renewal). It
// reports whether holder holds the lease now; another live holder is not an
// error.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	op := fmt.Sprintf("store: acquire lease %s for %s", name, holder)
	if ttl <= 0 || holder == "" {
		return false, fmt.Errorf("%s: a holder and a positive ttl are required", op)
	}
	var got string
	err := s.db.QueryRowContext(ctx, acquireLease, name, holder, s.d.time(now.Add(ttl)), s.d.time(now)).Scan(&got)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	default:
		return false, s.dbError(op, err)
	}
}

// ReleaseLease gives up a lease held by holder, so that another replica can
// take it before it expires. ErrNotFound if holder does not hold it (it
// expired and was taken over, or was never held).
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
	return affected(res, err, fmt.Sprintf("store: release lease %s by %s", name, holder))
}
