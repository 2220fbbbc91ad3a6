// Package store persists ssobroker's state in PostgreSQL (production, shared
// by every replica) or SQLite (zero-setup default for one process).
//
// One implementation serves both: queries go through database/sql (pgx's
// stdlib driver, modernc.org/sqlite) with the same SQL text wherever the two
// dialects agree ($N placeholders, ON CONFLICT, RETURNING), and the dialect
// type covers where they do not (time encoding, row locks, error codes). The
// schema lives in package migrations, one folder per dialect.
//
// Store implements the storage interfaces declared by its consumers
// (tenants.Store, oidcprovider.Store, saml.ReplayCache, audit.Log, ...).
// The conformance suite in store/storetest runs every behaviour against both
// backends.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/ssobroker/ssobroker/tenants"
)

// Re-exported sentinels: the store reports the directory's errors.
var (
	ErrNotFound      = tenants.ErrNotFound
	ErrAlreadyExists = tenants.ErrAlreadyExists
	ErrConflict      = tenants.ErrConflict
)

// Sealer encrypts secrets before they are written (see package seal). aad
// binds the sealed value to its row. *seal.Keyring implements it.
type Sealer interface {
	Seal(plaintext []byte, aad string) (string, error)
	Open(sealed, aad string) ([]byte, error)
	// CurrentKeyID names the key Seal uses, so that ResealAll can skip
	// values that are already sealed with it (see seal.SealedWith).
	CurrentKeyID() string
}

// Options configure a Store.
type Options struct {
	// Sealer encrypts private keys at rest. Required.
	Sealer Sealer
	Logger *slog.Logger
	// MaxOpenConns bounds the connection pool. Zero means 16 for PostgreSQL
	// and 8 for SQLite (one writer at a time; readers share WAL snapshots).
	MaxOpenConns int
}

// Store is the single persistence implementation.
type Store struct {
	db     *sql.DB
	d      dialect
	sealer Sealer
	log    *slog.Logger
}

// Open connects to url and checks the connection. Accepted forms:
//
//	postgres://user:pass@host:5432/db?sslmode=verify-full
//	postgresql://...
//	sqlite:/var/lib/ssobroker/ssobroker.db
//	sqlite:relative/path.db
//
// Open does not migrate; call Migrate.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	if opts.Sealer == nil {
		return nil, errors.New("store: a Sealer is required to keep private keys encrypted at rest")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var (
		db  *sql.DB
		d   dialect
		err error
	)
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		d = postgres{}
		db, err = openPostgres(rawURL, opts)
	case strings.HasPrefix(rawURL, "sqlite:"):
		d = sqlite{}
		db, err = openSQLite(strings.TrimPrefix(rawURL, "sqlite:"), opts)
	default:
		return nil, fmt.Errorf("store: database URL must start with postgres://, postgresql:// or sqlite: (got %q)", redactURL(rawURL))
	}
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connecting to %s: %w", redactURL(rawURL), err)
	}
	return &Store{db: db, d: d, sealer: opts.Sealer, log: opts.Logger}, nil
}

func openPostgres(rawURL string, opts Options) (*sql.DB, error) {
	db, err := sql.Open("pgx", rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: postgres URL %s: %w", redactURL(rawURL), err)
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 16
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(time.Hour)
	db.SetConnMaxIdleTime(10 * time.Minute)
	return db, nil
}

var _ = stdlib.GetDefaultDriver // keep the pgx stdlib driver registered as "pgx"

func openSQLite(path string, opts Options) (*sql.DB, error) {
	if path == "" || strings.Contains(path, "?") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		// Pragmas are appended below and run verbatim by the driver, so the
		// path must not carry its own query; and :memory: would give every
		// pooled connection its own empty database.
		return nil, fmt.Errorf("store: sqlite URL must be sqlite:PATH to a file without query parameters (got %q)", path)
	}
	// WAL lets readers proceed during a write; busy_timeout makes writers
	// queue instead of failing; _txlock=immediate takes the write lock at
	// BEGIN so a read-then-write transaction cannot fail on lock upgrade.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite %s: %w", path, err)
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 8
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return db, nil
}

// Close releases the pool.
func (s *Store) Close() error { return s.db.Close() }

// Dialect is "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.d.name() }

// DB exposes the pool to tests and maintenance commands in this module.
func (s *Store) DB() *sql.DB { return s.db }

// Health is a write-and-delete round trip, so readiness fails when the
// database is read-only or out of space, not only when it is unreachable.
func (s *Store) Health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	name := "health:" + fmt.Sprint(time.Now().UnixNano())
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)`,
			name, "health", s.d.time(time.Now().Add(time.Minute))); err != nil {
			return fmt.Errorf("store health write: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE name = $1`, name); err != nil {
			return fmt.Errorf("store health delete: %w", err)
		}
		return nil
	})
}

// redactURL drops the password from a database URL for error messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil {
			return "(unparseable URL)"
		}
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
