package storetest

import (
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/tenants"
)

func testReplayAcceptOnce(t *testing.T, s *store.Store) {
	ctx := t.Context()
	future := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Minute)
	steps := []struct {
		name        string
		conn, id    string
		expires     time.Time
		wantReplay  bool
		wantExpires time.Time // stored expiry afterwards
	}{
		{"first use", "conn_a", "_id1", future, false, future},
		{"replay", "conn_a", "_id1", future, true, future},
		{"replay with a later expiry", "conn_a", "_id1", future.Add(time.Hour), true, future},
		{"same id at another connection", "conn_b", "_id1", future, false, future},
		{"expired row", "conn_a", "_id2", past, false, past},
		{"expired row still present is taken over", "conn_a", "_id2", future, false, future},
		{"and is then a replay", "conn_a", "_id2", future, true, future},
	}
	for _, st := range steps {
		err := s.AcceptOnce(ctx, st.conn, st.id, st.expires)
		if st.wantReplay {
			wantIs(t, err, store.ErrAlreadyExists, st.name)
		} else {
			check(t, err, st.name)
		}
		var got time.Time
		check(t, s.DB().QueryRowContext(ctx, `SELECT expires_at FROM saml_assertions WHERE connection_id = $1 AND assertion_id = $2`,
			st.conn, st.id).Scan(scanAnyTime{&got}), "read expiry")
		if !got.Equal(st.wantExpires.Truncate(time.Microsecond)) {
			t.Fatalf("%s: stored expiry %v, want %v", st.name, got, st.wantExpires)
		}
	}
}

func testLeaseAcquireRelease(t *testing.T, s *store.Store) {
	ctx := t.Context()
	steps := []struct {
		name   string
		holder string
		at     time.Duration // after base
		want   bool
	}{
		{"free lease", "a", 0, true},
		{"held by another", "b", 30 * time.Second, false},
		{"renewed by its holder", "a", 30 * time.Second, true}, // now until 90s
		{"still held after the first term", "b", 61 * time.Second, false},
		{"free at its expiry", "b", 90 * time.Second, true},
		{"lost by the former holder", "a", 100 * time.Second, false},
	}
	for _, st := range steps {
		got, err := s.AcquireLease(ctx, "refresh", st.holder, time.Minute, base.Add(st.at))
		check(t, err, st.name)
		if got != st.want {
			t.Fatalf("%s: acquired %v, want %v", st.name, got, st.want)
		}
	}
	wantIs(t, s.ReleaseLease(ctx, "refresh", "a"), store.ErrNotFound, "release a lease taken over")
	check(t, s.ReleaseLease(ctx, "refresh", "b"), "release")
	got, err := s.AcquireLease(ctx, "refresh", "a", time.Minute, base.Add(100*time.Second))
	check(t, err, "acquire released lease")
	if !got {
		t.Fatal("a released lease could not be acquired")
	}
	if _, err := s.AcquireLease(ctx, "refresh", "a", 0, base); err == nil {
		t.Fatal("a lease with no ttl was accepted")
	}
}

func testPortalLinks(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s)
	expires := base.Add(15 * time.Minute)
	check(t, s.CreatePortalLink(ctx, "h-link", tn.ID, base, expires), "create link")
	check(t, s.CreatePortalLink(ctx, "h-expiring", tn.ID, base, expires), "create link")
	wantIs(t, s.CreatePortalLink(ctx, "h-link", tn.ID, base, expires), store.ErrAlreadyExists, "create twice")
	wantIs(t, s.CreatePortalLink(ctx, "h-orphan", "ten_missing", base, expires), store.ErrNotFound, "link for a missing tenant")

	steps := []struct {
		name  string
		hash  string
		now   time.Time
		found bool
	}{
		{"open", "h-link", base.Add(time.Minute), true},
		{"open again", "h-link", base.Add(time.Minute), false},
		{"open at expiry", "h-expiring", expires, false},
		{"unknown", "h-unknown", base, false},
	}
	for _, st := range steps {
		got, err := s.OpenPortalLink(ctx, st.hash, st.now)
		if !st.found {
			wantIs(t, err, store.ErrNotFound, st.name)
			continue
		}
		check(t, err, st.name)
		equal(t, st.name, got, tn.ID)
	}
}

