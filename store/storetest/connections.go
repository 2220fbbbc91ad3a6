package storetest

import (
	"bytes"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/seal"
	"github.com/ssobroker/ssobroker/tenants"
)

func testConnectionCRUD(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s)

	tests := []struct {
		name   string
		modify func(*tenants.Connection)
	}{
		{"full", func(*tenants.Connection) {}},
		{"minimal", func(c *tenants.Connection) {
			c.IdP = tenants.IdPConfig{EntityID: "https://idp.example", SSOPostURL: "https://idp.example/sso", Certificates: []string{"cert"}}
			c.AttributeMapping = tenants.AttributeMapping{}
			c.Policy = tenants.ConnectionPolicy{}
			c.Metadata = tenants.MetadataSource{}
			c.Status = tenants.StatusInactive
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := newConnection(t, tn.ID)
			tt.modify(&want)
			check(t, s.CreateConnection(ctx, want), "create connection")
			got, err := s.Connection(ctx, want.ID)
			check(t, err, "get connection")
			equal(t, "connection", got, want)
			if got.SPKey.Reveal() != want.SPKey.Reveal() {
				t.Fatal("the SP key does not round-trip")
			}
			ref, err := s.ConnectionRef(ctx, want.ID)
			check(t, err, "connection ref")
			equal(t, "connection ref", ref, tenants.ConnectionRef{ID: want.ID, TenantID: want.TenantID, Name: want.Name,
				Preset: want.Preset, Status: want.Status, UpdatedAt: want.UpdatedAt})
			wantIs(t, s.CreateConnection(ctx, want), store.ErrAlreadyExists, "create twice")
		})
	}

	orphan := newConnection(t, "ten_missing")
	wantIs(t, s.CreateConnection(ctx, orphan), store.ErrNotFound, "create for a missing tenant")

	c := createConnection(t, s, tn.ID)
	later := base.Add(time.Minute)
	got, err := s.UpdateConnection(ctx, c.ID, func(c *tenants.Connection) error {
		c.Name = "Renamed"
		c.Status = tenants.StatusInactive
		c.IdP.Certificates = append(c.IdP.Certificates, "third")
		c.Policy.AllowSHA1 = true
		c.AttributeMapping.Subject = "objectidentifier"
		c.SPKey = "-----BEGIN PRIVATE KEY-----\nrotated\n-----END PRIVATE KEY-----\n"
		c.Metadata.LastError = "fetch failed"
		c.Metadata.NextRefreshAt = later
		c.UpdatedAt = later
		return nil
	})
	check(t, err, "update connection")
	want := c
	want.Name, want.Status, want.UpdatedAt = "Renamed", tenants.StatusInactive, later
	want.IdP.Certificates = append(append([]string(nil), c.IdP.Certificates...), "third")
	want.Policy.AllowSHA1 = true
	want.AttributeMapping.Subject = "objectidentifier"
	want.SPKey = "-----BEGIN PRIVATE KEY-----\nrotated\n-----END PRIVATE KEY-----\n"
	want.Metadata.LastError, want.Metadata.NextRefreshAt = "fetch failed", later
	equal(t, "returned connection", got, want)
	stored, err := s.Connection(ctx, c.ID)
	check(t, err, "get connection")
	equal(t, "stored connection", stored, want)

	errStop := errors.New("stop")
	_, err = s.UpdateConnection(ctx, c.ID, func(c *tenants.Connection) error {
		c.Name = "Not written"
		return errStop
	})
	if err != errStop {
		t.Fatalf("update with a failing callback: got %v, want the callback's error", err)
	}
	elsewhere := createTenant(t, s).ID
	_, err = s.UpdateConnection(ctx, c.ID, func(c *tenants.Connection) error {
		c.TenantID = elsewhere
		return nil
	})
	wantIs(t, err, tenants.ErrInvalidInput, "move a connection to another tenant")
	stored, err = s.Connection(ctx, c.ID)
	check(t, err, "get connection")
	equal(t, "connection after refused updates", stored, want)

	check(t, s.DeleteConnection(ctx, c.ID), "delete connection")
	notFound := []struct {
		name string
		call func() error
	}{
		{"Connection", func() error { _, err := s.Connection(ctx, c.ID); return err }},
		{"ConnectionRef", func() error { _, err := s.ConnectionRef(ctx, c.ID); return err }},
		{"DeleteConnection", func() error { return s.DeleteConnection(ctx, c.ID) }},
		{"UpdateConnection", func() error {
			_, err := s.UpdateConnection(ctx, c.ID, func(*tenants.Connection) error { return nil })
			return err
		}},
	}
	for _, tt := range notFound {
		wantIs(t, tt.call(), store.ErrNotFound, tt.name+" of a deleted connection")
	}
}

