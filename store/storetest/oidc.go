package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/tenants"
)

// RunOIDC runs the conformance suite of oidcprovider.Store against b: one
// named subtest per behaviour, each on a fresh, empty, migrated database.
// The concurrency subtests race two store handles on one database (two
// replicas) and run on both backends.
func RunOIDC(t *testing.T, b Backend) {
	tests := []struct {
		name    string
		store   func(t *testing.T, s *store.Store)
		backend func(t *testing.T, b Backend)
	}{
		{name: "Login/CreateGet", store: testOIDCLoginCreateGet},
		{name: "Login/Route", store: testOIDCLoginRoute},
		{name: "Login/ConsumeSAMLRequest", store: testOIDCConsumeSAMLRequest},
		{name: "Login/Complete", store: testOIDCCompleteLogin},
		{name: "Login/Fail", store: testOIDCFailLogin},
		{name: "Code/SaveRedeem", store: testOIDCCodeSaveRedeem},
		{name: "Code/Replay", store: testOIDCCodeReplay},
		{name: "Code/RefusedNotSpent", store: testOIDCCodeRefusedNotSpent},
		{name: "Grant/Online", store: testOIDCGrantOnline},
		{name: "Refresh/Rotate", store: testOIDCRefreshRotate},
		{name: "Revoke", store: testOIDCRevoke},
		{name: "SigningKeys", store: testOIDCSigningKeys},
		{name: "Secret", store: testOIDCSecret},
		{name: "GC/DeleteExpiredOIDC", store: testOIDCGC},
		{name: "Cascade/DeleteClient", store: testOIDCCascadeClient},
		{name: "Concurrency/RedeemCode", backend: testOIDCConcurrentRedeemCode},
		{name: "Concurrency/ConsumeSAMLRequest", backend: testOIDCConcurrentConsumeSAML},
		{name: "Concurrency/RotateRefreshToken", backend: testOIDCConcurrentRotate},
		{name: "Concurrency/SigningKeyGeneration", backend: testOIDCConcurrentSigningKey},
		{name: "Concurrency/Secret", backend: testOIDCConcurrentSecret},
	}
	for _, tt := range tests {
		t.Run("OIDC/"+tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.backend != nil {
				tt.backend(t, b)
				return
			}
			tt.store(t, b.Open(t))
		})
	}
}

// oidcBase is the suite's reference time, microsecond precision and UTC so
// that stored values compare equal to what was written.
var oidcBase = time.Date(2032, 1, 2, 3, 4, 5, 678901000, time.UTC)

func oidcCheck(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func oidcWantIs(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %q", what, err, target)
	}
}

