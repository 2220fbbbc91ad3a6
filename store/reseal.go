package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ssobroker/ssobroker/store/seal"
)

// sealedColumns lists every column holding a value sealed with the master
// key, with the associated data that binds each value to its row ("prefix"
// + id). The AAD formats are fixed: changing one makes every stored value
// unreadable.
var sealedColumns = []struct{ table, column, aadPrefix string }{
	{"connections", "sp_key_sealed", "connections.sp_key:"},
	{"signing_keys", "private_key_sealed", "signing_keys.private_key:"},
	{"oidc_secrets", "value_sealed", "oidc_secrets.value:"},
}

// ResealAll re-seals every sealed value that is not sealed with the
// Sealer's current key, and returns how many it re-sealed. Run it after
// making a new master key current (the old one still configured as
// previous); when it returns without error, the old key can be dropped.
// Each row is re-sealed in its own short transaction with the row locked,
// so it never blocks logins for long and races no concurrent update; running
// it again finds nothing to do.
func (s *Store) ResealAll(ctx context.Context) (n int, err error) {
	current := s.sealer.CurrentKeyID()
	for _, col := range sealedColumns {
		after := ""
		for {
			ids, last, err := s.staleSealed(ctx, col.table, col.column, current, after)
			if err != nil {
				return n, err
			}
			for _, id := range ids {
				done, err := s.reseal(ctx, col.table, col.column, col.aadPrefix+id, id, current)
				if err != nil {
					return n, err
				}
				if done {
					n++
				}
			}
			if last == "" {
				break
			}
			after = last
		}
	}
	return n, nil
}

// staleSealed scans one page of a sealed column in id order and returns
// the ids of values sealed with another key than current, and the last id
// scanned ("" at the end of the table).
func (s *Store) staleSealed(ctx context.Context, table, column, current, after string) (ids []string, last string, err error) {
	const pageSize = 200
	op := fmt.Sprintf("store: reseal %s.%s", table, column)
	rows, err := s.db.QueryContext(ctx, `SELECT id, `+column+` FROM `+table+` WHERE id > $1 ORDER BY id LIMIT $2`, after, pageSize)
	if err != nil {
		return nil, "", s.dbError(op, err)
	}
	defer rows.Close()
	count := 0
	for rows.Next() {
		var id, sealed string
		if err := rows.Scan(&id, &sealed); err != nil {
			return nil, "", s.dbError(op, err)
		}
		count++
		last = id
		if keyID, err := seal.SealedWith(sealed); err != nil || keyID != current {
			ids = append(ids, id) // reseal reports a malformed value with its row
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.dbError(op, err)
	}
	if count < pageSize {
		last = ""
	}
	return ids, last, nil
}

// reseal re-seals one row's value under the current key, unless it already
// is (a concurrent writer or another ResealAll got there first).
func (s *Store) reseal(ctx context.Context, table, column, aad, id, current string) (done bool, err error) {
	op := fmt.Sprintf("store: reseal %s.%s of %s", table, column, id)
	err = s.tx(ctx, func(tx *sql.Tx) error {
		done = false
		var sealed string
		err := tx.QueryRowContext(ctx, `SELECT `+column+` FROM `+table+` WHERE id = $1`+s.d.forUpdate(), id).Scan(&sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // deleted since it was scanned: nothing left to reseal
		}
		if err != nil {
			return s.dbError(op, err)
		}
		if keyID, err := seal.SealedWith(sealed); err == nil && keyID == current {
			return nil
		}
		plain, err := s.sealer.Open(sealed, aad)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		resealed, err := s.sealer.Seal(plain, aad)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET `+column+` = $2 WHERE id = $1`, id, resealed); err != nil {
			return s.dbError(op, err)
		}
		done = true
		return nil
	})
	return done, err
}
