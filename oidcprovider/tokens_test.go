package oidcprovider_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

// TestRefreshRotation: offline_access gates refresh tokens; each refresh
// rotates; reusing a rotated token revokes the whole family.
func TestRefreshRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		tests := []struct {
			name   string
			rp     *rp
			secret string
			client tenants.Client
		}{
			{"confidential", e.confRP("openid", "email", "offline_access"), e.confSecret, e.conf},
			{"public", e.pubRP("openid", "email", "offline_access"), "", e.pub},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok, _ := tt.rp.login(t).tokens(t)
				rt1 := tok.RefreshToken
				if !strings.HasPrefix(rt1, "ssob_rt_") {
					t.Fatalf("refresh token %q", rt1)
				}
				status, body := e.refresh(t, tt.client, tt.secret, rt1)
				if status != http.StatusOK {
					t.Fatalf("refresh: %d %v", status, body)
				}
				rt2, _ := body["refresh_token"].(string)
				at2, _ := body["access_token"].(string)
				idt2, _ := body["id_token"].(string)
				if rt2 == "" || rt2 == rt1 || at2 == "" || idt2 == "" {
					t.Fatalf("refresh response %v", body)
				}
				if _, err := tt.rp.verifier.Verify(tt.rp.ctx, idt2); err != nil {
					t.Fatalf("refreshed ID token: %v", err)
				}
				if s, ui := e.userinfo(t, at2); s != http.StatusOK || ui["sub"] != e.ident.Subject {
					t.Fatalf("refreshed access token at userinfo: %d %v", s, ui)
				}
				// Reuse of the rotated token: refused, and the family dies.
				if status, body := e.refresh(t, tt.client, tt.secret, rt1); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
					t.Fatalf("reuse: %d %v", status, body)
				}
				if status, _ := e.refresh(t, tt.client, tt.secret, rt2); status == http.StatusOK {
					t.Fatal("the newest refresh token survived reuse of its predecessor")
				}
				for _, at := range []string{tok.AccessToken, at2} {
					if s, _ := e.userinfo(t, at); s == http.StatusOK {
						t.Fatal("an access token of the family survived refresh-token reuse")
					}
				}
			})
		}
		t.Run("no offline_access, no refresh token", func(t *testing.T) {
			tok, _ := e.confRP("openid").login(t).tokens(t)
			if tok.RefreshToken != "" {
				t.Fatal("refresh token without offline_access")
			}
		})
		t.Run("refresh token of another client", func(t *testing.T) {
			tok, _ := e.pubRP("openid", "offline_access").login(t).tokens(t)
			if status, body := e.refresh(t, e.conf, e.confSecret, tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Fatalf("foreign refresh: %d %v", status, body)
			}
		})
		t.Run("narrower scope", func(t *testing.T) {
			tok, _ := e.confRP("openid", "email", "offline_access").login(t).tokens(t)
			status, body, _ := e.form(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid"}}, e.conf.ID, e.confSecret)
			if status != http.StatusOK {
				t.Fatalf("narrowed refresh: %d %v", status, body)
			}
			_, ui := e.userinfo(t, body["access_token"].(string))
			if _, ok := ui["email"]; ok {
				t.Fatal("a narrowed access token still unlocks email")
			}
			status, body, _ = e.form(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}, "scope": {"openid groups"}}, e.conf.ID, e.confSecret)
			if status != http.StatusBadRequest || body["error"] != "invalid_scope" {
				t.Fatalf("widened refresh: %d %v", status, body)
			}
		})
	})
}