func oidcEqual[T any](t testing.TB, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func oidcRandom(t testing.TB, prefix string) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// oidcWorld is a tenant with a connection, a client and an identity, made
// through the store's tenants.Store methods.
type oidcWorld struct {
	tenant tenants.Tenant
	conn   tenants.Connection
	client tenants.Client
	ident  tenants.Identity
}

func newOIDCWorld(t testing.TB, s *store.Store) oidcWorld {
	t.Helper()
	ctx := context.Background()
	var w oidcWorld
	w.tenant = tenants.Tenant{ID: oidcRandom(t, tenants.PrefixTenant), Name: "Acme", CreatedAt: oidcBase, UpdatedAt: oidcBase}
	oidcCheck(t, s.CreateTenant(ctx, w.tenant), "create tenant")
	w.conn = tenants.Connection{
		ID: oidcRandom(t, tenants.PrefixConnection), TenantID: w.tenant.ID, Name: "Okta", Status: tenants.StatusActive,
		Preset: tenants.PresetOkta,
		IdP: tenants.IdPConfig{EntityID: "http://idp.example/" + w.tenant.ID, SSORedirectURL: "https://idp.example/sso",
			Certificates: []string{"-----BEGIN CERTIFICATE-----\nMIIx\n-----END CERTIFICATE-----\n"}},
		SPKey: "sp-key", SPCertificate: "sp-cert", CreatedAt: oidcBase, UpdatedAt: oidcBase,
	}
	oidcCheck(t, s.CreateConnection(ctx, w.conn), "create connection")
	w.client = tenants.Client{
		ID: oidcRandom(t, tenants.PrefixClient), Name: "App", SecretHash: "sha256:x",
		RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: oidcBase, UpdatedAt: oidcBase,
	}
	oidcCheck(t, s.CreateClient(ctx, w.client), "create client")
	id, err := s.UpsertIdentity(ctx, tenants.Identity{
		Subject: oidcRandom(t, tenants.PrefixIdentity), TenantID: w.tenant.ID, ConnectionID: w.conn.ID, IdPSubject: "ada",
		Email: "ada@acme.example", EmailVerified: true, Status: tenants.IdentityActive,
		Profile: tenants.Profile{Subject: "ada", Name: "Ada Lovelace", Groups: []string{"eng"},
			Attributes: map[string][]string{"mail": {"ada@acme.example"}}},
		CreatedAt: oidcBase, UpdatedAt: oidcBase, LastLoginAt: oidcBase,
	})
	oidcCheck(t, err, "upsert identity")
	w.ident = id
	return w
}

func (w oidcWorld) login(t testing.TB) oidcprovider.LoginRecord {
	t.Helper()
	maxAge := int64(0)
	return oidcprovider.LoginRecord{
		ID: oidcRandom(t, "lgn_"), ClientID: w.client.ID, ClientName: w.client.Name,
		Request: oidcprovider.AuthParams{
			Scopes: []string{"openid", "email", "offline_access"}, ResponseType: "code", RedirectURI: "https://app.example/cb",
			State: "st", Nonce: "n", Prompt: []string{"login"}, MaxAgeSeconds: &maxAge, UILocales: []string{"de-CH"},
			LoginHint: "ada@acme.example", DomainHint: "acme.example", ACRValues: []string{"x"},
		},
		CodeChallenge: strings.Repeat("c", 43), BrowserHash: "browser",
		CreatedAt: oidcBase, ExpiresAt: oidcBase.Add(30 * time.Minute),
	}
}

func (w oidcWorld) route(samlID string) oidcprovider.LoginRoute {
	return oidcprovider.LoginRoute{TenantID: w.tenant.ID, ConnectionID: w.conn.ID, SAMLRequestID: samlID,
		SAMLRequestExpiresAt: oidcBase.Add(10 * time.Minute)}
}

func (w oidcWorld) completion() oidcprovider.LoginCompletion {
	return oidcprovider.LoginCompletion{
		TenantID: w.tenant.ID, ConnectionID: w.conn.ID, Subject: w.ident.Subject, AuthTime: oidcBase.Add(time.Minute),
		AuthTimeLatest: oidcBase.Add(4 * time.Minute),
		Claims: oidcprovider.Claims{Subject: w.ident.Subject, TenantID: w.tenant.ID, ConnectionID: w.conn.ID, IdP: "okta",
			Email: "ada@acme.example", EmailVerified: true, Name: "Ada Lovelace", Groups: []string{"eng"}},
	}
}

// doneLogin creates a login and drives it to done with a code saved.
func (w oidcWorld) doneLogin(t testing.TB, s *store.Store, codeHash string) oidcprovider.LoginRecord {
	t.Helper()
	ctx := context.Background()
	l := w.login(t)
	now := oidcBase.Add(time.Minute)
	oidcCheck(t, s.CreateLogin(ctx, l), "create login")
	samlID := oidcRandom(t, "id-")
	oidcCheck(t, s.RouteLogin(ctx, l.ID, w.route(samlID), now), "route")
	_, err := s.ConsumeSAMLRequest(ctx, w.conn.ID, samlID, now)
	oidcCheck(t, err, "consume SAML request")
	oidcCheck(t, s.CompleteLogin(ctx, l.ID, w.completion(), now), "complete")
	l, err = s.SaveCode(ctx, l.ID, codeHash, "browser", now.Add(time.Minute), now)
	oidcCheck(t, err, "save code")
	return l
}

// redemption builds a token request for l's code.
func (w oidcWorld) redemption(t testing.TB, l oidcprovider.LoginRecord, codeHash string) oidcprovider.CodeRedemption {
	t.Helper()
	now := oidcBase.Add(2 * time.Minute)
	return oidcprovider.CodeRedemption{
		CodeHash: codeHash, ClientID: w.client.ID, CodeChallenge: l.CodeChallenge, RedirectURI: l.Request.RedirectURI,
		GrantID: oidcRandom(t, "grt_"), AccessTokenID: oidcRandom(t, "at_"),
		AccessExpiresAt: now.Add(time.Hour), OfflineAccessExpiresAt: now.Add(45 * time.Minute),
		RefreshTokenID: oidcRandom(t, "rt_"), RefreshTokenHash: oidcRandom(t, "h"), RefreshExpiresAt: now.Add(24 * time.Hour),
	}
}

// redeemed drives a new login to a redeemed code and returns its grant.
func (w oidcWorld) redeemed(t testing.TB, s *store.Store) (oidcprovider.Grant, oidcprovider.CodeRedemption) {
	t.Helper()
	code := oidcRandom(t, "code")
	l := w.doneLogin(t, s, code)
	r := w.redemption(t, l, code)
	_, g, err := s.RedeemCode(context.Background(), r, oidcBase.Add(90*time.Second))
	oidcCheck(t, err, "redeem")
	return g, r
}

func testOIDCLoginCreateGet(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	l := w.login(t)
	l.HintTenantID, l.HintConnectionID = w.tenant.ID, w.conn.ID
	oidcCheck(t, s.CreateLogin(ctx, l), "create")
	got, err := s.Login(ctx, l.ID)
	oidcCheck(t, err, "get")
	oidcEqual(t, "login", got, l)
	oidcWantIs(t, s.CreateLogin(ctx, l), tenants.ErrAlreadyExists, "create twice")
	_, err = s.Login(ctx, "lgn_missing")
	oidcWantIs(t, err, tenants.ErrNotFound, "missing login")
	bad := w.login(t)
	bad.ClientID = "cli_missing"
	if err := s.CreateLogin(ctx, bad); err == nil {
		t.Fatal("login of a missing client was created")
	}
}

func testOIDCLoginRoute(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	other := newOIDCWorld(t, s)
	now := oidcBase.Add(time.Minute)

	l := w.login(t)
	oidcCheck(t, s.CreateLogin(ctx, l), "create")
	oidcCheck(t, s.RouteLogin(ctx, l.ID, w.route("id-1"), now), "route")
	// Re-routing before the IdP answered replaces the request.
	oidcCheck(t, s.RouteLogin(ctx, l.ID, w.route("id-2"), now), "re-route")
	got, err := s.Login(ctx, l.ID)
	oidcCheck(t, err, "get")
	oidcEqual(t, "route", []any{got.TenantID, got.ConnectionID, got.SAMLRequestID, got.SAMLRequestExpiresAt},
		[]any{w.tenant.ID, w.conn.ID, "id-2", oidcBase.Add(10 * time.Minute)})

	refused := []struct {
		name  string
		setup func(l *oidcprovider.LoginRecord)
		route oidcprovider.LoginRoute
		now   time.Time
	}{
		{"connection of another tenant", nil, oidcprovider.LoginRoute{TenantID: w.tenant.ID, ConnectionID: other.conn.ID, SAMLRequestID: "x1", SAMLRequestExpiresAt: now.Add(time.Minute)}, now},
		{"organization hint", func(l *oidcprovider.LoginRecord) { l.HintTenantID = other.tenant.ID }, w.route("x2"), now},
		{"connection hint", func(l *oidcprovider.LoginRecord) { l.HintConnectionID = other.conn.ID }, w.route("x3"), now},
		{"expired", nil, w.route("x4"), oidcBase.Add(31 * time.Minute)},
	}
	for _, tt := range refused {
		l := w.login(t)
		if tt.setup != nil {
			tt.setup(&l)
		}
		oidcCheck(t, s.CreateLogin(ctx, l), "create")
		oidcWantIs(t, s.RouteLogin(ctx, l.ID, tt.route, tt.now), tenants.ErrConflict, tt.name)
	}
	oidcWantIs(t, s.RouteLogin(ctx, "lgn_missing", w.route("x5"), now), tenants.ErrNotFound, "missing login")

	// The client's allow-list is read when routing, not when the login began.
	l2 := w.login(t)
	oidcCheck(t, s.CreateLogin(ctx, l2), "create")
	_, err = s.UpdateClient(ctx, w.client.ID, func(c *tenants.Client) error {
		c.AllowedTenants = []string{other.tenant.ID}
		return nil
	})
	oidcCheck(t, err, "narrow allow-list")
	oidcWantIs(t, s.RouteLogin(ctx, l2.ID, w.route("x6"), now), tenants.ErrConflict, "tenant excluded by client")
	_, err = s.UpdateClient(ctx, w.client.ID, func(c *tenants.Client) error {
		c.AllowedTenants = []string{other.tenant.ID, w.tenant.ID}
		return nil
	})
	oidcCheck(t, err, "widen allow-list")
	oidcCheck(t, s.RouteLogin(ctx, l2.ID, w.route("x6"), now), "tenant in allow-list")

	// A SAML request id names one login.
	l3 := w.login(t)
	oidcCheck(t, s.CreateLogin(ctx, l3), "create")
	oidcWantIs(t, s.RouteLogin(ctx, l3.ID, w.route("x6"), now), tenants.ErrAlreadyExists, "request id of another login")

	// Once the IdP answered, the route is fixed.
	_, err = s.ConsumeSAMLRequest(ctx, w.conn.ID, "x6", now)
	oidcCheck(t, err, "consume")
	oidcWantIs(t, s.RouteLogin(ctx, l2.ID, w.route("x7"), now), tenants.ErrConflict, "re-route after the response")
}

func testOIDCConsumeSAMLRequest(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	other := newOIDCWorld(t, s)
	now := oidcBase.Add(time.Minute)
	l := w.login(t)
	oidcCheck(t, s.CreateLogin(ctx, l), "create")
	oidcCheck(t, s.RouteLogin(ctx, l.ID, w.route("id-a"), now), "route")

	_, err := s.ConsumeSAMLRequest(ctx, other.conn.ID, "id-a", now)
	oidcWantIs(t, err, tenants.ErrNotFound, "request sent to another connection's ACS")
	_, err = s.ConsumeSAMLRequest(ctx, w.conn.ID, "id-a", oidcBase.Add(11*time.Minute))
	oidcWantIs(t, err, tenants.ErrConflict, "expired request")

	peek, err := s.LoginBySAMLRequest(ctx, w.conn.ID, "id-a")
	oidcCheck(t, err, "peek")
	oidcEqual(t, "peeked login", peek.ID, l.ID)
	got, err := s.ConsumeSAMLRequest(ctx, w.conn.ID, "id-a", now)
	oidcCheck(t, err, "consume")
	oidcEqual(t, "consumed login", []any{got.ID, got.SAMLRequestUsedAt}, []any{l.ID, now})
	_, err = s.ConsumeSAMLRequest(ctx, w.conn.ID, "id-a", now)
	oidcWantIs(t, err, tenants.ErrConflict, "second consumption")
	_, err = s.LoginBySAMLRequest(ctx, w.conn.ID, "id-unknown")
	oidcWantIs(t, err, tenants.ErrNotFound, "unknown request")
}

func testOIDCCompleteLogin(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	other := newOIDCWorld(t, s)
	now := oidcBase.Add(time.Minute)

	l := w.login(t)
	oidcCheck(t, s.CreateLogin(ctx, l), "create")
	oidcWantIs(t, s.CompleteLogin(ctx, l.ID, w.completion(), now), tenants.ErrConflict, "complete before routing")
	oidcCheck(t, s.RouteLogin(ctx, l.ID, w.route("id-c"), now), "route")
	oidcWantIs(t, s.CompleteLogin(ctx, l.ID, w.completion(), now), tenants.ErrConflict, "complete before the SAML response")
	_, err := s.ConsumeSAMLRequest(ctx, w.conn.ID, "id-c", now)
	oidcCheck(t, err, "consume")
	wrong := w.completion()
	wrong.TenantID, wrong.ConnectionID = other.tenant.ID, other.conn.ID
	oidcWantIs(t, s.CompleteLogin(ctx, l.ID, wrong, now), tenants.ErrConflict, "complete for another route")
	oidcWantIs(t, s.CompleteLogin(ctx, l.ID, w.completion(), oidcBase.Add(time.Hour)), tenants.ErrConflict, "complete after expiry")

	_, err = s.UpdateClient(ctx, w.client.ID, func(c *tenants.Client) error {
		c.AllowedTenants = []string{other.tenant.ID}
		return nil
	})
	oidcCheck(t, err, "narrow allow-list")
	oidcWantIs(t, s.CompleteLogin(ctx, l.ID, w.completion(), now), tenants.ErrConflict, "tenant excluded by client")
	_, err = s.UpdateClient(ctx, w.client.ID, func(c *tenants.Client) error {
		c.AllowedTenants = nil
		return nil
	})
	oidcCheck(t, err, "clear allow-list")

	// prompt=login (max_age 0): the IdP authenticated before the login began.
	stale := w.completion()
	stale.AuthTimeLatest = oidcBase.Add(-time.Second)
	oidcWantIs(t, s.CompleteLogin(ctx, l.ID, stale, now), tenants.ErrConflict, "authentication older than the login")

	c := w.completion()
	oidcCheck(t, s.CompleteLogin(ctx, l.ID, c, now), "complete")
	got, err := s.Login(ctx, l.ID)
	oidcCheck(t, err, "get")
	oidcEqual(t, "completed", []any{got.Done, got.Subject, got.AuthTime, got.Claims}, []any{true, c.Subject, c.AuthTime, c.Claims})
	oidcWantIs(t, s.CompleteLogin(ctx, l.ID, c, now), tenants.ErrConflict, "complete twice")
	oidcWantIs(t, s.CompleteLogin(ctx, "lgn_missing", c, now), tenants.ErrNotFound, "missing login")

	// max_age > 0: compared with the authentication's age in seconds.
	for _, tt := range []struct {
		age  int64
		want error
	}{{601, tenants.ErrConflict}, {600, nil}} {
		l := w.login(t)
		maxAge := int64(600)
		l.Request.MaxAgeSeconds = &maxAge
		oidcCheck(t, s.CreateLogin(ctx, l), "create")
		samlID := oidcRandom(t, "id-")
		oidcCheck(t, s.RouteLogin(ctx, l.ID, w.route(samlID), now), "route")
		_, err := s.ConsumeSAMLRequest(ctx, w.conn.ID, samlID, now)
		oidcCheck(t, err, "consume")
		c := w.completion()
		c.AuthAgeSeconds = tt.age
		if err := s.CompleteLogin(ctx, l.ID, c, now); !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
			t.Fatalf("max_age 600, age %d: %v, want %v", tt.age, err, tt.want)
		}
	}
}

