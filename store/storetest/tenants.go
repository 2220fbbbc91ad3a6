package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/tenants"
)

func testTenantCreateGet(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tests := []struct {
		name    string
		domains []string
	}{
		{"no domains", nil},
		{"one domain", []string{"one.example"}},
		{"several domains", []string{"zeta.example", "alpha.example", "xn--bcher-kva.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := createTenant(t, s, tt.domains...)
			got, err := s.Tenant(ctx, want.ID)
			check(t, err, "get tenant")
			equal(t, "tenant", got, want)

			err = s.CreateTenant(ctx, want)
			wantIs(t, err, store.ErrAlreadyExists, "create the same tenant twice")
		})
	}
}

func testTenantNotFound(t *testing.T, s *store.Store) {
	ctx := t.Context()
	const missing = "ten_missing"
	tests := []struct {
		name string
		call func() error
	}{
		{"Tenant", func() error { _, err := s.Tenant(ctx, missing); return err }},
		{"UpdateTenant", func() error {
			_, err := s.UpdateTenant(ctx, missing, func(*tenants.Tenant) error { return nil })
			return err
		}},
		{"DeleteTenant", func() error { return s.DeleteTenant(ctx, missing) }},
		{"Domain", func() error { _, err := s.Domain(ctx, "nobody.example"); return err }},
		{"DeleteDomain", func() error { return s.DeleteDomain(ctx, missing, "nobody.example") }},
		{"RouteDomain", func() error { _, err := s.RouteDomain(ctx, "nobody.example"); return err }},
		{"AddDomain to a missing tenant", func() error {
			return s.AddDomain(ctx, tenants.Domain{Name: "orphan.example", TenantID: missing, CreatedAt: base})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantIs(t, tt.call(), store.ErrNotFound, tt.name)
		})
	}
	if _, err := s.Domain(ctx, "orphan.example"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a domain added to a missing tenant was written: %v", err)
	}
}

// wantDomainTaken checks the error a taken domain must produce.
func wantDomainTaken(t testing.TB, err error, domain string) {
	t.Helper()
	var dte *tenants.DomainTakenError
	if !errors.As(err, &dte) {
		t.Fatalf("got error %v, want a *tenants.DomainTakenError", err)
	}
	if dte.Domain != domain {
		t.Fatalf("DomainTakenError names %q, want %q", dte.Domain, domain)
	}
	wantIs(t, err, tenants.ErrDomainTaken, "taken domain")
	wantIs(t, err, tenants.ErrAlreadyExists, "taken domain")
}

func testTenantDomainTaken(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "taken.example")

	t.Run("CreateTenant writes nothing when one domain is taken", func(t *testing.T) {
		b := newTenant(t, "fresh.example", "taken.example", "zfresh.example")
		wantDomainTaken(t, s.CreateTenant(ctx, b), "taken.example")
		_, err := s.Tenant(ctx, b.ID)
		wantIs(t, err, store.ErrNotFound, "tenant of a failed create")
		for _, d := range []string{"fresh.example", "zfresh.example"} {
			_, err := s.Domain(ctx, d)
			wantIs(t, err, store.ErrNotFound, "domain "+d+" of a failed create")
		}
		got, err := s.Domain(ctx, "taken.example")
		check(t, err, "owner of taken.example")
		equal(t, "owner", got.TenantID, a.ID)
	})

	tests := []struct {
		name   string
		tenant func() string
	}{
		{"AddDomain by another tenant", func() string { return createTenant(t, s).ID }},
		{"AddDomain by the owner again", func() string { return a.ID }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.AddDomain(ctx, tenants.Domain{Name: "taken.example", TenantID: tt.tenant(), CreatedAt: base})
			wantDomainTaken(t, err, "taken.example")
			got, err := s.Domain(ctx, "taken.example")
			check(t, err, "owner")
			equal(t, "owner", got.TenantID, a.ID)
		})
	}
}

