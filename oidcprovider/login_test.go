package oidcprovider_test

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

// TestLoginAPI walks a login through its states as the hosted page and the
// ACS see it.
func TestLoginAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		r := e.confRP("openid", "email", "groups")
		f := r.authorize(t,
			oauth2.SetAuthURLParam("login_hint", "ada@acme.example"),
			oauth2.SetAuthURLParam("domain_hint", "ACME.example"),
			oauth2.SetAuthURLParam("organization", e.tenant.ID),
			oauth2.SetAuthURLParam("connection", e.conn.ID),
			oauth2.SetAuthURLParam("prompt", "login"),
			oauth2.SetAuthURLParam("ui_locales", "de-CH fr"),
		)
		l, err := e.p.Login(ctx, f.loginID)
		check(t, err, "Login")
		zero := time.Duration(0)
		want := oidcprovider.Login{
			ID: f.loginID, ClientID: e.conf.ID, ClientName: "Confidential App", Scopes: []string{"openid", "email", "groups"},
			LoginHint: "ada@acme.example", DomainHint: "acme.example", Organization: e.tenant.ID, Connection: e.conn.ID,
			Prompt: []string{"login"}, ForceAuthn: true, MaxAge: &zero, UILocales: []string{"de-CH", "fr"},
			State: oidcprovider.LoginPending, CreatedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(30 * time.Minute),
		}
		if !reflect.DeepEqual(l, want) {
			t.Fatalf("Login:\n got %+v\nwant %+v", l, want)
		}

		other, err := e.dir.CreateTenant(ctx, tenants.NewTenant{Name: "Globex"})
		check(t, err, "other tenant")
		otherConn := e.createConnection(other.ID)
		conn2 := e.createConnection(e.tenant.ID)
		exp := e.clock.Now().Add(5 * time.Minute)
		refusals := []struct {
			name             string
			tenant, conn, id string
			exp              time.Time
			want             error
		}{
			{"organization hint", other.ID, otherConn.ID, "id-1", exp, oidcprovider.ErrRouteMismatch},
			{"connection hint", e.tenant.ID, conn2.ID, "id-2", exp, oidcprovider.ErrRouteMismatch},
			{"malformed tenant", "acme", e.conn.ID, "id-3", exp, oidcprovider.ErrInvalidInput},
			{"SAML id with spaces", e.tenant.ID, e.conn.ID, "id 4", exp, oidcprovider.ErrInvalidInput},
			{"already expired request", e.tenant.ID, e.conn.ID, "id-5", e.clock.Now(), oidcprovider.ErrInvalidInput},
		}
		for _, tt := range refusals {
			if err := e.p.StartSAML(ctx, f.loginID, tt.tenant, tt.conn, tt.id, tt.exp); !errors.Is(err, tt.want) {
				t.Errorf("StartSAML %s: %v, want %v", tt.name, err, tt.want)
			}
		}
		if err := e.p.StartSAML(ctx, "lgn_"+strings.Repeat("A", 43), e.tenant.ID, e.conn.ID, "id-6", exp); !errors.Is(err, oidcprovider.ErrLoginNotFound) || !errors.Is(err, tenants.ErrNotFound) {
			t.Errorf("StartSAML of an unknown login: %v", err)
		}

		check(t, e.p.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, "id-7", exp), "StartSAML")
		if l, _ := e.p.Login(ctx, f.loginID); l.State != oidcprovider.LoginRouted || l.SAMLRequestID != "id-7" || l.TenantID != e.tenant.ID {
			t.Fatalf("after StartSAML: %+v", l)
		}
		if _, err := e.p.CompleteLogin(ctx, f.loginID, e.ident, e.conn, e.clock.Now()); !errors.Is(err, oidcprovider.ErrNotRouted) {
			t.Fatalf("CompleteLogin before the SAML response: %v", err)
		}

		// The ACS.
		for _, tt := range []struct {
			conn, id string
			want     error
		}{
			{e.conn.ID, "id-unknown", oidcprovider.ErrSAMLRequestUnknown},
			{otherConn.ID, "id-7", oidcprovider.ErrSAMLRequestUnknown}, // tenant B's ACS
		} {
			if _, err := e.p.LoginBySAMLRequest(ctx, tt.conn, tt.id); !errors.Is(err, tt.want) {
				t.Errorf("LoginBySAMLRequest(%s, %s): %v, want %v", tt.conn, tt.id, err, tt.want)
			}
		}
		peek, err := e.p.PeekSAMLRequest(ctx, e.conn.ID, "id-7")
		check(t, err, "peek")
		if peek.ID != f.loginID || peek.State != oidcprovider.LoginRouted {
			t.Fatalf("peek: %+v", peek)
		}
		got, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, "id-7")
		check(t, err, "LoginBySAMLRequest")
		if got.ID != f.loginID || got.State != oidcprovider.LoginResponded || !got.ForceAuthn {
			t.Fatalf("consumed login: %+v", got)
		}
		if _, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, "id-7"); !errors.Is(err, oidcprovider.ErrSAMLRequestReplayed) {
			t.Fatalf("second response to one request: %v", err)
		}
		if err := e.p.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, "id-8", exp); !errors.Is(err, oidcprovider.ErrLoginDone) {
			t.Fatalf("re-route after the response: %v", err)
		}

		// Completion refusals.
		deactivated := e.upsertIdentity(e.conn, "mallory")
		deactivated.Status = tenants.IdentityDeactivated
		otherIdent := e.upsertIdentity(otherConn, "eve")
		for _, tt := range []struct {
			name string
			id   tenants.Identity
			conn tenants.Connection
			when time.Time
			want error
		}{
			{"deactivated identity", deactivated, e.conn, e.clock.Now(), oidcprovider.ErrIdentityInactive},
			{"identity of another connection", otherIdent, e.conn, e.clock.Now(), oidcprovider.ErrRouteMismatch},
			{"another route", otherIdent, otherConn, e.clock.Now(), oidcprovider.ErrNotRouted},
			{"prompt=login, authentication older than the login", e.ident, e.conn, e.clock.Now().Add(-10 * time.Minute), oidcprovider.ErrReauthenticationRequired},
			{"authentication in the future", e.ident, e.conn, e.clock.Now().Add(time.Hour), oidcprovider.ErrInvalidInput},
		} {
			if _, err := e.p.CompleteLogin(ctx, f.loginID, tt.id, tt.conn, tt.when); !errors.Is(err, tt.want) {
				t.Errorf("CompleteLogin, %s: %v, want %v", tt.name, err, tt.want)
			}
		}
		cb, err := e.p.CompleteLogin(ctx, f.loginID, e.ident, e.conn, e.clock.Now())
		check(t, err, "CompleteLogin")
		if cb != e.issuer+"/authorize/callback?id="+url.QueryEscape(f.loginID) {
			t.Fatalf("callback URL %s", cb)
		}
		if _, err := e.p.CompleteLogin(ctx, f.loginID, e.ident, e.conn, e.clock.Now()); !errors.Is(err, oidcprovider.ErrLoginDone) {
			t.Fatalf("CompleteLogin twice: %v", err)
		}
		if l, _ := e.p.Login(ctx, f.loginID); l.State != oidcprovider.LoginDone || l.Subject != e.ident.Subject {
			t.Fatalf("after CompleteLogin: %+v", l)
		}
		if _, err := e.p.FailLogin(ctx, f.loginID, "access_denied", ""); !errors.Is(err, oidcprovider.ErrLoginDone) {
			t.Fatalf("FailLogin after completion: %v", err)
		}
		f.callback(t, cb)
		_, idt := f.tokens(t)
		if claimsOf(t, idt)["org_id"] != e.tenant.ID {
			t.Fatal("org_id")
		}

		// Expiry.
		f2 := r.authorize(t)
		e.clock.Advance(31 * time.Minute)
		if l, _ := e.p.Login(ctx, f2.loginID); l.State != oidcprovider.LoginExpired {
			t.Fatalf("state after the TTL: %s", l.State)
		}
		if err := e.p.StartSAML(ctx, f2.loginID, e.tenant.ID, e.conn.ID, "id-9", e.clock.Now().Add(time.Minute)); !errors.Is(err, oidcprovider.ErrLoginExpired) {
			t.Fatalf("StartSAML after the TTL: %v", err)
		}
		if _, err := e.p.Login(ctx, "lgn_nope"); !errors.Is(err, oidcprovider.ErrLoginNotFound) {
			t.Fatalf("unknown login: %v", err)
		}
	})
}