func testOIDCFailLogin(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	l := w.login(t)
	oidcCheck(t, s.CreateLogin(ctx, l), "create")
	got, err := s.FailLogin(ctx, l.ID, "access_denied", oidcBase.Add(time.Minute))
	oidcCheck(t, err, "fail")
	oidcEqual(t, "failed", []any{got.FailedAt, got.Failure, got.Request.State}, []any{oidcBase.Add(time.Minute), "access_denied", "st"})
	_, err = s.FailLogin(ctx, l.ID, "access_denied", oidcBase.Add(time.Minute))
	oidcWantIs(t, err, tenants.ErrConflict, "fail twice")
	oidcWantIs(t, s.RouteLogin(ctx, l.ID, w.route("id-f"), oidcBase.Add(time.Minute)), tenants.ErrConflict, "route a failed login")
	_, err = s.FailLogin(ctx, "lgn_missing", "access_denied", oidcBase)
	oidcWantIs(t, err, tenants.ErrNotFound, "missing login")

	done := w.doneLogin(t, s, "code-f")
	_, err = s.FailLogin(ctx, done.ID, "access_denied", oidcBase.Add(time.Minute))
	oidcWantIs(t, err, tenants.ErrConflict, "fail a done login")
}

func testOIDCCodeSaveRedeem(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	now := oidcBase.Add(time.Minute)

	pending := w.login(t)
	oidcCheck(t, s.CreateLogin(ctx, pending), "create")
	_, err := s.SaveCode(ctx, pending.ID, "code-p", "browser", now.Add(time.Minute), now)
	oidcWantIs(t, err, tenants.ErrConflict, "code for a login not done")

	l := w.login(t)
	oidcCheck(t, s.CreateLogin(ctx, l), "create")
	oidcCheck(t, s.RouteLogin(ctx, l.ID, w.route("id-s"), now), "route")
	_, err = s.ConsumeSAMLRequest(ctx, w.conn.ID, "id-s", now)
	oidcCheck(t, err, "consume SAML")
	oidcCheck(t, s.CompleteLogin(ctx, l.ID, w.completion(), now), "complete")
	_, err = s.SaveCode(ctx, l.ID, "code-1", "another browser", now.Add(time.Minute), now)
	oidcWantIs(t, err, tenants.ErrConflict, "code for another browser")
	got, err := s.SaveCode(ctx, l.ID, "code-1", "browser", now.Add(time.Minute), now)
	oidcCheck(t, err, "save code")
	oidcEqual(t, "code saved", []any{got.CodeIssued, got.CodeExpiresAt}, []any{true, now.Add(time.Minute)})
	_, err = s.SaveCode(ctx, l.ID, "code-2", "browser", now.Add(time.Minute), now)
	oidcWantIs(t, err, tenants.ErrConflict, "a second code")
	_, err = s.SaveCode(ctx, "lgn_missing", "code-3", "browser", now.Add(time.Minute), now)
	oidcWantIs(t, err, tenants.ErrNotFound, "code for a missing login")

	base := w.redemption(t, got, "code-1")
	refused := []struct {
		name string
		edit func(r *oidcprovider.CodeRedemption)
		now  time.Time
	}{
		{"unknown code", func(r *oidcprovider.CodeRedemption) { r.CodeHash = "code-x" }, now},
		{"another client", func(r *oidcprovider.CodeRedemption) { r.ClientID = "cli_other" }, now},
		{"wrong verifier", func(r *oidcprovider.CodeRedemption) { r.CodeChallenge = strings.Repeat("d", 43) }, now},
		{"no verifier", func(r *oidcprovider.CodeRedemption) { r.CodeChallenge = "" }, now},
		{"other redirect_uri", func(r *oidcprovider.CodeRedemption) { r.RedirectURI = "https://app.example/other" }, now},
		{"expired", nil, now.Add(time.Minute)},
	}
	for _, tt := range refused {
		r := base
		if tt.edit != nil {
			tt.edit(&r)
		}
		_, _, err := s.RedeemCode(ctx, r, tt.now)
		oidcWantIs(t, err, tenants.ErrNotFound, tt.name)
	}
	gotL, g, err := s.RedeemCode(ctx, base, now)
	oidcCheck(t, err, "redeem")
	oidcEqual(t, "redeemed login", []any{gotL.ID, gotL.CodeUsedAt, gotL.GrantID, gotL.Claims, gotL.ExpiresAt},
		[]any{l.ID, now, base.GrantID, w.completion().Claims, base.RefreshExpiresAt})
	wantGrant := oidcprovider.Grant{
		ID: base.GrantID, LoginID: l.ID, ClientID: w.client.ID, Subject: w.ident.Subject, TenantID: w.tenant.ID,
		ConnectionID: w.conn.ID, IdP: "okta", Scopes: l.Request.Scopes, AuthTime: w.completion().AuthTime,
		CreatedAt: now, ExpiresAt: base.RefreshExpiresAt,
	}
	oidcEqual(t, "grant", g, wantGrant)

	st, err := s.AccessToken(ctx, base.AccessTokenID)
	oidcCheck(t, err, "read access token")
	oidcEqual(t, "access token", *st.Access, oidcprovider.AccessToken{ID: base.AccessTokenID, GrantID: g.ID, Scopes: l.Request.Scopes,
		CreatedAt: now, ExpiresAt: base.OfflineAccessExpiresAt})
	oidcEqual(t, "grant read back", st.Grant, wantGrant)
	oidcEqual(t, "identity", []any{st.Identity.Subject, st.Identity.Status, st.Identity.Email, st.Identity.Profile.Attributes},
		[]any{w.ident.Subject, tenants.IdentityActive, "ada@acme.example", map[string][]string{"mail": {"ada@acme.example"}}})
	st, err = s.RefreshToken(ctx, base.RefreshTokenHash)
	oidcCheck(t, err, "read refresh token")
	oidcEqual(t, "refresh token", *st.Refresh, oidcprovider.RefreshToken{ID: base.RefreshTokenID, Hash: base.RefreshTokenHash,
		GrantID: g.ID, CreatedAt: now, ExpiresAt: base.RefreshExpiresAt})
	oidcEqual(t, "grant via refresh token", st.Grant, wantGrant)
	_, err = s.AccessToken(ctx, "at_missing")
	oidcWantIs(t, err, tenants.ErrNotFound, "missing access token")
	_, err = s.RefreshToken(ctx, "missing")
	oidcWantIs(t, err, tenants.ErrNotFound, "missing refresh token")
}

