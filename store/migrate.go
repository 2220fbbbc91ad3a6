package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ssobroker/ssobroker/migrations"
)

// Migration is one schema step.
type Migration struct {
	Version  int
	Name     string
	SQL      string
	Checksum string
}

// Migrations lists the embedded migrations of a dialect in order.
func Migrations(dialect string) ([]Migration, error) {
	files, err := fs.Glob(migrations.FS, dialect+"/*.up.sql")
	if err != nil {
		return nil, fmt.Errorf("listing %s migrations: %w", dialect, err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, f := range files {
		base := strings.TrimSuffix(path.Base(f), ".up.sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_description.up.sql", f)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, f, v)
		}
		seen[v] = f
		body, err := fs.ReadFile(migrations.FS, f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		sum := sha256.Sum256(body)
		out = append(out, Migration{Version: v, Name: name, SQL: string(body), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// migrationLockKey is an arbitrary constant for pg_advisory_lock, so that
// replicas starting together migrate one at a time.
const migrationLockKey = 7_284_113_905

// Migrate applies every pending migration, each in its own transaction
// together with its schema_migrations row, and returns the names applied.
// Running it again applies nothing. It fails if an applied migration's
// file has changed since, because the schema would then not be what the
// code expects.
func (s *Store) Migrate(ctx context.Context) (applied []string, err error) {
	all, err := Migrations(s.d.name())
	if err != nil {
		return nil, err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()

	if s.d.name() == "postgres" {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
			return nil, fmt.Errorf("migrate: taking the migration lock: %w", err)
		}
		defer func() {
			// A fresh context: the unlock must happen even if ctx is done,
			// or the session would keep the lock until the pool closes it.
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, migrationLockKey)
		}()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name text NOT NULL,
		checksum text NOT NULL,
		applied_at text NOT NULL
	)`); err != nil {
		return nil, fmt.Errorf("migrate: creating schema_migrations: %w", err)
	}

	for _, m := range all {
		done, err := s.applyMigration(ctx, conn, m)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
	}
	return applied, nil
}

func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, m Migration) (applied bool, err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate %04d: begin: %w", m.Version, err)
	}
	defer func() {
		if !applied || err != nil {
			_ = tx.Rollback()
		}
	}()
	var have string
	err = tx.QueryRowContext(ctx, `SELECT checksum FROM schema_migrations WHERE version = $1`, m.Version).Scan(&have)
	switch {
	case err == nil && have == m.Checksum:
		return false, nil
	case err == nil:
		return false, fmt.Errorf("migrate %04d_%s: the file changed after it was applied (checksum %s, database has %s); add a new migration instead of editing an applied one", m.Version, m.Name, m.Checksum[:12], have[:min(12, len(have))])
	case err != sql.ErrNoRows:
		return false, fmt.Errorf("migrate %04d: reading state: %w", m.Version, err)
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migrate %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)`,
		m.Version, m.Name, m.Checksum, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return false, fmt.Errorf("migrate %04d: recording: %w", m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate %04d: commit: %w", m.Version, err)
	}
	return true, nil
}

// SchemaVersion returns the highest applied migration, 0 for an empty
// database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v)
	if err != nil {
		if strings.Contains(err.Error(), "schema_migrations") {
			return 0, nil
		}
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return int(v.Int64), nil
}