func testPortalSessions(t *testing.T, s *store.Store) {
	ctx := t.Context()
	tn := createTenant(t, s)
	expires := base.Add(time.Hour)
	check(t, s.CreatePortalSession(ctx, "h-session", tn.ID, base, expires), "create session")
	wantIs(t, s.CreatePortalSession(ctx, "h-session", tn.ID, base, expires), store.ErrAlreadyExists, "create twice")
	wantIs(t, s.CreatePortalSession(ctx, "h-orphan", "ten_missing", base, expires), store.ErrNotFound, "session for a missing tenant")

	got, err := s.PortalSession(ctx, "h-session", base.Add(time.Minute))
	check(t, err, "session")
	equal(t, "tenant", got, tn.ID)
	_, err = s.PortalSession(ctx, "h-session", expires)
	wantIs(t, err, store.ErrNotFound, "session at expiry")
	_, err = s.PortalSession(ctx, "h-unknown", base)
	wantIs(t, err, store.ErrNotFound, "unknown session")

	check(t, s.DeletePortalSession(ctx, "h-session"), "delete session")
	_, err = s.PortalSession(ctx, "h-session", base)
	wantIs(t, err, store.ErrNotFound, "deleted session")
	wantIs(t, s.DeletePortalSession(ctx, "h-session"), store.ErrNotFound, "delete again")
}

// testGCDeleteExpired runs garbage collection at an injected now: rows
// expiring at or before it go, the others stay and keep working.
func testGCDeleteExpired(t *testing.T, s *store.Store) {
	ctx := t.Context()
	now := base // years ahead of the wall clock, so AcceptOnce takes nothing over by itself
	tn := createTenant(t, s)
	for _, a := range []struct {
		id      string
		expires time.Time
	}{{"_dead", now.Add(-time.Second)}, {"_boundary", now}, {"_live", now.Add(time.Second)}} {
		check(t, s.AcceptOnce(ctx, "conn_a", a.id, a.expires), "accept "+a.id)
	}
	for _, l := range []struct {
		name string
		at   time.Time
	}{{"dead-lease", now.Add(-2 * time.Minute)}, {"live-lease", now}} {
		ok, err := s.AcquireLease(ctx, l.name, "a", time.Minute, l.at)
		if err != nil || !ok {
			t.Fatalf("acquire %s: %v %v", l.name, ok, err)
		}
	}
	check(t, s.CreatePortalLink(ctx, "dead-link", tn.ID, now.Add(-time.Hour), now.Add(-time.Second)), "link")
	check(t, s.CreatePortalLink(ctx, "live-link", tn.ID, now, now.Add(time.Hour)), "link")
	check(t, s.CreatePortalSession(ctx, "dead-session", tn.ID, now.Add(-time.Hour), now.Add(-time.Second)), "session")
	check(t, s.CreatePortalSession(ctx, "live-session", tn.ID, now, now.Add(time.Hour)), "session")

	n, err := s.DeleteExpired(ctx, now)
	check(t, err, "delete expired")
	equal(t, "rows deleted", n, int64(5))
	n, err = s.DeleteExpired(ctx, now)
	check(t, err, "delete expired again")
	equal(t, "rows deleted again", n, int64(0))

	wantIs(t, s.AcceptOnce(ctx, "conn_a", "_live", now.Add(time.Second)), store.ErrAlreadyExists, "live assertion after GC")
	check(t, s.AcceptOnce(ctx, "conn_a", "_dead", now.Add(time.Hour)), "collected assertion id")
	if ok, err := s.AcquireLease(ctx, "live-lease", "b", time.Minute, now); err != nil || ok {
		t.Fatalf("live lease after GC: acquired by another %v, %v", ok, err)
	}
	if _, err := s.OpenPortalLink(ctx, "live-link", now); err != nil {
		t.Fatalf("live link after GC: %v", err)
	}
	if _, err := s.PortalSession(ctx, "live-session", now); err != nil {
		t.Fatalf("live session after GC: %v", err)
	}
	equal(t, "dead links left", count(t, s, `SELECT count(*) FROM portal_links WHERE token_hash = 'dead-link'`), 0)
}