func testOIDCCodeReplay(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	now := oidcBase.Add(3 * time.Minute)
	g, r := w.redeemed(t, s)
	_, _, err := s.RedeemCode(ctx, r, now)
	oidcWantIs(t, err, oidcprovider.ErrCodeReplayed, "replay")
	st, err := s.AccessToken(ctx, r.AccessTokenID)
	oidcCheck(t, err, "read access token")
	oidcEqual(t, "revocation after replay", []any{st.Grant.ID, st.Grant.RevokedAt, st.Grant.RevokedReason}, []any{g.ID, now, "code_replayed"})
	// Even a replay by someone without the verifier or client counts: the
	// code leaked.
	thief := r
	thief.ClientID, thief.CodeChallenge, thief.GrantID = "cli_thief", "", oidcRandom(t, "grt_")
	_, _, err = s.RedeemCode(ctx, thief, now)
	oidcWantIs(t, err, oidcprovider.ErrCodeReplayed, "replay by another client")
	l, err := s.Login(ctx, g.LoginID)
	oidcCheck(t, err, "login")
	oidcEqual(t, "replay marked", l.CodeReplayedAt, now)
}

// testOIDCCodeRefusedNotSpent: a valid code refused because the identity
// is deactivated or the client excludes the tenant is not spent.
func testOIDCCodeRefusedNotSpent(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	other := newOIDCWorld(t, s)
	now := oidcBase.Add(time.Minute)
	l := w.doneLogin(t, s, "code-n")
	r := w.redemption(t, l, "code-n")

	_, err := s.SetIdentityStatus(ctx, w.ident.Subject, tenants.IdentityDeactivated, now)
	oidcCheck(t, err, "deactivate")
	_, _, err = s.RedeemCode(ctx, r, now)
	oidcWantIs(t, err, oidcprovider.ErrIdentityInactive, "deactivated identity")
	_, err = s.SetIdentityStatus(ctx, w.ident.Subject, tenants.IdentityActive, now)
	oidcCheck(t, err, "reactivate")

	_, err = s.UpdateClient(ctx, w.client.ID, func(c *tenants.Client) error {
		c.AllowedTenants = []string{other.tenant.ID}
		return nil
	})
	oidcCheck(t, err, "narrow allow-list")
	_, _, err = s.RedeemCode(ctx, r, now)
	oidcWantIs(t, err, oidcprovider.ErrTenantNotAllowed, "tenant excluded by client")
	_, err = s.UpdateClient(ctx, w.client.ID, func(c *tenants.Client) error {
		c.AllowedTenants = []string{w.tenant.ID}
		return nil
	})
	oidcCheck(t, err, "allow the tenant")
	_, _, err = s.RedeemCode(ctx, r, now)
	oidcCheck(t, err, "redeem after the refusals")
}

