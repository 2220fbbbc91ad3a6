package store

import (
	"context"
	"time"
)

// expiredTables lists what DeleteExpired collects: rows whose expires_at is
// at or before now are dead everywhere they are read (AcceptOnce takes them
// over, leases are free, links and sessions no longer open). Each statement
// deletes one bounded batch by primary key.
var expiredTables = []struct{ name, stmt string }{
	{"saml_assertions", `DELETE FROM saml_assertions WHERE (connection_id, assertion_id) IN
		(SELECT connection_id, assertion_id FROM saml_assertions WHERE expires_at <= $1 LIMIT $2)`},
	{"leases", `DELETE FROM leases WHERE name IN (SELECT name FROM leases WHERE expires_at <= $1 LIMIT $2)`},
	{"portal_links", `DELETE FROM portal_links WHERE token_hash IN
		(SELECT token_hash FROM portal_links WHERE expires_at <= $1 LIMIT $2)`},
	{"portal_sessions", `DELETE FROM portal_sessions WHERE token_hash IN
		(SELECT token_hash FROM portal_sessions WHERE expires_at <= $1 LIMIT $2)`},
}

// DeleteExpired deletes expired SAML assertion IDs, leases, portal links and
// portal sessions, and returns how many rows it deleted. The OIDC tables
// have their own collector.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (n int64, err error) {
	for _, t := range expiredTables {
		k, err := s.deleteInBatches(ctx, "store: delete expired "+t.name, t.stmt, s.d.time(now))
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