// TestRevocation: revoking a refresh token revokes its grant; revoking an
// access token revokes that token only; another client cannot revoke.
func TestRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		r := e.confRP("openid", "offline_access")

		tok, _ := r.login(t).tokens(t)
		if status, body, _ := e.form(t, "/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}, e.conf.ID, e.confSecret); status != http.StatusOK {
			t.Fatalf("revoke access token: %d %v", status, body)
		}
		if got := e.introspect(t, tok.AccessToken); got["active"] != false {
			t.Fatal("revoked access token still active")
		}
		status, body := e.refresh(t, e.conf, e.confSecret, tok.RefreshToken)
		if status != http.StatusOK {
			t.Fatalf("the grant died with one access token: %d %v", status, body)
		}

		// Another client may not revoke it.
		other, otherSecret, err := e.dir.CreateClient(t.Context(), newClientInput("Other", "https://other.example/cb"))
		check(t, err, "other client")
		rt := body["refresh_token"].(string)
		if status, body, _ := e.form(t, "/revoke", url.Values{"token": {rt}}, other.ID, otherSecret.Reveal()); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("foreign revocation: %d %v", status, body)
		}
		// Revoking the refresh token kills the family.
		if status, body, _ := e.form(t, "/revoke", url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}, e.conf.ID, e.confSecret); status != http.StatusOK {
			t.Fatalf("revoke refresh token: %d %v", status, body)
		}
		if status, _ := e.refresh(t, e.conf, e.confSecret, rt); status == http.StatusOK {
			t.Fatal("revoked refresh token works")
		}
		// Unknown tokens are not an error (RFC 7009 §2.2).
		if status, body, _ := e.form(t, "/revoke", url.Values{"token": {"garbage"}}, e.conf.ID, e.confSecret); status != http.StatusOK {
			t.Fatalf("revoke garbage: %d %v", status, body)
		}
		// Public clients revoke with their client_id.
		ptok, _ := e.pubRP("openid", "offline_access").login(t).tokens(t)
		if status, body, _ := e.form(t, "/revoke", url.Values{"token": {ptok.RefreshToken}, "client_id": {e.pub.ID}}, "", ""); status != http.StatusOK {
			t.Fatalf("public revoke: %d %v", status, body)
		}
		if s, _ := e.userinfo(t, ptok.AccessToken); s == http.StatusOK {
			t.Fatal("access token of a revoked refresh token's grant still works")
		}
	})
}

// TestIntrospection: zitadel answers active:true whenever storage returns
// nil; every inactive case must be caught, and the answer must hold
// nothing but active:false.
func TestIntrospection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		r := e.confRP("openid", "email")

		tok, _ := r.login(t).tokens(t)
		got := e.introspect(t, tok.AccessToken)
		if got["active"] != true || got["sub"] != e.ident.Subject || got["client_id"] != e.conf.ID || got["org_id"] != e.tenant.ID || got["token_type"] != "Bearer" {
			t.Fatalf("active token: %v", got)
		}

		inactive := []struct {
			name  string
			token func(t *testing.T) string
			who   func() (string, string)
		}{
			{"garbage", func(*testing.T) string { return "garbage" }, nil},
			{"an ID token passed as access token", func(t *testing.T) string {
				tok, _ := r.login(t).tokens(t)
				return tok.Extra("id_token").(string)
			}, nil},
			{"expired", func(t *testing.T) string {
				tok, _ := r.login(t).tokens(t)
				e.clock.Advance(61 * time.Minute)
				t.Cleanup(func() { e.clock.Advance(-61 * time.Minute) })
				return tok.AccessToken
			}, nil},
			{"foreign client", func(t *testing.T) string {
				tok, _ := e.pubRP().login(t).tokens(t)
				return tok.AccessToken
			}, nil},
			{"revoked", func(t *testing.T) string {
				tok, _ := r.login(t).tokens(t)
				e.form(t, "/revoke", url.Values{"token": {tok.AccessToken}}, e.conf.ID, e.confSecret)
				return tok.AccessToken
			}, nil},
			{"deactivated identity", func(t *testing.T) string {
				tok, _ := r.login(t).tokens(t)
				_, err := e.st.SetIdentityStatus(t.Context(), e.ident.Subject, tenants.IdentityDeactivated, e.clock.Now())
				check(t, err, "deactivate")
				t.Cleanup(func() {
					_, err := e.st.SetIdentityStatus(context.Background(), e.ident.Subject, tenants.IdentityActive, e.clock.Now())
					check(t, err, "reactivate")
				})
				return tok.AccessToken
			}, nil},
		}
		for _, tt := range inactive {
			t.Run(tt.name, func(t *testing.T) {
				got := e.introspect(t, tt.token(t))
				if got["active"] != false || len(got) != 1 {
					t.Fatalf("introspection: %v, want exactly {active:false}", got)
				}
			})
		}
		t.Run("caller must authenticate with client_secret_basic", func(t *testing.T) {
			for _, c := range []struct{ user, pass string }{{"", ""}, {e.conf.ID, "wrong"}, {e.pub.ID, ""}} {
				status, body, hdr := e.form(t, "/oauth/introspect", url.Values{"token": {tok.AccessToken}}, c.user, c.pass)
				if status != http.StatusUnauthorized || body["error"] != "invalid_client" || hdr.Get("WWW-Authenticate") == "" {
					t.Fatalf("unauthenticated introspection (%q): %d %v", c.user, status, body)
				}
			}
		})
	})
}