// testOIDCGrantOnline: without offline_access there is no refresh token and
// the grant ends with its access token.
func testOIDCGrantOnline(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	now := oidcBase.Add(time.Minute)
	l := w.login(t)
	l.Request.Scopes = []string{"openid"}
	oidcCheck(t, s.CreateLogin(ctx, l), "create")
	oidcCheck(t, s.RouteLogin(ctx, l.ID, w.route("id-on"), now), "route")
	_, err := s.ConsumeSAMLRequest(ctx, w.conn.ID, "id-on", now)
	oidcCheck(t, err, "consume SAML")
	oidcCheck(t, s.CompleteLogin(ctx, l.ID, w.completion(), now), "complete")
	_, err = s.SaveCode(ctx, l.ID, "code-on", "browser", now.Add(time.Minute), now)
	oidcCheck(t, err, "save code")
	r := w.redemption(t, l, "code-on")
	_, g, err := s.RedeemCode(ctx, r, now)
	oidcCheck(t, err, "redeem")
	oidcEqual(t, "online grant expiry", g.ExpiresAt, r.AccessExpiresAt)
	st, err := s.AccessToken(ctx, r.AccessTokenID)
	oidcCheck(t, err, "access token")
	oidcEqual(t, "access token expiry", st.Access.ExpiresAt, r.AccessExpiresAt)
	_, err = s.RefreshToken(ctx, r.RefreshTokenHash)
	oidcWantIs(t, err, tenants.ErrNotFound, "refresh token without offline_access")
	got, err := s.Login(ctx, l.ID)
	oidcCheck(t, err, "login")
	oidcEqual(t, "login kept as long as its grant", got.ExpiresAt, r.AccessExpiresAt)
}

