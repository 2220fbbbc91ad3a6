package storetest

import (
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/tenants"
)

func testClientCRUD(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tests := []struct {
		name   string
		modify func(*tenants.Client)
	}{
		{"confidential", func(*tenants.Client) {}},
		{"public with defaults", func(c *tenants.Client) {
			c.Public, c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt = true, "", "", time.Time{}
			c.PostLogoutRedirectURIs, c.AllowedTenants, c.InitiateLoginURI = nil, nil, ""
			c.AccessTokenTTL, c.IDTokenTTL, c.RefreshTokenTTL = 0, 0, 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := newClient(t)
			tt.modify(&want)
			check(t, s.CreateClient(ctx, want), "create client")
			got, err := s.Client(ctx, want.ID)
			check(t, err, "get client")
			equal(t, "client", got, want)
			wantIs(t, s.CreateClient(ctx, want), store.ErrAlreadyExists, "create twice")
		})
	}

	c := createClient(t, s)
	later := base.Add(time.Hour)
	got, err := s.UpdateClient(ctx, c.ID, func(c *tenants.Client) error {
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = c.SecretHash, later
		c.SecretHash = "sha256:rotated"
		c.RedirectURIs = c.RedirectURIs[:1]
		c.AllowedTenants = nil
		c.AccessTokenTTL = time.Hour
		c.UpdatedAt = later
		return nil
	})
	check(t, err, "update client")
	want := c
	want.PreviousSecretHash, want.PreviousSecretExpiresAt, want.SecretHash = c.SecretHash, later, "sha256:rotated"
	want.RedirectURIs, want.AllowedTenants, want.AccessTokenTTL, want.UpdatedAt = c.RedirectURIs[:1], nil, time.Hour, later
	equal(t, "returned client", got, want)
	stored, err := s.Client(ctx, c.ID)
	check(t, err, "get client")
	equal(t, "stored client", stored, want)

	errStop := errors.New("stop")
	if _, err := s.UpdateClient(ctx, c.ID, func(c *tenants.Client) error { c.Name = "x"; return errStop }); err != errStop {
		t.Fatalf("update with a failing callback: got %v, want the callback's error", err)
	}
	stored, err = s.Client(ctx, c.ID)
	check(t, err, "get client")
	equal(t, "client after a failed update", stored, want)

	check(t, s.DeleteClient(ctx, c.ID), "delete client")
	_, err = s.Client(ctx, c.ID)
	wantIs(t, err, store.ErrNotFound, "deleted client")
	wantIs(t, s.DeleteClient(ctx, c.ID), store.ErrNotFound, "delete again")
	_, err = s.UpdateClient(ctx, c.ID, func(*tenants.Client) error { return nil })
	wantIs(t, err, store.ErrNotFound, "update a deleted client")
}

func testClientList(t *testing.T, s *store.Store) {
	ctx := t.Context()
	var want []string
	for range 7 {
		want = append(want, createClient(t, s).ID)
	}
	sort.Strings(want)
	got := walk(t, 3, func(after string) ([]string, string, error) {
		items, next, err := s.ListClients(ctx, tenants.Page{Limit: 3, After: after})
		var ids []string
		for _, c := range items {
			ids = append(ids, c.ID)
		}
		return ids, next, err
	})
	equal(t, "walked ids", got, want)
}

func testIdentityUpsert(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s)
	c := createConnection(t, s, tn.ID)

	first := newIdentity(t, c, "ada")
	got, err := s.UpsertIdentity(ctx, first)
	check(t, err, "first login")
	equal(t, "inserted identity", got, first)
	stored, err := s.Identity(ctx, first.Subject)
	check(t, err, "get identity")
	equal(t, "stored identity", stored, first)

	// A second login proposes a new random subject; the stored one stays,
	// with its creation time and status, and the profile is refreshed.
	_, err = s.SetIdentityStatus(ctx, first.Subject, tenants.IdentityDeactivated, base.Add(time.Minute))
	check(t, err, "deactivate")
	second := newIdentity(t, c, "ada")
	second.Email, second.EmailVerified = "ada@new.example", false
	second.Profile.Email, second.Profile.Groups = "ada@new.example", nil
	second.CreatedAt, second.UpdatedAt, second.LastLoginAt = base.Add(time.Hour), base.Add(time.Hour), base.Add(time.Hour)
	second.Status = tenants.IdentityActive
	got, err = s.UpsertIdentity(ctx, second)
	check(t, err, "second login")
	want := second
	want.Subject, want.CreatedAt, want.Status = first.Subject, first.CreatedAt, tenants.IdentityDeactivated
	equal(t, "upserted identity", got, want)
	stored, err = s.Identity(ctx, first.Subject)
	check(t, err, "get identity")
	equal(t, "stored identity", stored, want)
	_, err = s.Identity(ctx, second.Subject)
	wantIs(t, err, store.ErrNotFound, "the second login's unused subject")

	// The same IdP subject through another connection is another identity.
	c2 := createConnection(t, s, tn.ID)
	other := upsertIdentity(t, s, c2, "ada")
	if other.Subject == first.Subject {
		t.Fatal("identities of two connections merged")
	}

	tests := []struct {
		name   string
		modify func(*tenants.Identity)
		want   error
	}{
		{"missing connection", func(id *tenants.Identity) { id.ConnectionID = "conn_missing" }, store.ErrNotFound},
		{"connection of another tenant", func(id *tenants.Identity) { id.TenantID = createTenant(t, s).ID }, store.ErrNotFound},
		{"subject taken", func(id *tenants.Identity) { id.Subject = first.Subject }, store.ErrAlreadyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newIdentity(t, c, "grace-"+tt.name)
			tt.modify(&id)
			_, err := s.UpsertIdentity(ctx, id)
			wantIs(t, err, tt.want, "upsert")
		})
	}
	_, err = s.Identity(ctx, "usr_missing")
	wantIs(t, err, store.ErrNotFound, "missing identity")
}

