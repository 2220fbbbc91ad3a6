package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	moderncsqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ssobroker/ssobroker/tenants"
)

// dialect is everything that differs between PostgreSQL and SQLite.
type dialect interface {
	name() string
	// time encodes a timestamp: timestamptz for PostgreSQL, UTC unix
	// microseconds for SQLite. Both keep microsecond precision, so a value
	// round-trips identically on either backend.
	time(t time.Time) any
	isUniqueViolation(err error) bool
	isForeignKeyViolation(err error) bool
	// isRetryable reports a transaction that lost a race and may be retried
	// as a whole (serialization failure, deadlock, busy database).
	isRetryable(err error) bool
	// forUpdate is appended to a SELECT that is followed by an UPDATE of the
	// same row in one transaction. SQLite needs none: an IMMEDIATE
	// transaction already holds the database's single write lock.
	forUpdate() string
	// sentinel maps a driver error to the sentinel it stands for, or nil:
	// unique violation -> ErrAlreadyExists, foreign key -> ErrConflict
	// (callers that know the parent turn it into ErrNotFound), NOT NULL or
	// CHECK -> tenants.ErrInvalidInput, lost race -> ErrConflict. It is the
	// one place per dialect where driver codes become contract errors.
	sentinel(err error) error
}

type postgres struct{}

func (postgres) name() string { return "postgres" }

func (postgres) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func (postgres) isUniqueViolation(err error) bool     { return pgCode(err) == "23505" }
func (postgres) isForeignKeyViolation(err error) bool { return pgCode(err) == "23503" }
func (postgres) isRetryable(err error) bool {
	c := pgCode(err)
	return c == "40001" || c == "40P01"
}
func (postgres) forUpdate() string { return " FOR UPDATE" }

func (postgres) sentinel(err error) error {
	switch pgCode(err) {
	case "23505": // unique_violation
		return ErrAlreadyExists
	case "23503": // foreign_key_violation
		return ErrConflict
	case "23502", "23514": // not_null_violation, check_violation
		return tenants.ErrInvalidInput
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return ErrConflict
	}
	return nil
}

type sqlite struct{}

func (sqlite) name() string { return "sqlite" }

func (sqlite) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func sqliteCode(err error) int {
	var se *moderncsqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func (sqlite) isUniqueViolation(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func (sqlite) isForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

func (sqlite) isRetryable(err error) bool {
	c := sqliteCode(err) & 0xff
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

func (sqlite) forUpdate() string { return "" }

func (sqlite) sentinel(err error) error {
	// modernc enables extended result codes, so constraint kinds are told
	// apart by the full code and the busy family by its primary code.
	switch c := sqliteCode(err); {
	case c == sqlite3.SQLITE_CONSTRAINT_UNIQUE, c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return ErrAlreadyExists
	case c == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return ErrConflict
	case c == sqlite3.SQLITE_CONSTRAINT_NOTNULL, c == sqlite3.SQLITE_CONSTRAINT_CHECK:
		return tenants.ErrInvalidInput
	case c&0xff == sqlite3.SQLITE_BUSY, c&0xff == sqlite3.SQLITE_LOCKED:
		return ErrConflict
	}
	return nil
}

// scanTime scans a timestamp stored by either dialect. NULL leaves the
// target at the zero time.
type scanTime struct{ t *time.Time }

func (s scanTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = v.UTC()
	case int64:
		*s.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
	return nil
}

// tm wraps a *time.Time for Scan.
func tm(t *time.Time) sql.Scanner { return scanTime{t} }

// scanJSON decodes a JSON column (jsonb or TEXT) into v.
type scanJSON struct{ v any }

func (s scanJSON) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("store: cannot scan %T as JSON", src)
	}
	if err := json.Unmarshal(b, s.v); err != nil {
		return fmt.Errorf("store: decoding JSON column: %w", err)
	}
	return nil
}

// js wraps a pointer for Scan from a JSON column.
func js(v any) sql.Scanner { return scanJSON{v} }

// jsonArg encodes v for a JSON column. Nil slices are stored as [] so that
// readers never have to tell null from empty.
func jsonArg(v any) (driver.Value, error) {
	if l, ok := v.([]string); ok && l == nil {
		return "[]", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: encoding JSON column: %w", err)
	}
	return string(b), nil
}

// mustJSON is jsonArg for values that always encode (string slices, plain
// structs); it panics only on a programming error.
func mustJSON(v any) driver.Value {
	out, err := jsonArg(v)
	if err != nil {
		panic(err)
	}
	return out
}

// tx runs fn in a transaction, retrying the whole transaction a few times
// when the database reports a lost race it is safe to retry.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	const attempts = 4
	var err error
	for i := 0; i < attempts; i++ {
		err = s.tryTx(ctx, fn)
		if err == nil || !s.d.isRetryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(i+1) * 5 * time.Millisecond)
	}
	return err
}

func (s *Store) tryTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		// Roll back on a panic too (an Update callback may panic, and the
		// HTTP layer recovers panics): a transaction left open would pin
		// its connection forever and, on SQLite, the database's only write
		// lock with it.
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// notFound maps sql.ErrNoRows to ErrNotFound with a description of what was
// missing; other errors are wrapped with the operation.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// dbError wraps err, which a statement of operation op returned, with the
// sentinel the dialect maps it to, keeping the driver error in the chain for
// the log: "op: already exists: ERROR: duplicate key ...". sql.ErrNoRows
// becomes ErrNotFound.
func (s *Store) dbError(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(err, op)
	}
	if sen := s.d.sentinel(err); sen != nil && !errors.Is(err, sen) {
		return fmt.Errorf("%s: %w: %w", op, sen, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// affected checks that an UPDATE or DELETE touched a row.
func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}