func testOIDCRefreshRotate(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	g, r := w.redeemed(t, s)

	later := oidcBase.Add(time.Hour)
	next := func() (oidcprovider.AccessToken, oidcprovider.RefreshToken) {
		return oidcprovider.AccessToken{ID: oidcRandom(t, "at_"), GrantID: g.ID, Scopes: []string{"openid"}, CreatedAt: later, ExpiresAt: later.Add(time.Hour)},
			oidcprovider.RefreshToken{ID: oidcRandom(t, "rt_"), Hash: oidcRandom(t, "h"), GrantID: g.ID, CreatedAt: later, ExpiresAt: g.ExpiresAt}
	}
	at2, rt2 := next()
	oidcCheck(t, s.RotateRefreshToken(ctx, r.RefreshTokenHash, at2, rt2, later), "rotate")
	old, err := s.RefreshToken(ctx, r.RefreshTokenHash)
	oidcCheck(t, err, "old token")
	oidcEqual(t, "old token used", old.Refresh.UsedAt, later)
	st, err := s.AccessToken(ctx, at2.ID)
	oidcCheck(t, err, "new access token")
	oidcEqual(t, "new access token", *st.Access, at2)
	at3, rt3 := next()
	oidcWantIs(t, s.RotateRefreshToken(ctx, r.RefreshTokenHash, at3, rt3, later), oidcprovider.ErrRefreshTokenReused, "rotate a used token")
	_, err = s.AccessToken(ctx, at3.ID)
	oidcWantIs(t, err, tenants.ErrNotFound, "nothing written by a refused rotation")

	oidcCheck(t, s.RevokeGrant(ctx, g.ID, "test", later), "revoke")
	at4, rt4 := next()
	oidcWantIs(t, s.RotateRefreshToken(ctx, rt2.Hash, at4, rt4, later), oidcprovider.ErrRefreshTokenReused, "rotate in a revoked grant")
}

func testOIDCRevoke(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	now := oidcBase.Add(time.Minute)
	var grants []oidcprovider.Grant
	var tokens []oidcprovider.AccessToken
	for range 2 {
		g, r := w.redeemed(t, s)
		grants, tokens = append(grants, g), append(tokens, oidcprovider.AccessToken{ID: r.AccessTokenID})
	}
	oidcCheck(t, s.RevokeAccessToken(ctx, tokens[0].ID, now), "revoke access token")
	st, err := s.AccessToken(ctx, tokens[0].ID)
	oidcCheck(t, err, "read")
	oidcEqual(t, "token revoked, grant not", []any{st.Access.RevokedAt, st.Grant.RevokedAt}, []any{now, time.Time{}})
	oidcCheck(t, s.RevokeAccessToken(ctx, tokens[0].ID, now.Add(time.Minute)), "revoke again")
	oidcWantIs(t, s.RevokeAccessToken(ctx, "at_missing", now), tenants.ErrNotFound, "missing token")

	oidcCheck(t, s.RevokeGrant(ctx, grants[0].ID, "first", now), "revoke grant")
	oidcCheck(t, s.RevokeGrant(ctx, grants[0].ID, "second", now.Add(time.Minute)), "revoke grant again")
	st, err = s.AccessToken(ctx, tokens[0].ID)
	oidcCheck(t, err, "read")
	oidcEqual(t, "first reason kept", []any{st.Grant.RevokedAt, st.Grant.RevokedReason}, []any{now, "first"})
	oidcWantIs(t, s.RevokeGrant(ctx, "grt_missing", "x", now), tenants.ErrNotFound, "missing grant")

	_, err = s.RevokeGrants(ctx, "", w.client.ID, "logout", now)
	oidcWantIs(t, err, tenants.ErrInvalidInput, "logout without a subject")
	_, err = s.RevokeGrants(ctx, w.ident.Subject, "", "logout", now)
	oidcWantIs(t, err, tenants.ErrInvalidInput, "logout without a client")
	n, err := s.RevokeGrants(ctx, w.ident.Subject, "cli_other", "logout", now)
	oidcCheck(t, err, "logout of another client")
	oidcEqual(t, "grants of another client", n, int64(0))
	n, err = s.RevokeGrants(ctx, w.ident.Subject, w.client.ID, "logout", now)
	oidcCheck(t, err, "logout")
	oidcEqual(t, "live grants revoked", n, int64(1))
}