// testTimeZones stores times given in other zones, with nanoseconds: they
// come back as the same instant, to the microsecond, on both backends.
func testTimeZones(t *testing.T, s *store.Store) {
	ctx := t.Context()
	zones := []*time.Location{
		time.FixedZone("IST", 5*3600+1800),
		time.FixedZone("PDT", -7*3600),
		time.FixedZone("Chatham", 12*3600+2700),
	}
	for _, zone := range zones {
		t.Run(zone.String(), func(t *testing.T) {
			at := time.Date(2031, 7, 8, 23, 59, 58, 123456789, zone)
			want := at.Truncate(time.Microsecond)
			same := func(what string, got time.Time) {
				t.Helper()
				if !got.Equal(want) {
					t.Fatalf("%s: got %v, want %v (%v)", what, got, want, got.Sub(want))
				}
			}
			tn := newTenant(t, "tz-"+zone.String()+".example")
			tn.CreatedAt, tn.Domains[0].CreatedAt = at, at
			check(t, s.CreateTenant(ctx, tn), "create tenant")
			gotT, err := s.Tenant(ctx, tn.ID)
			check(t, err, "get tenant")
			same("tenant created_at", gotT.CreatedAt)
			same("domain created_at", gotT.Domains[0].CreatedAt)

			c := newConnection(t, tn.ID)
			c.Metadata.RefreshedAt = at
			check(t, s.CreateConnection(ctx, c), "create connection")
			gotC, err := s.Connection(ctx, c.ID)
			check(t, err, "get connection")
			same("metadata refreshed_at", gotC.Metadata.RefreshedAt)

			cl := newClient(t)
			cl.PreviousSecretExpiresAt = at
			check(t, s.CreateClient(ctx, cl), "create client")
			gotCl, err := s.Client(ctx, cl.ID)
			check(t, err, "get client")
			same("client previous_secret_expires_at", gotCl.PreviousSecretExpiresAt)

			id := newIdentity(t, c, "tz")
			id.LastLoginAt = at
			_, err = s.UpsertIdentity(ctx, id)
			check(t, err, "upsert identity")
			gotI, err := s.Identity(ctx, id.Subject)
			check(t, err, "get identity")
			same("identity last_login_at", gotI.LastLoginAt)

			check(t, s.AppendAudit(ctx, auditAt(tn.ID, at)), "append audit")
			items, _, err := s.ListAudit(ctx, auditWindow(tn.ID, want, want.Add(time.Microsecond)))
			check(t, err, "list audit")
			if len(items) != 1 {
				t.Fatalf("audit window of one microsecond in UTC: %d events, want 1", len(items))
			}
			same("audit time", items[0].Time)
			items, _, err = s.ListAudit(ctx, auditWindow(tn.ID, want.Add(time.Microsecond).In(zones[0]), time.Time{}))
			check(t, err, "list audit")
			if len(items) != 0 {
				t.Fatalf("audit since a microsecond later: %d events, want 0", len(items))
			}
		})
	}
}

func testIsolationCrossTenant(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := createTenant(t, s, "a.example")
	b := createTenant(t, s, "b.example")
	ca := createConnection(t, s, a.ID)
	cb := createConnection(t, s, b.ID)
	ia := upsertIdentity(t, s, ca, "alice")
	ib := upsertIdentity(t, s, cb, "bob")

	wantIs(t, s.DeleteDomain(ctx, b.ID, "a.example"), store.ErrNotFound, "B deletes A's domain")
	d, err := s.Domain(ctx, "a.example")
	check(t, err, "A's domain")
	equal(t, "owner of a.example", d.TenantID, a.ID)

	conns, _, err := s.ListConnections(ctx, b.ID, tenants.Page{})
	check(t, err, "list B's connections")
	equal(t, "B's connections", len(conns), 1)
	equal(t, "B's connection", conns[0].ID, cb.ID)

	ids, _, err := s.ListIdentities(ctx, b.ID, tenants.Page{})
	check(t, err, "list B's identities")
	equal(t, "B's identities", len(ids), 1)
	equal(t, "B's identity", ids[0].Subject, ib.Subject)

	// An identity claimed for B through A's connection is refused by the
	// schema, not just by the caller.
	forged := newIdentity(t, ca, "mallory")
	forged.TenantID = b.ID
	_, err = s.UpsertIdentity(ctx, forged)
	wantIs(t, err, store.ErrNotFound, "identity of B through A's connection")
	// The same IdP subject as A's user, for B's connection, is B's own user.
	mirror, err := s.UpsertIdentity(ctx, newIdentity(t, cb, "alice"))
	check(t, err, "B's alice")
	if mirror.Subject == ia.Subject || mirror.TenantID != b.ID {
		t.Fatalf("B's alice merged with A's: %+v", mirror)
	}

	route, err := s.RouteDomain(ctx, "a.example")
	check(t, err, "route a.example")
	if len(route.Connections) != 1 || route.Connections[0].ID != ca.ID || route.Tenant.ID != a.ID {
		t.Fatalf("route of a.example: %+v", route)
	}

	check(t, s.CreatePortalLink(ctx, "a-link", a.ID, base, base.Add(time.Hour)), "A's link")
	got, err := s.OpenPortalLink(ctx, "a-link", base)
	check(t, err, "open A's link")
	equal(t, "tenant of A's link", got, a.ID)
	check(t, s.DeleteTenant(ctx, b.ID), "delete B")
	if _, err := s.Identity(ctx, ia.Subject); err != nil {
		t.Fatalf("A's identity after B was deleted: %v", err)
	}
}

func auditAt(tenantID string, at time.Time) audit.Event {
	return audit.Event{Time: at, Type: audit.TenantCreated, TenantID: tenantID}
}

func auditWindow(tenantID string, since, until time.Time) audit.Filter {
	return audit.Filter{TenantID: tenantID, Since: since, Until: until}
}