func testConnectionList(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := createTenant(t, s)
	b := createTenant(t, s)
	var wantA, wantAll []string
	for range 7 {
		c := createConnection(t, s, a.ID)
		wantA = append(wantA, c.ID)
		other := createConnection(t, s, b.ID)
		wantAll = append(wantAll, c.ID, other.ID)
	}
	sort.Strings(wantA)
	sort.Strings(wantAll)
	tests := []struct {
		name   string
		tenant string
		want   []string
	}{
		{"one tenant", a.ID, wantA},
		{"every tenant", "", wantAll},
		{"unknown tenant", "ten_missing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := walk(t, 3, func(after string) ([]string, string, error) {
				items, next, err := s.ListConnections(ctx, tt.tenant, tenants.Page{Limit: 3, After: after})
				var ids []string
				for _, c := range items {
					if tt.tenant != "" && c.TenantID != tt.tenant {
						t.Fatalf("listing %s returned %s of %s", tt.tenant, c.ID, c.TenantID)
					}
					if c.SPKey.Reveal() != spKeyPEM(c.ID) {
						t.Fatalf("listed connection %s without its SP key", c.ID)
					}
					ids = append(ids, c.ID)
				}
				return ids, next, err
			})
			equal(t, "walked ids", got, tt.want)
		})
	}
}

func testConnectionDueForRefresh(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s)
	now := base.Add(10 * time.Hour)
	mk := func(url string, next time.Time) string {
		c := newConnection(t, tn.ID)
		c.Metadata = tenants.MetadataSource{URL: url, NextRefreshAt: next}
		check(t, s.CreateConnection(ctx, c), "create connection")
		return c.ID
	}
	overdue := mk("https://idp.example/md", now.Add(-time.Hour))
	exactly := mk("https://idp.example/md", now)
	never := mk("https://idp.example/md", time.Time{})
	mk("https://idp.example/md", now.Add(time.Microsecond)) // not yet
	mk("", now.Add(-time.Hour))                             // no URL: nothing to refresh

	tests := []struct {
		limit int
		want  []string
	}{
		{10, []string{never, overdue, exactly}},
		{2, []string{never, overdue}},
	}
	for _, tt := range tests {
		list, err := s.ConnectionsDueForRefresh(ctx, now, tt.limit)
		check(t, err, "connections due")
		var got []string
		for _, c := range list {
			got = append(got, c.ID)
		}
		equal(t, "due connections", got, tt.want)
	}
}

func testConnectionSealedAtRest(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s)
	a := createConnection(t, s, tn.ID)
	b := createConnection(t, s, tn.ID)

	var sealed string
	check(t, s.DB().QueryRowContext(ctx, `SELECT sp_key_sealed FROM connections WHERE id = $1`, a.ID).Scan(&sealed), "raw read")
	for _, leak := range []string{a.SPKey.Reveal(), "plaintext-sp-key", "PRIVATE KEY"} {
		if strings.Contains(sealed, leak) {
			t.Fatalf("the stored SP key contains %q in plaintext", leak)
		}
	}
	if id, err := seal.SealedWith(sealed); err != nil || id != TestKeyring(t).CurrentKeyID() {
		t.Fatalf("stored SP key is not sealed with the current key: %q, %v", id, err)
	}

	// The sealed value is bound to its row: copied into another row, it
	// does not open.
	_, err := s.DB().ExecContext(ctx, `UPDATE connections SET sp_key_sealed = $1 WHERE id = $2`, sealed, b.ID)
	check(t, err, "copy sealed key")
	_, err = s.Connection(ctx, b.ID)
	wantIs(t, err, seal.ErrCorrupt, "open a sealed key copied from another row")
}