func testOIDCSigningKeys(t *testing.T, s *store.Store) {
	ctx := t.Context()
	keys, err := s.SigningKeys(ctx)
	oidcCheck(t, err, "no keys")
	oidcEqual(t, "keys of an empty store", len(keys), 0)

	k1 := oidcprovider.SigningKey{ID: "kid1", Generation: 1, Algorithm: "RS256", PrivateKey: []byte("private-one"),
		PublicKey: []byte("public-one"), CreatedAt: oidcBase, ActiveFrom: oidcBase}
	oidcCheck(t, s.CreateSigningKey(ctx, k1, time.Time{}), "create first")
	k2 := oidcprovider.SigningKey{ID: "kid2", Generation: 2, Algorithm: "ES256", PrivateKey: []byte("private-two"),
		PublicKey: []byte("public-two"), CreatedAt: oidcBase.Add(time.Hour), ActiveFrom: oidcBase.Add(48 * time.Hour)}
	oidcCheck(t, s.CreateSigningKey(ctx, k2, oidcBase.Add(72*time.Hour)), "create second")
	dup := k2
	dup.ID = "kid2b"
	oidcWantIs(t, s.CreateSigningKey(ctx, dup, oidcBase.Add(72*time.Hour)), tenants.ErrAlreadyExists, "same generation twice")

	keys, err = s.SigningKeys(ctx)
	oidcCheck(t, err, "keys")
	k1.RetireAt, k1.ExpiresAt = k2.ActiveFrom, oidcBase.Add(72*time.Hour)
	oidcEqual(t, "keys", keys, []oidcprovider.SigningKey{k1, k2})

	// Sealed at rest, bound to the row.
	var sealed string
	oidcCheck(t, s.DB().QueryRowContext(ctx, `SELECT private_key_sealed FROM signing_keys WHERE id = 'kid1'`).Scan(&sealed), "raw")
	if strings.Contains(sealed, "private-one") {
		t.Fatal("private key stored in clear")
	}
	plain, err := TestKeyring(t).Open(sealed, "signing_keys.private_key:kid1")
	oidcCheck(t, err, "open with the documented AAD")
	oidcEqual(t, "opened", string(plain), "private-one")
}

func testOIDCSecret(t *testing.T, s *store.Store) {
	ctx := t.Context()
	v, err := s.Secret(ctx, "op_crypto_key", []byte("first"), oidcBase)
	oidcCheck(t, err, "create")
	oidcEqual(t, "created", string(v), "first")
	v, err = s.Secret(ctx, "op_crypto_key", []byte("second"), oidcBase)
	oidcCheck(t, err, "get")
	oidcEqual(t, "kept", string(v), "first")
	var sealed string
	oidcCheck(t, s.DB().QueryRowContext(ctx, `SELECT value_sealed FROM oidc_secrets WHERE id = 'op_crypto_key'`).Scan(&sealed), "raw")
	plain, err := TestKeyring(t).Open(sealed, "oidc_secrets.value:op_crypto_key")
	oidcCheck(t, err, "open with the documented AAD")
	oidcEqual(t, "opened", string(plain), "first")
}

func testOIDCGC(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)

	abandoned := w.login(t) // expires at +30m
	oidcCheck(t, s.CreateLogin(ctx, abandoned), "create")
	g, r := w.redeemed(t, s) // access token +47m, grant and refresh token +24h2m
	oidcCheck(t, s.CreateSigningKey(ctx, oidcprovider.SigningKey{ID: "k1", Generation: 1, Algorithm: "RS256",
		PrivateKey: []byte("p"), PublicKey: []byte("q"), CreatedAt: oidcBase, ActiveFrom: oidcBase}, time.Time{}), "key 1")
	oidcCheck(t, s.CreateSigningKey(ctx, oidcprovider.SigningKey{ID: "k2", Generation: 2, Algorithm: "RS256",
		PrivateKey: []byte("p"), PublicKey: []byte("q"), CreatedAt: oidcBase, ActiveFrom: oidcBase.Add(time.Hour)}, oidcBase.Add(3*time.Hour)), "key 2")

	n, err := s.DeleteExpiredOIDC(ctx, oidcBase.Add(29*time.Minute))
	oidcCheck(t, err, "GC before anything expires")
	oidcEqual(t, "deleted", n, int64(0))

	n, err = s.DeleteExpiredOIDC(ctx, oidcBase.Add(2*time.Hour))
	oidcCheck(t, err, "GC at +2h")
	oidcEqual(t, "deleted (abandoned login, access token)", n, int64(2))
	if _, err := s.Login(ctx, abandoned.ID); !errors.Is(err, tenants.ErrNotFound) {
		t.Fatalf("abandoned login survived: %v", err)
	}
	if _, err := s.Login(ctx, g.LoginID); err != nil {
		t.Fatalf("a redeemed login must outlive its code while its grant lives: %v", err)
	}
	if _, err := s.RefreshToken(ctx, r.RefreshTokenHash); err != nil {
		t.Fatalf("refresh token deleted early: %v", err)
	}

	n, err = s.DeleteExpiredOIDC(ctx, oidcBase.Add(48*time.Hour))
	oidcCheck(t, err, "GC at +48h")
	oidcEqual(t, "deleted (refresh token, grant, login, key 1)", n, int64(4))
	keys, err := s.SigningKeys(ctx)
	oidcCheck(t, err, "keys")
	oidcEqual(t, "keys left", len(keys), 1)
}