// TestMaxAge: an IdP authentication older than max_age is refused.
func TestMaxAge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		r := e.confRP()
		for _, tt := range []struct {
			name    string
			authAgo time.Duration
			want    error
		}{
			{"within max_age", 5 * time.Minute, nil},
			{"within max_age plus skew", 12 * time.Minute, nil},
			{"older than max_age", 20 * time.Minute, oidcprovider.ErrReauthenticationRequired},
		} {
			t.Run(tt.name, func(t *testing.T) {
				f := r.authorize(t, oauth2.SetAuthURLParam("max_age", "600"))
				l, err := e.p.Login(ctx, f.loginID)
				check(t, err, "Login")
				if l.MaxAge == nil || *l.MaxAge != 10*time.Minute || l.ForceAuthn {
					t.Fatalf("max_age %v force %v", l.MaxAge, l.ForceAuthn)
				}
				samlID := "id-" + randomString(t)
				check(t, e.p.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, samlID, e.clock.Now().Add(time.Minute)), "StartSAML")
				_, err = e.p.LoginBySAMLRequest(ctx, e.conn.ID, samlID)
				check(t, err, "ACS")
				_, err = e.p.CompleteLogin(ctx, f.loginID, e.ident, e.conn, e.clock.Now().Add(-tt.authAgo))
				if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
					t.Fatalf("CompleteLogin: %v, want %v", err, tt.want)
				}
			})
		}
	})
}