func keyring(t testing.TB, current byte, previous ...byte) *seal.Keyring {
	t.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, bytes.Repeat([]byte{p}, seal.KeySize))
	}
	k, err := seal.NewKeyring(bytes.Repeat([]byte{current}, seal.KeySize), prev, nil)
	check(t, err, "keyring")
	return k
}

// testSealResealAll rotates the master key: values sealed with the old key
// are re-sealed with the new one (SP keys and OIDC signing keys), the store
// then works with the new key alone, and a second run has nothing to do.
func testSealResealAll(t *testing.T, b Backend) {
	ctx := t.Context()
	u := b.URL(t)
	oldOnly := OpenURL(t, u) // TestKeyring: 0x42
	tn := createTenant(t, oldOnly)
	var conns []tenants.Connection
	for range 3 {
		conns = append(conns, createConnection(t, oldOnly, tn.ID))
	}
	// The OIDC tables' sealed columns are written raw here (their store
	// methods belong to the OIDC side); the AAD formats are fixed.
	old := TestKeyring(t)
	type sealedRow struct{ table, column, aad, plain string }
	var oidcRows []sealedRow
	for gen := range 2 {
		id := newID(t, "key_")
		r := sealedRow{"signing_keys", "private_key_sealed", "signing_keys.private_key:" + id, "signing-key-plaintext-" + id}
		sealed, err := old.Seal([]byte(r.plain), r.aad)
		check(t, err, "seal signing key")
		_, err = oldOnly.DB().ExecContext(ctx, `INSERT INTO signing_keys (id, generation, algorithm, private_key_sealed,
			public_key, created_at, active_from) VALUES ($1, $2, 'RS256', $3, 'pub', $4, $4)`,
			id, gen+1, sealed, dbTime(oldOnly, base))
		check(t, err, "insert signing key")
		oidcRows = append(oidcRows, r)
	}
	secret := sealedRow{"oidc_secrets", "value_sealed", "oidc_secrets.value:op_crypto_key", "crypto-key-plaintext"}
	sealed, err := old.Seal([]byte(secret.plain), secret.aad)
	check(t, err, "seal oidc secret")
	_, err = oldOnly.DB().ExecContext(ctx, `INSERT INTO oidc_secrets (id, value_sealed, created_at) VALUES ('op_crypto_key', $1, $2)`,
		sealed, dbTime(oldOnly, base))
	check(t, err, "insert oidc secret")
	oidcRows = append(oidcRows, secret)

	rotating := keyring(t, 0x43, 0x42)
	during := OpenURLWithSealer(t, u, rotating)
	n, err := during.ResealAll(ctx)
	check(t, err, "reseal")
	equal(t, "values re-sealed", n, len(conns)+len(oidcRows))
	n, err = during.ResealAll(ctx)
	check(t, err, "reseal again")
	equal(t, "values re-sealed by a second run", n, 0)

	newKey := keyring(t, 0x43)
	newOnly := OpenURLWithSealer(t, u, newKey)
	for _, c := range conns {
		got, err := newOnly.Connection(ctx, c.ID)
		check(t, err, "open connection with the new key alone")
		if got.SPKey.Reveal() != c.SPKey.Reveal() {
			t.Fatalf("SP key of %s changed in re-sealing", c.ID)
		}
		_, err = oldOnly.Connection(ctx, c.ID)
		wantIs(t, err, seal.ErrUnknownKey, "open with the retired key")
	}
	for _, r := range oidcRows {
		var sealed string
		id := r.aad[strings.Index(r.aad, ":")+1:]
		check(t, newOnly.DB().QueryRowContext(ctx, `SELECT `+r.column+` FROM `+r.table+` WHERE id = $1`, id).Scan(&sealed), "raw read")
		got, err := newKey.Open(sealed, r.aad)
		check(t, err, "open "+r.aad+" with the new key alone")
		equal(t, r.aad, string(got), r.plain)
	}
}
