package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// acceptOnce records an assertion ID in one statement, so that of two
// replicas receiving the same assertion exactly one succeeds: the primary
// key serializes them and the loser's conflict clause finds the winner's
// row. A row still present after its assertion expired (garbage collection
// has not run yet) is taken over instead of reported as a replay, because
// an expired assertion cannot be replayed anyway (the caller rejects it on
// its NotOnOrAfter before asking here). When the conflict clause's WHERE is
// false nothing is inserted or updated, RETURNING yields no row, and that
// absence is the replay signal.
const acceptOnce = `INSERT INTO saml_assertions (connection_id, assertion_id, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (connection_id, assertion_id) DO UPDATE SET expires_at = excluded.expires_at
WHERE saml_assertions.expires_at <= $4
RETURNING 1`

// AcceptOnce records that an assertion ID has been used with a connection
// until expiresAt (the assertion's last valid instant, skew included). It
// returns an error wrapping ErrAlreadyExists if the ID was accepted before
// and has not expired: a replay. It is one round trip on every login.
//
// "Expired" is judged against the wall clock, which is the clock the caller
// validated the assertion's NotOnOrAfter with in production.
func (s *Store) AcceptOnce(ctx context.Context, connectionID, assertionID string, expiresAt time.Time) error {
	op := fmt.Sprintf("store: accept assertion %s for %s", assertionID, connectionID)
	var one int
	err := s.db.QueryRowContext(ctx, acceptOnce, connectionID, assertionID, s.d.time(expiresAt), s.d.time(time.Now())).Scan(&one)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: already accepted: %w", op, ErrAlreadyExists)
	default:
		return s.dbError(op, err)
	}
}