// TestCheckAuthTime is the freshness rule the ACS applies before it
// upserts an identity.
func TestCheckAuthTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		now := e.clock.Now()
		created := now.Add(-5 * time.Minute)
		tenMin, zero := 10*time.Minute, time.Duration(0)
		for _, tt := range []struct {
			name     string
			force    bool
			maxAge   *time.Duration
			authTime time.Time
			want     error
		}{
			{"no requirement, old authentication", false, nil, now.Add(-24 * time.Hour), nil},
			{"prompt=login, authenticated during the login", true, &zero, now.Add(-time.Minute), nil},
			{"prompt=login, authenticated before the login, within skew", true, &zero, created.Add(-2 * time.Minute), nil},
			{"prompt=login, authenticated before the login", true, &zero, created.Add(-4 * time.Minute), oidcprovider.ErrReauthenticationRequired},
			{"max_age, fresh", false, &tenMin, now.Add(-9 * time.Minute), nil},
			{"max_age, stale", false, &tenMin, now.Add(-14 * time.Minute), oidcprovider.ErrReauthenticationRequired},
			{"in the future", false, nil, now.Add(time.Hour), oidcprovider.ErrInvalidInput},
			{"zero means now", true, &zero, time.Time{}, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				err := e.p.CheckAuthTime(created, tt.force, tt.maxAge, tt.authTime)
				if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
					t.Fatalf("CheckAuthTime: %v, want %v", err, tt.want)
				}
			})
		}
	})
}

