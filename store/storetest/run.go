package storetest

import (
	"crypto/rand"
	"errors"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/tenants"
)

// subtest is one behaviour of the suite. Most need only a fresh store;
// those that open several handles on one database, or reopen it with other
// keys, take the backend.
type subtest struct {
	name    string
	store   func(t *testing.T, s *store.Store)
	backend func(t *testing.T, b Backend)
}

// Run runs the conformance suite against b: one named subtest per
// behaviour (the shape of Dex's storage/conformance), each on a fresh,
// empty, migrated database. Subtests run in parallel; they share nothing.
func Run(t *testing.T, b Backend) {
	tests := []subtest{
		{name: "Tenant/CreateGet", store: testTenantCreateGet},
		{name: "Tenant/NotFound", store: testTenantNotFound},
		{name: "Tenant/DomainTaken", store: testTenantDomainTaken},
		{name: "Tenant/Update", store: testTenantUpdate},
		{name: "Tenant/UpdateWithinUpdate", store: testTenantUpdateWithinUpdate},
		{name: "Tenant/List", store: testTenantList},
		{name: "Tenant/DeleteCascades", store: testTenantDeleteCascades},
		{name: "Domain/CRUD", store: testDomainCRUD},
		{name: "Domain/Route", store: testDomainRoute},
		{name: "Connection/CRUD", store: testConnectionCRUD},
		{name: "Connection/List", store: testConnectionList},
		{name: "Connection/DueForRefresh", store: testConnectionDueForRefresh},
		{name: "Connection/SealedAtRest", store: testConnectionSealedAtRest},
		{name: "Client/CRUD", store: testClientCRUD},
		{name: "Client/List", store: testClientList},
		{name: "Identity/Upsert", store: testIdentityUpsert},
		{name: "Identity/List", store: testIdentityList},
		{name: "Identity/SetStatus", store: testIdentitySetStatus},
		{name: "Audit/AppendList", store: testAuditAppendList},
		{name: "Audit/Filters", store: testAuditFilters},
		{name: "Audit/Prune", store: testAuditPrune},
		{name: "Replay/AcceptOnce", store: testReplayAcceptOnce},
		{name: "Lease/AcquireRelease", store: testLeaseAcquireRelease},
		{name: "Portal/Links", store: testPortalLinks},
		{name: "Portal/Sessions", store: testPortalSessions},
		{name: "GC/DeleteExpired", store: testGCDeleteExpired},
		{name: "TimeZones", store: testTimeZones},
		{name: "Isolation/CrossTenant", store: testIsolationCrossTenant},
		{name: "Seal/ResealAll", backend: testSealResealAll},
		{name: "Concurrency/DomainClaim", backend: testConcurrentDomainClaim},
		{name: "Concurrency/AcceptOnce", backend: testConcurrentAcceptOnce},
		{name: "Concurrency/OpenPortalLink", backend: testConcurrentOpenPortalLink},
		{name: "Concurrency/UpdateTenant", backend: testConcurrentUpdateTenant},
		{name: "Concurrency/AcquireLease", backend: testConcurrentAcquireLease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.backend != nil {
				tt.backend(t, b)
				return
			}
			tt.store(t, b.Open(t))
		})
	}
}

// base is the suite's reference time: microsecond precision (what both
// backends keep), UTC, no monotonic reading, so that reflect.DeepEqual
// compares stored values with what was written.
var base = time.Date(2031, 3, 4, 5, 6, 7, 123456000, time.UTC)

func check(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantIs fails unless errors.Is(err, target).
func wantIs(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %q", what, err, target)
	}
}