func testTenantUpdate(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s, "upd.example")
	later := base.Add(time.Minute)

	got, err := s.UpdateTenant(ctx, tn.ID, func(t *tenants.Tenant) error {
		t.Name = "Renamed"
		t.UpdatedAt = later
		t.CreatedAt = later // ignored: creation time never changes
		return nil
	})
	check(t, err, "update tenant")
	want := tn
	want.Name, want.UpdatedAt = "Renamed", later
	equal(t, "returned tenant", got, want)
	stored, err := s.Tenant(ctx, tn.ID)
	check(t, err, "get tenant")
	equal(t, "stored tenant", stored, want)

	t.Run("callback error writes nothing and is returned unchanged", func(t *testing.T) {
		errStop := errors.New("stop")
		_, err := s.UpdateTenant(ctx, tn.ID, func(t *tenants.Tenant) error {
			t.Name = "Not written"
			return errStop
		})
		if err != errStop {
			t.Fatalf("got error %v, want the callback's own error value", err)
		}
		stored, err := s.Tenant(ctx, tn.ID)
		check(t, err, "get tenant")
		equal(t, "stored tenant", stored, want)
	})

	t.Run("a panicking callback writes nothing and leaves the store usable", func(t *testing.T) {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the callback's panic did not propagate")
				}
			}()
			_, _ = s.UpdateTenant(ctx, tn.ID, func(t *tenants.Tenant) error {
				t.Name = "Not written"
				panic("callback bug")
			})
		}()
		// A transaction left open would hold the row lock (PostgreSQL) or
		// the write lock (SQLite) and make this wait until it times out.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		got, err := s.UpdateTenant(wctx, tn.ID, func(*tenants.Tenant) error { return nil })
		check(t, err, "update after a panic")
		equal(t, "stored tenant", got, want)
	})

	t.Run("changing the id is refused", func(t *testing.T) {
		_, err := s.UpdateTenant(ctx, tn.ID, func(t *tenants.Tenant) error {
			t.ID = "ten_other"
			return nil
		})
		wantIs(t, err, tenants.ErrInvalidInput, "change id")
		_, err = s.Tenant(ctx, "ten_other")
		wantIs(t, err, store.ErrNotFound, "tenant under the new id")
	})
}

// testTenantUpdateWithinUpdate is Dex's update-within-update: while an
// update holds a tenant's row, a second update of the same row must not
// slip in between its read and its write. Here it waits for the lock until
// its context ends, and the outer write stands.
func testTenantUpdateWithinUpdate(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s)
	var innerErr error
	_, err := s.UpdateTenant(ctx, tn.ID, func(outer *tenants.Tenant) error {
		outer.Name = "outer"
		innerCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, innerErr = s.UpdateTenant(innerCtx, tn.ID, func(inner *tenants.Tenant) error {
			inner.Name = "inner"
			return nil
		})
		return nil
	})
	check(t, err, "outer update")
	if innerErr == nil {
		t.Fatal("an update of a row locked by another update committed in between")
	}
	got, err := s.Tenant(ctx, tn.ID)
	check(t, err, "get tenant")
	equal(t, "name", got.Name, "outer")
}

func testTenantList(t *testing.T, s *store.Store) {
	ctx := t.Context()
	var want []string
	for i := range 7 {
		tn := createTenant(t, s, fmt.Sprintf("list%d.example", i))
		want = append(want, tn.ID)
	}
	sort.Strings(want)
	got := walk(t, 3, func(after string) ([]string, string, error) {
		items, next, err := s.ListTenants(ctx, tenants.Page{Limit: 3, After: after})
		var ids []string
		for _, tn := range items {
			if len(tn.Domains) != 1 || tn.Domains[0].TenantID != tn.ID {
				t.Fatalf("listed tenant %s with domains %+v, want its one domain", tn.ID, tn.Domains)
			}
			ids = append(ids, tn.ID)
		}
		return ids, next, err
	})
	equal(t, "walked ids", got, want)

	items, next, err := s.ListTenants(ctx, tenants.Page{})
	check(t, err, "list with the default limit")
	equal(t, "default page size", len(items), 7)
	equal(t, "next after everything", next, "")
}