func testOIDCCascadeClient(t *testing.T, s *store.Store) {
	ctx := t.Context()
	w := newOIDCWorld(t, s)
	g, r := w.redeemed(t, s)
	oidcCheck(t, s.DeleteClient(ctx, w.client.ID), "delete client")
	_, err := s.Login(ctx, g.LoginID)
	oidcWantIs(t, err, tenants.ErrNotFound, "login of a deleted client")
	_, err = s.AccessToken(ctx, r.AccessTokenID)
	oidcWantIs(t, err, tenants.ErrNotFound, "access token of a deleted client")
	_, err = s.RefreshToken(ctx, r.RefreshTokenHash)
	oidcWantIs(t, err, tenants.ErrNotFound, "refresh token of a deleted client")
}

// Concurrency. Two handles on one database stand for two replicas; every
// round releases its goroutines at once.

const oidcRounds = 10

func oidcTwoHandles(t *testing.T, b Backend) [2]*store.Store {
	t.Helper()
	u := b.URL(t)
	return [2]*store.Store{OpenURL(t, u), OpenURL(t, u)}
}

func oidcRace(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func oidcExactlyOne(t testing.TB, what string, errs []error, loser error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s: callers %d and %d both won", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Fatalf("%s: caller %d: got %v, want an error matching %q", what, i, err, loser)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: nobody won: %v", what, errs)
	}
	return winner
}

// testOIDCConcurrentRedeemCode: of simultaneous redemptions of one code
// exactly one succeeds; the others are replays, so in the end the winner's
// grant is revoked too.
func testOIDCConcurrentRedeemCode(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := oidcTwoHandles(t, b)
	w := newOIDCWorld(t, hs[0])
	now := oidcBase.Add(90 * time.Second)
	for range oidcRounds {
		code := oidcRandom(t, "code")
		l := w.doneLogin(t, hs[0], code)
		rs := make([]oidcprovider.CodeRedemption, 6)
		for i := range rs {
			rs[i] = w.redemption(t, l, code)
		}
		errs := oidcRace(6, func(i int) error {
			_, _, err := hs[i%2].RedeemCode(ctx, rs[i], now)
			return err
		})
		win := oidcExactlyOne(t, "redeem "+code, errs, oidcprovider.ErrCodeReplayed)
		st, err := hs[1].AccessToken(ctx, rs[win].AccessTokenID)
		oidcCheck(t, err, "winner's access token")
		if st.Grant.RevokedAt.IsZero() {
			t.Fatal("the winner's grant survived the concurrent replays")
		}
		for i, r := range rs {
			if i == win {
				continue
			}
			if _, err := hs[0].AccessToken(ctx, r.AccessTokenID); !errors.Is(err, tenants.ErrNotFound) {
				t.Fatalf("a losing redemption wrote its access token: %v", err)
			}
		}
	}
}

func testOIDCConcurrentConsumeSAML(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := oidcTwoHandles(t, b)
	w := newOIDCWorld(t, hs[0])
	now := oidcBase.Add(time.Minute)
	for range oidcRounds {
		l := w.login(t)
		oidcCheck(t, hs[0].CreateLogin(ctx, l), "create")
		samlID := oidcRandom(t, "id-")
		oidcCheck(t, hs[1].RouteLogin(ctx, l.ID, w.route(samlID), now), "route")
		errs := oidcRace(6, func(i int) error {
			_, err := hs[i%2].ConsumeSAMLRequest(ctx, w.conn.ID, samlID, now)
			return err
		})
		oidcExactlyOne(t, "consume SAML request "+samlID, errs, tenants.ErrConflict)
	}
}

func testOIDCConcurrentRotate(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := oidcTwoHandles(t, b)
	w := newOIDCWorld(t, hs[0])
	now := oidcBase.Add(time.Minute)
	for range oidcRounds {
		g, r := w.redeemed(t, hs[1])
		errs := oidcRace(6, func(i int) error {
			at := oidcprovider.AccessToken{ID: oidcRandom(t, "at_"), GrantID: g.ID, Scopes: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			next := oidcprovider.RefreshToken{ID: oidcRandom(t, "rt_"), Hash: oidcRandom(t, "h"), GrantID: g.ID, CreatedAt: now, ExpiresAt: g.ExpiresAt}
			return hs[i%2].RotateRefreshToken(ctx, r.RefreshTokenHash, at, next, now)
		})
		oidcExactlyOne(t, "rotate "+g.ID, errs, oidcprovider.ErrRefreshTokenReused)
	}
}

func testOIDCConcurrentSigningKey(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := oidcTwoHandles(t, b)
	for gen := int64(1); gen <= oidcRounds; gen++ {
		errs := oidcRace(4, func(i int) error {
			k := oidcprovider.SigningKey{ID: oidcRandom(t, "kid"), Generation: gen, Algorithm: "RS256", PrivateKey: []byte("p"),
				PublicKey: []byte("q"), CreatedAt: oidcBase, ActiveFrom: oidcBase.Add(time.Duration(gen) * time.Hour)}
			return hs[i%2].CreateSigningKey(ctx, k, oidcBase.Add(time.Duration(gen+5)*time.Hour))
		})
		oidcExactlyOne(t, "create generation", errs, tenants.ErrAlreadyExists)
	}
	keys, err := hs[0].SigningKeys(ctx)
	oidcCheck(t, err, "keys")
	oidcEqual(t, "one key per generation", len(keys), oidcRounds)
}

func testOIDCConcurrentSecret(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := oidcTwoHandles(t, b)
	for round := range oidcRounds {
		id := oidcRandom(t, "secret")
		got := make([]string, 6)
		errs := oidcRace(6, func(i int) error {
			v, err := hs[i%2].Secret(ctx, id, []byte{byte(round), byte(i)}, oidcBase)
			got[i] = string(v)
			return err
		})
		for i, err := range errs {
			oidcCheck(t, err, "secret")
			if got[i] != got[0] {
				t.Fatalf("replicas disagree on secret %s: %q vs %q", id, got[i], got[0])
			}
		}
	}
}