func equal[T any](t testing.TB, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func newID(t testing.TB, prefix string) string {
	t.Helper()
	id, err := tenants.NewID(prefix, time.Now(), rand.Reader)
	check(t, err, "new id")
	return id
}

// newTenant builds a tenant with verified domains, sorted as the store
// returns them.
func newTenant(t testing.TB, domains ...string) tenants.Tenant {
	t.Helper()
	id := newID(t, tenants.PrefixTenant)
	tn := tenants.Tenant{ID: id, Name: "Tenant " + id, CreatedAt: base, UpdatedAt: base}
	for _, d := range domains {
		tn.Domains = append(tn.Domains, tenants.Domain{Name: d, TenantID: id, Verified: true, CreatedAt: base})
	}
	sort.Slice(tn.Domains, func(i, j int) bool { return tn.Domains[i].Name < tn.Domains[j].Name })
	return tn
}

func createTenant(t testing.TB, s *store.Store, domains ...string) tenants.Tenant {
	t.Helper()
	tn := newTenant(t, domains...)
	check(t, s.CreateTenant(t.Context(), tn), "create tenant "+tn.ID)
	return tn
}

func spKeyPEM(id string) string {
	return "-----BEGIN PRIVATE KEY-----\nplaintext-sp-key-of-" + id + "\n-----END PRIVATE KEY-----\n"
}

func newConnection(t testing.TB, tenantID string) tenants.Connection {
	t.Helper()
	id := newID(t, tenants.PrefixConnection)
	return tenants.Connection{
		ID: id, TenantID: tenantID, Name: "Okta " + id, Status: tenants.StatusActive, Preset: tenants.PresetOkta,
		IdP: tenants.IdPConfig{
			EntityID:       "http://www.okta.com/" + id,
			SSORedirectURL: "https://acme.okta.com/app/sso/saml",
			SSOPostURL:     "https://acme.okta.com/app/sso/saml/post",
			Certificates:   []string{"-----BEGIN CERTIFICATE-----\nMIIone\n-----END CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\nMIItwo\n-----END CERTIFICATE-----\n"},
			MetadataXML:    `<EntityDescriptor entityID="http://www.okta.com/` + id + `"/>`,
		},
		AttributeMapping: tenants.AttributeMapping{Email: "mail", Groups: "memberOf"},
		Policy:           tenants.ConnectionPolicy{SignAuthnRequests: true, NameIDFormat: tenants.NameIDFormats[0]},
		SPKey:            tenants.Secret(spKeyPEM(id)),
		SPCertificate:    "-----BEGIN CERTIFICATE-----\nMIIsp\n-----END CERTIFICATE-----\n",
		Metadata: tenants.MetadataSource{
			URL: "https://acme.okta.com/app/metadata", RefreshedAt: base, NextRefreshAt: base.Add(time.Hour),
		},
		CreatedAt: base, UpdatedAt: base,
	}
}

func createConnection(t testing.TB, s *store.Store, tenantID string) tenants.Connection {
	t.Helper()
	c := newConnection(t, tenantID)
	check(t, s.CreateConnection(t.Context(), c), "create connection "+c.ID)
	return c
}

func newClient(t testing.TB) tenants.Client {
	t.Helper()
	return tenants.Client{
		ID: newID(t, tenants.PrefixClient), Name: "App", SecretHash: "sha256:current",
		PreviousSecretHash: "sha256:previous", PreviousSecretExpiresAt: base.Add(24 * time.Hour),
		RedirectURIs:           []string{"https://app.example/callback", "http://127.0.0.1:8080/cb"},
		PostLogoutRedirectURIs: []string{"https://app.example/bye"},
		InitiateLoginURI:       "https://app.example/login",
		AllowedTenants:         []string{"ten_a", "ten_b"},
		AccessTokenTTL:         15 * time.Minute, IDTokenTTL: 5 * time.Minute, RefreshTokenTTL: 30 * 24 * time.Hour,
		CreatedAt: base, UpdatedAt: base,
	}
}

func createClient(t testing.TB, s *store.Store) tenants.Client {
	t.Helper()
	c := newClient(t)
	check(t, s.CreateClient(t.Context(), c), "create client "+c.ID)
	return c
}

func newIdentity(t testing.TB, c tenants.Connection, idpSubject string) tenants.Identity {
	t.Helper()
	return tenants.Identity{
		Subject: newID(t, tenants.PrefixIdentity), TenantID: c.TenantID, ConnectionID: c.ID, IdPSubject: idpSubject,
		Email: idpSubject + "@acme.example", EmailVerified: true, Status: tenants.IdentityActive,
		Profile: tenants.Profile{
			Subject: idpSubject, NameID: idpSubject, NameIDFormat: tenants.NameIDFormats[0],
			Email: idpSubject + "@acme.example", GivenName: "Ada", FamilyName: "Lovelace", Name: "Ada Lovelace",
			Groups:     []string{"admins", "engineering"},
			Attributes: map[string][]string{"mail": {idpSubject + "@acme.example"}, "memberOf": {"admins", "engineering"}},
			Issuer:     c.IdP.EntityID, AssertionID: "_a" + idpSubject, SessionIndex: "_s1",
			AuthnInstant: base, AuthnContext: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
		},
		CreatedAt: base, UpdatedAt: base, LastLoginAt: base,
	}
}

func upsertIdentity(t testing.TB, s *store.Store, c tenants.Connection, idpSubject string) tenants.Identity {
	t.Helper()
	id, err := s.UpsertIdentity(t.Context(), newIdentity(t, c, idpSubject))
	check(t, err, "upsert identity "+idpSubject)
	return id
}

// dbTime encodes a time for raw SQL the way the store does.
func dbTime(s *store.Store, t time.Time) any {
	if s.Dialect() == "sqlite" {
		return t.UnixMicro()
	}
	return t
}

// count runs a raw SELECT count(*).
func count(t testing.TB, s *store.Store, query string, args ...any) int {
	t.Helper()
	var n int
	check(t, s.DB().QueryRowContext(t.Context(), query, args...).Scan(&n), query)
	return n
}

// insertGrant writes a token grant for an identity straight into the OIDC
// grants table (its store methods belong to the OIDC side), for the tests
// of deactivation and cascades.
func insertGrant(t testing.TB, s *store.Store, clientID string, id tenants.Identity) string {
	t.Helper()
	gid := newID(t, "grant_")
	_, err := s.DB().ExecContext(t.Context(), `INSERT INTO grants (id, login_id, client_id, subject, tenant_id,
		connection_id, idp, scopes, auth_time, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'okta', '["openid"]', $7, $7, $8)`,
		gid, "login_"+gid, clientID, id.Subject, id.TenantID, id.ConnectionID, dbTime(s, base), dbTime(s, base.Add(time.Hour)))
	check(t, err, "insert grant")
	return gid
}

// walk pages through a list with the given limit and returns every id in
// order, failing on a page larger than the limit or a cursor on the last
// page.
func walk(t testing.TB, limit int, list func(after string) (ids []string, next string, err error)) []string {
	t.Helper()
	var all []string
	after := ""
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("pagination does not end")
		}
		ids, next, err := list(after)
		check(t, err, "list page after "+after)
		if len(ids) > limit {
			t.Fatalf("page after %q has %d items, limit %d", after, len(ids), limit)
		}
		all = append(all, ids...)
		if next == "" {
			return all
		}
		if len(ids) == 0 || next != ids[len(ids)-1] {
			t.Fatalf("page after %q: next %q is not the last item of %v", after, next, ids)
		}
		after = next
	}
}

// race starts n functions at once (released together by a closed channel,
// to maximise contention) and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// twoHandles opens two independent stores on one fresh database, as two
// replicas would.
func twoHandles(t testing.TB, b Backend) [2]*store.Store {
	t.Helper()
	u := b.URL(t)
	return [2]*store.Store{OpenURL(t, u), OpenURL(t, u)}
}