func testTenantDeleteCascades(t *testing.T, s *store.Store) {
	ctx := t.Context()
	build := func(domain string) (tenants.Tenant, tenants.Identity) {
		tn := createTenant(t, s, domain)
		c := createConnection(t, s, tn.ID)
		id := upsertIdentity(t, s, c, "user-"+domain)
		cl := createClient(t, s)
		insertGrant(t, s, cl.ID, id)
		check(t, s.CreatePortalLink(ctx, "link-"+domain, tn.ID, base, base.Add(time.Hour)), "portal link")
		check(t, s.CreatePortalSession(ctx, "session-"+domain, tn.ID, base, base.Add(time.Hour)), "portal session")
		check(t, s.AppendAudit(ctx, audit.Event{Time: base, Type: audit.TenantCreated, TenantID: tn.ID}), "audit")
		return tn, id
	}
	gone, goneID := build("gone.example")
	kept, keptID := build("kept.example")

	check(t, s.DeleteTenant(ctx, gone.ID), "delete tenant")
	wantIs(t, s.DeleteTenant(ctx, gone.ID), store.ErrNotFound, "delete again")
	_, err := s.Tenant(ctx, gone.ID)
	wantIs(t, err, store.ErrNotFound, "deleted tenant")
	_, err = s.Identity(ctx, goneID.Subject)
	wantIs(t, err, store.ErrNotFound, "identity of a deleted tenant")

	tables := []struct {
		table     string
		wantGone  int
		wantKept  int
		tenantCol string
	}{
		{"domains", 0, 1, "tenant_id"},
		{"connections", 0, 1, "tenant_id"},
		{"identities", 0, 1, "tenant_id"},
		{"grants", 0, 1, "tenant_id"},
		{"portal_links", 0, 1, "tenant_id"},
		{"portal_sessions", 0, 1, "tenant_id"},
		{"audit_events", 1, 1, "tenant_id"}, // the trail outlives the tenant
	}
	for _, tt := range tables {
		q := "SELECT count(*) FROM " + tt.table + " WHERE " + tt.tenantCol + " = $1"
		if n := count(t, s, q, gone.ID); n != tt.wantGone {
			t.Errorf("%s of the deleted tenant: %d rows, want %d", tt.table, n, tt.wantGone)
		}
		if n := count(t, s, q, kept.ID); n != tt.wantKept {
			t.Errorf("%s of the other tenant: %d rows, want %d", tt.table, n, tt.wantKept)
		}
	}
	if _, err := s.Identity(ctx, keptID.Subject); err != nil {
		t.Errorf("the other tenant's identity: %v", err)
	}
	if _, err := s.OpenPortalLink(ctx, "link-gone.example", base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("portal link of a deleted tenant opens: %v", err)
	}
}

func testDomainCRUD(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s)
	tests := []struct {
		name     string
		domain   tenants.Domain
		wantList []string
	}{
		{"verified", tenants.Domain{Name: "verified.example", TenantID: tn.ID, Verified: true, CreatedAt: base}, []string{"verified.example"}},
		{"pending", tenants.Domain{Name: "pending.example", TenantID: tn.ID, Verified: false, CreatedAt: base.Add(time.Second)}, []string{"pending.example", "verified.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, s.AddDomain(ctx, tt.domain), "add domain")
			got, err := s.Domain(ctx, tt.domain.Name)
			check(t, err, "get domain")
			equal(t, "domain", got, tt.domain)
			stored, err := s.Tenant(ctx, tn.ID)
			check(t, err, "get tenant")
			var names []string
			for _, d := range stored.Domains {
				names = append(names, d.Name)
			}
			equal(t, "tenant's domains", names, tt.wantList)
		})
	}
	check(t, s.DeleteDomain(ctx, tn.ID, "pending.example"), "delete domain")
	_, err := s.Domain(ctx, "pending.example")
	wantIs(t, err, store.ErrNotFound, "deleted domain")
	wantIs(t, s.DeleteDomain(ctx, tn.ID, "pending.example"), store.ErrNotFound, "delete again")
	// Once freed, a domain can be claimed again.
	other := createTenant(t, s)
	check(t, s.AddDomain(ctx, tenants.Domain{Name: "pending.example", TenantID: other.ID, CreatedAt: base}), "reclaim freed domain")
}