// TestUserinfoChecks: op only decrypts the token; we check the rest.
func TestUserinfoChecks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		r := e.confRP("openid", "email")
		tests := []struct {
			name  string
			setup func(t *testing.T, token string)
		}{
			{"expired", func(t *testing.T, _ string) {
				e.clock.Advance(61 * time.Minute)
				t.Cleanup(func() { e.clock.Advance(-61 * time.Minute) })
			}},
			{"revoked", func(t *testing.T, tok string) {
				e.form(t, "/revoke", url.Values{"token": {tok}}, e.conf.ID, e.confSecret)
			}},
			{"deactivated identity", func(t *testing.T, _ string) {
				_, err := e.st.SetIdentityStatus(t.Context(), e.ident.Subject, tenants.IdentityDeactivated, e.clock.Now())
				check(t, err, "deactivate")
				t.Cleanup(func() {
					_, err := e.st.SetIdentityStatus(context.Background(), e.ident.Subject, tenants.IdentityActive, e.clock.Now())
					check(t, err, "reactivate")
				})
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok, _ := r.login(t).tokens(t)
				tt.setup(t, tok.AccessToken)
				status, body := e.userinfo(t, tok.AccessToken)
				if status == http.StatusOK || body["error"] != "invalid_token" {
					t.Fatalf("userinfo: %d %v", status, body)
				}
			})
		}
		t.Run("garbage and ID tokens", func(t *testing.T) {
			tok, _ := r.login(t).tokens(t)
			for _, bad := range []string{"garbage", tok.Extra("id_token").(string)} {
				if status, _ := e.userinfo(t, bad); status == http.StatusOK {
					t.Fatalf("userinfo accepted %q", bad[:10])
				}
			}
		})
	})
}

// TestEndSession: the id_token_hint's subject loses its grants for that
// client; post_logout_redirect_uri must match exactly; a bare client_id
// or no hint revokes nothing.
func TestEndSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		r := e.confRP("openid", "offline_access")
		end := func(t *testing.T, q url.Values) *http.Response {
			return newBrowser(t).get(t, e.issuer+"/end_session?"+q.Encode())
		}

		t.Run("no hint revokes nothing", func(t *testing.T) {
			tok, _ := r.login(t).tokens(t)
			for _, q := range []url.Values{{}, {"client_id": {e.conf.ID}}, {"client_id": {e.conf.ID}, "post_logout_redirect_uri": {confLogout}}} {
				resp := end(t, q)
				if resp.StatusCode != http.StatusFound {
					t.Fatalf("end_session %v: %d", q, resp.StatusCode)
				}
			}
			if s, _ := e.userinfo(t, tok.AccessToken); s != http.StatusOK {
				t.Fatal("logout without an id_token_hint revoked a grant")
			}
		})
		t.Run("post_logout_redirect_uri near misses", func(t *testing.T) {
			tok, _ := r.login(t).tokens(t)
			hint := tok.Extra("id_token").(string)
			for _, u := range []string{confLogout + "/", confLogout + "?x=1", "https://evil.example/bye", "https://APP.example.com/bye"} {
				resp := end(t, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {u}, "state": {"s"}})
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
					t.Fatalf("post_logout_redirect_uri %s: %d %s", u, resp.StatusCode, resp.Header.Get("Location"))
				}
			}
		})
		t.Run("logout", func(t *testing.T) {
			tok, _ := r.login(t).tokens(t)
			tok2, _ := r.login(t).tokens(t)
			other, _ := e.pubRP("openid", "offline_access").login(t).tokens(t)
			resp := end(t, url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {confLogout}, "state": {"s1"}})
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != confLogout+"?state=s1" {
				t.Fatalf("logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			for _, at := range []string{tok.AccessToken, tok2.AccessToken} {
				if s, _ := e.userinfo(t, at); s == http.StatusOK {
					t.Fatal("a grant of the subject for this client survived logout")
				}
			}
			if s, _ := e.userinfo(t, other.AccessToken); s != http.StatusOK {
				t.Fatal("logout from one client revoked another client's grant")
			}
		})
		t.Run("default page", func(t *testing.T) {
			resp := end(t, url.Values{"post_logout_redirect_uri": {"https://evil.example/"}})
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != e.issuer+"/logged-out" {
				t.Fatalf("logout without a client: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			if r := newBrowser(t).get(t, e.issuer+"/logged-out"); r.StatusCode != http.StatusOK {
				t.Fatalf("logged-out page: %d", r.StatusCode)
			}
		})
	})
}

