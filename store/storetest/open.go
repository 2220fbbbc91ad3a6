// Package storetest holds the conformance suite every store backend must
// pass and the helpers tests use to get a fresh, migrated store. The binary
// never imports it.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/seal"
)

// DatabaseURLEnv names the variable holding an admin URL of a PostgreSQL
// server where tests may create databases. scripts/test sets it by starting
// a throwaway server when it is unset.
const DatabaseURLEnv = "SSOBROKER_TEST_DATABASE_URL"

// Backend names a store implementation under test.
type Backend struct {
	Name string
	// Open returns a fresh, empty, migrated store, closed at test cleanup.
	Open func(t testing.TB) *store.Store
	// URL returns the database URL of a fresh, empty, migrated database
	// (for tests that start whole broker processes or several stores on one
	// database).
	URL func(t testing.TB) string
}

// Backends returns both backends. PostgreSQL is never skipped: without
// SSOBROKER_TEST_DATABASE_URL the test fails and says how to get one.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", Open: OpenSQLite, URL: SQLiteURL},
		{Name: "postgres", Open: OpenPostgres, URL: PostgresURL},
	}
}

// TestKeyring is the master keyring test stores seal with.
func TestKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(bytes.Repeat([]byte{0x42}, seal.KeySize), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// OpenURL opens and migrates the store at url, closing it at cleanup.
func OpenURL(t testing.TB, rawURL string) *store.Store {
	t.Helper()
	return OpenURLWithSealer(t, rawURL, TestKeyring(t))
}

// OpenURLWithSealer is OpenURL with another master keyring (for key
// rotation tests).
func OpenURLWithSealer(t testing.TB, rawURL string, sealer store.Sealer) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), rawURL, store.Options{Sealer: sealer})
	if err != nil {
		t.Fatalf("opening test store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrating test store: %v", err)
	}
	return s
}

// SQLiteURL returns the URL of a fresh migrated SQLite file under t.TempDir().
func SQLiteURL(t testing.TB) string {
	t.Helper()
	u := "sqlite:" + filepath.Join(t.TempDir(), "ssobroker.db")
	OpenURL(t, u) // migrate once so callers get a ready database
	return u
}

// OpenSQLite returns a fresh migrated SQLite store.
func OpenSQLite(t testing.TB) *store.Store {
	t.Helper()
	return OpenURL(t, "sqlite:"+filepath.Join(t.TempDir(), "ssobroker.db"))
}

// OpenPostgres returns a store on a fresh PostgreSQL database.
func OpenPostgres(t testing.TB) *store.Store {
	t.Helper()
	return OpenURL(t, newPostgresDatabase(t))
}

// PostgresURL returns the URL of a fresh migrated PostgreSQL database.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := newPostgresDatabase(t)
	OpenURL(t, u)
	return u
}

var adminMu sync.Mutex

// newPostgresDatabase creates an empty database named after a random id
// (Hydra-style isolation: tests never share state) and drops it at cleanup.
func newPostgresDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(DatabaseURLEnv)
	if admin == "" {
		t.Fatalf("%s is not set: PostgreSQL tests never skip. Run the suite with scripts/test, which starts a throwaway PostgreSQL, or point %s at a server where tests may create databases.", DatabaseURLEnv, DatabaseURLEnv)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "ssobroker_test_" + hex.EncodeToString(b[:])

	adminMu.Lock()
	defer adminMu.Unlock()
	adminStore := openAdmin(t, admin)
	if _, err := adminStore.DB().ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		a := openAdmin(t, admin)
		_, _ = a.DB().ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func openAdmin(t testing.TB, admin string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), admin, store.Options{Sealer: TestKeyring(t), MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("connecting to %s: %v", DatabaseURLEnv, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// withDatabase replaces the database name in a postgres URL.
func withDatabase(raw, db string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parsing %s: %w", DatabaseURLEnv, err)
	}
	if !strings.HasPrefix(u.Scheme, "postgres") {
		return "", fmt.Errorf("%s must be a postgres:// URL", DatabaseURLEnv)
	}
	u.Path = "/" + db
	return u.String(), nil
}