// TestFailLogin: the client gets the error, its state and a generic
// description; the login cannot be completed afterwards.
func TestFailLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		r := e.confRP()
		for _, tt := range []struct {
			code, desc, wantDesc string
		}{
			{"access_denied", "", "The sign-in was denied."},
			{"login_required", "Your IdP session ended.", "Your IdP session ended."},
			{"server_error", "pq: relation \"x\"\n at 10.0.0.5", "The sign-in failed because of an error at the identity provider or the broker."},
			{"temporarily_unavailable", strings.Repeat("x", 300), "Sign-in is temporarily unavailable."},
		} {
			t.Run(tt.code, func(t *testing.T) {
				f := r.authorize(t)
				u, err := e.p.FailLogin(ctx, f.loginID, tt.code, tt.desc)
				check(t, err, "FailLogin")
				loc, err := url.Parse(u)
				check(t, err, "redirect")
				q := loc.Query()
				if !strings.HasPrefix(u, confRedirect+"?") || q.Get("error") != tt.code || q.Get("state") != f.state || q.Get("error_description") != tt.wantDesc {
					t.Fatalf("FailLogin redirect %s", u)
				}
				if _, err := e.p.FailLogin(ctx, f.loginID, tt.code, ""); !errors.Is(err, oidcprovider.ErrLoginFailed) {
					t.Fatalf("FailLogin twice: %v", err)
				}
				if err := e.p.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, "id-"+randomString(t), e.clock.Now().Add(time.Minute)); !errors.Is(err, oidcprovider.ErrLoginFailed) {
					t.Fatalf("StartSAML after failure: %v", err)
				}
				if l, _ := e.p.Login(ctx, f.loginID); l.State != oidcprovider.LoginFailed {
					t.Fatalf("state %s", l.State)
				}
			})
		}
		f := r.authorize(t)
		if _, err := e.p.FailLogin(ctx, f.loginID, "invalid_client", ""); !errors.Is(err, oidcprovider.ErrInvalidInput) {
			t.Fatalf("FailLogin with a code we do not send: %v", err)
		}
	})
}

// TestConfigValidation covers what New refuses before touching the store.
func TestConfigValidation(t *testing.T) {
	st := storetest.OpenSQLite(t)
	tests := []struct {
		name string
		cfg  oidcprovider.Config
		want string
	}{
		{"no issuer", oidcprovider.Config{}, "issuer is required"},
		{"http on a public host", oidcprovider.Config{Issuer: "http://sso.example.com"}, "must use https"},
		{"issuer with a path", oidcprovider.Config{Issuer: "https://sso.example.com/oidc"}, "must not have a path"},
		{"issuer with a query", oidcprovider.Config{Issuer: "https://sso.example.com?x=1"}, "query"},
		{"unknown algorithm", oidcprovider.Config{Issuer: "https://sso.example.com", SigningAlgorithm: "HS256"}, "RS256 or ES256"},
		{"code TTL over 60s", oidcprovider.Config{Issuer: "https://sso.example.com", CodeTTL: 2 * time.Minute}, "at most 1m0s"},
		{"wildcard CORS", oidcprovider.Config{Issuer: "https://sso.example.com", CORSAllowedOrigins: []string{"*"}}, "no wildcards"},
		{"http CORS origin", oidcprovider.Config{Issuer: "https://sso.example.com", CORSAllowedOrigins: []string{"http://spa.example"}}, "must use https"},
		{"publish-ahead over half the rotation", oidcprovider.Config{Issuer: "https://sso.example.com", KeyRotation: 24 * time.Hour, KeyPublishAhead: 13 * time.Hour}, "at most half"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oidcprovider.New(context.Background(), tt.cfg, st)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	for _, ok := range []string{"https://sso.example.com", "https://sso.example.com/", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"} {
		if _, err := oidcprovider.New(context.Background(), oidcprovider.Config{Issuer: ok}, st); err != nil {
			t.Errorf("issuer %s: %v", ok, err)
		}
	}
}