func testDomainRoute(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s, "route.example")
	check(t, s.AddDomain(ctx, tenants.Domain{Name: "pending.example", TenantID: tn.ID, Verified: false, CreatedAt: base}), "add pending")
	bare := createTenant(t, s, "bare.example")

	// Created out of id order: the route lists them oldest first.
	newer := newConnection(t, tn.ID)
	newer.CreatedAt = base.Add(2 * time.Hour)
	older := newConnection(t, tn.ID)
	older.CreatedAt = base.Add(time.Hour)
	older.Name = "Older"
	older.Preset = tenants.PresetEntra
	inactive := newConnection(t, tn.ID)
	inactive.Status = tenants.StatusInactive
	for _, c := range []tenants.Connection{newer, older, inactive} {
		check(t, s.CreateConnection(ctx, c), "create connection")
	}
	bareInactive := newConnection(t, bare.ID)
	bareInactive.Status = tenants.StatusInactive
	check(t, s.CreateConnection(ctx, bareInactive), "create inactive connection")
	other := createTenant(t, s, "other.example")
	createConnection(t, s, other.ID) // another tenant's connection is never routed to tn

	ref := func(c tenants.Connection) tenants.ConnectionRef {
		return tenants.ConnectionRef{ID: c.ID, TenantID: c.TenantID, Name: c.Name, Preset: c.Preset, Status: c.Status, UpdatedAt: c.UpdatedAt}
	}
	tnNoDomains := tn
	tnNoDomains.Domains = nil
	bareNoDomains := bare
	bareNoDomains.Domains = nil
	tests := []struct {
		domain string
		want   tenants.Route
	}{
		{"route.example", tenants.Route{Tenant: tnNoDomains, Domain: tn.Domains[0], Connections: []tenants.ConnectionRef{ref(older), ref(newer)}}},
		{"pending.example", tenants.Route{Tenant: tnNoDomains, Domain: tenants.Domain{Name: "pending.example", TenantID: tn.ID, CreatedAt: base}, Connections: []tenants.ConnectionRef{ref(older), ref(newer)}}},
		{"bare.example", tenants.Route{Tenant: bareNoDomains, Domain: bare.Domains[0]}},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			got, err := s.RouteDomain(ctx, tt.domain)
			check(t, err, "route")
			equal(t, "route", got, tt.want)
		})
	}
	_, err := s.RouteDomain(ctx, "unknown.example")
	wantIs(t, err, store.ErrNotFound, "route an unknown domain")

	// RouteTenant: the same tenant and connections, no domain.
	for _, tt := range []struct {
		id   string
		want tenants.Route
	}{
		{tn.ID, tenants.Route{Tenant: tnNoDomains, Connections: []tenants.ConnectionRef{ref(older), ref(newer)}}},
		{bare.ID, tenants.Route{Tenant: bareNoDomains}},
	} {
		got, err := s.RouteTenant(ctx, tt.id)
		check(t, err, "route tenant")
		equal(t, "route tenant", got, tt.want)
	}
	_, err = s.RouteTenant(ctx, "ten_unknown")
	wantIs(t, err, store.ErrNotFound, "route an unknown tenant")
}