func testIdentityList(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := createTenant(t, s)
	b := createTenant(t, s)
	ca := createConnection(t, s, a.ID)
	cb := createConnection(t, s, b.ID)
	var wantA, wantAll []string
	for i := range 7 {
		ida := upsertIdentity(t, s, ca, "user"+string(rune('a'+i)))
		idb := upsertIdentity(t, s, cb, "user"+string(rune('a'+i)))
		wantA = append(wantA, ida.Subject)
		wantAll = append(wantAll, ida.Subject, idb.Subject)
	}
	sort.Strings(wantA)
	sort.Strings(wantAll)
	tests := []struct {
		name, tenant string
		want         []string
	}{
		{"one tenant", a.ID, wantA},
		{"every tenant", "", wantAll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := walk(t, 3, func(after string) ([]string, string, error) {
				items, next, err := s.ListIdentities(ctx, tt.tenant, tenants.Page{Limit: 3, After: after})
				var ids []string
				for _, id := range items {
					if tt.tenant != "" && id.TenantID != tt.tenant {
						t.Fatalf("listing %s returned %s of %s", tt.tenant, id.Subject, id.TenantID)
					}
					ids = append(ids, id.Subject)
				}
				return ids, next, err
			})
			equal(t, "walked subjects", got, tt.want)
		})
	}
}

func testIdentitySetStatus(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s)
	c := createConnection(t, s, tn.ID)
	cl := createClient(t, s)
	ada := upsertIdentity(t, s, c, "ada")
	bob := upsertIdentity(t, s, c, "bob")
	live := insertGrant(t, s, cl.ID, ada)
	live2 := insertGrant(t, s, cl.ID, ada)
	revokedBefore := insertGrant(t, s, cl.ID, ada)
	_, err := s.DB().ExecContext(ctx, `UPDATE grants SET revoked_at = $1, revoked_reason = 'refresh_reuse' WHERE id = $2`, dbTime(s, base), revokedBefore)
	check(t, err, "revoke a grant beforehand")
	bobs := insertGrant(t, s, cl.ID, bob)

	now := base.Add(time.Hour)
	got, err := s.SetIdentityStatus(ctx, ada.Subject, tenants.IdentityDeactivated, now)
	check(t, err, "deactivate")
	want := ada
	want.Status, want.UpdatedAt = tenants.IdentityDeactivated, now
	equal(t, "deactivated identity", got, want)

	grants := []struct {
		id         string
		wantReason string
		wantAt     time.Time
	}{
		{live, "identity_deactivated", now},
		{live2, "identity_deactivated", now},
		{revokedBefore, "refresh_reuse", base}, // an earlier revocation keeps its reason
		{bobs, "", time.Time{}},                // another subject is untouched
	}
	for _, g := range grants {
		var (
			reason string
			at     time.Time
		)
		check(t, s.DB().QueryRowContext(ctx, `SELECT revoked_reason, revoked_at FROM grants WHERE id = $1`, g.id).Scan(&reason, scanAnyTime{&at}), "read grant")
		equal(t, "revoked_reason of "+g.id, reason, g.wantReason)
		if !at.Equal(g.wantAt) {
			t.Fatalf("revoked_at of %s: got %v, want %v", g.id, at, g.wantAt)
		}
	}

	got, err = s.SetIdentityStatus(ctx, ada.Subject, tenants.IdentityActive, now.Add(time.Minute))
	check(t, err, "reactivate")
	equal(t, "status", got.Status, tenants.IdentityActive)

	_, err = s.SetIdentityStatus(ctx, "usr_missing", tenants.IdentityDeactivated, now)
	wantIs(t, err, store.ErrNotFound, "deactivate a missing identity")
	_, err = s.SetIdentityStatus(ctx, ada.Subject, "suspended", now)
	wantIs(t, err, tenants.ErrInvalidInput, "unknown status")
}

// scanAnyTime scans a raw time column of either dialect; NULL is zero.
type scanAnyTime struct{ t *time.Time }

func (s scanAnyTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = v
	case int64:
		*s.t = time.UnixMicro(v).UTC()
	default:
		return errors.New("not a time")
	}
	return nil
}