// TestTenantAllowList: a client limited to some tenants cannot obtain
// tokens for others, at routing, at completion and at token issuance.
func TestTenantAllowList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		otherTenant, err := e.dir.CreateTenant(ctx, tenants.NewTenant{Name: "Globex"})
		check(t, err, "other tenant")
		setAllowed := func(t *testing.T, ids ...string) {
			t.Helper()
			_, err := e.st.UpdateClient(ctx, e.conf.ID, func(c *tenants.Client) error {
				c.AllowedTenants = ids
				return nil
			})
			check(t, err, "update allow-list")
		}
		t.Cleanup(func() { setAllowed(t) })
		r := e.confRP("openid", "offline_access")

		t.Run("StartSAML", func(t *testing.T) {
			setAllowed(t, otherTenant.ID)
			defer setAllowed(t)
			f := r.authorize(t)
			err := e.p.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, "id-x1", e.clock.Now().Add(time.Minute))
			var tna *oidcprovider.TenantNotAllowedError
			if !errors.As(err, &tna) || !errors.Is(err, oidcprovider.ErrTenantNotAllowed) || tna.TenantID != e.tenant.ID || tna.ClientID != e.conf.ID {
				t.Fatalf("StartSAML for an excluded tenant: %v", err)
			}
		})
		t.Run("CompleteLogin", func(t *testing.T) {
			f := r.authorize(t)
			check(t, e.p.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, "id-x2", e.clock.Now().Add(time.Minute)), "StartSAML")
			_, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, "id-x2")
			check(t, err, "ACS")
			setAllowed(t, otherTenant.ID)
			defer setAllowed(t)
			_, err = e.p.CompleteLogin(ctx, f.loginID, e.ident, e.conn, e.clock.Now())
			var tna *oidcprovider.TenantNotAllowedError
			if !errors.As(err, &tna) {
				t.Fatalf("CompleteLogin for an excluded tenant: %v", err)
			}
		})
		t.Run("token issuance", func(t *testing.T) {
			f := r.login(t)
			setAllowed(t, otherTenant.ID)
			defer setAllowed(t)
			if _, err := f.exchange(t); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("code exchange for an excluded tenant: %v", err)
			}
		})
		t.Run("refresh", func(t *testing.T) {
			tok, _ := r.login(t).tokens(t)
			setAllowed(t, otherTenant.ID)
			defer setAllowed(t)
			if status, body := e.refresh(t, e.conf, e.confSecret, tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Fatalf("refresh for an excluded tenant: %d %v", status, body)
			}
		})
		t.Run("organization parameter", func(t *testing.T) {
			setAllowed(t, otherTenant.ID)
			defer setAllowed(t)
			q := e.baseQuery(e.conf.ID, confRedirect)
			q.Set("organization", e.tenant.ID)
			wantErrorRedirect(t, e.authorizeRaw(t, q), confRedirect, "access_denied")
		})
		t.Run("allowed tenant", func(t *testing.T) {
			setAllowed(t, otherTenant.ID, e.tenant.ID)
			defer setAllowed(t)
			r.login(t).tokens(t)
		})
	})
}
