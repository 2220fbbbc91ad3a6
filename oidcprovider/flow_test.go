package oidcprovider_test

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/store/storetest"
)

// TestCodeFlow runs the whole flow with an independent RP for each way a
// client authenticates.
func TestCodeFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		tests := []struct {
			name string
			rp   *rp
		}{
			{"confidential client_secret_basic", e.rp(e.conf, e.confSecret, confRedirect, oauth2.AuthStyleInHeader)},
			{"confidential client_secret_post", e.rp(e.conf, e.confSecret, confRedirect, oauth2.AuthStyleInParams)},
			{"public none with PKCE", e.pubRP()},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := tt.rp.login(t)
				tok, idt := f.tokens(t)
				cid := tt.rp.oauth.ClientID
				c := claimsOf(t, idt)
				if !reflect.DeepEqual(idt.Audience, []string{cid}) || c["azp"] != cid {
					t.Fatalf("aud %v azp %v, want %s", idt.Audience, c["azp"], cid)
				}
				if idt.Subject != e.ident.Subject || idt.Issuer != e.issuer {
					t.Fatalf("sub %s iss %s", idt.Subject, idt.Issuer)
				}
				if life := idt.Expiry.Sub(idt.IssuedAt); life > 16*time.Minute {
					t.Fatalf("ID token lives %s, want a short expiry", life)
				}
				if tok.RefreshToken != "" {
					t.Fatal("refresh token without offline_access")
				}
				if tok.TokenType != "Bearer" || strings.Count(tok.AccessToken, ".") != 4 {
					t.Fatalf("access token %q of type %s is not opaque (JWE)", tok.AccessToken, tok.TokenType)
				}
				ui, err := tt.rp.provider.UserInfo(tt.rp.ctx, oauth2.StaticTokenSource(tok))
				check(t, err, "userinfo")
				if ui.Subject != e.ident.Subject || ui.Email != "ada@acme.example" || !ui.EmailVerified {
					t.Fatalf("userinfo %+v", ui)
				}
			})
		}
	})
}

// TestClaimsByScope pins the claim sets of the ID token and /userinfo.
func TestClaimsByScope(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		registered := []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "client_id", "at_hash", "c_hash"}
		always := []string{"sub", "org_id", "connection_id", "idp"}
		tests := []struct {
			scopes       []string
			idToken      []string // beyond the registered claims
			userinfo     []string
			absentInBoth []string
		}{
			{[]string{"openid"}, always, always, []string{"email", "name", "groups", "raw_attributes"}},
			{[]string{"openid", "email"}, append(always, "email", "email_verified"), append(always, "email", "email_verified"), []string{"name"}},
			{[]string{"openid", "profile"}, append(always, "name", "given_name", "family_name"), append(always, "name", "given_name", "family_name"), []string{"email"}},
			{[]string{"openid", "groups"}, append(always, "groups"), append(always, "groups"), []string{"email"}},
			{[]string{"openid", "raw_attributes"}, always, append(always, "raw_attributes"), []string{"email"}},
			{[]string{"openid", "email", "profile", "groups", "raw_attributes", "unknown_scope"},
				append(always, "email", "email_verified", "name", "given_name", "family_name", "groups"),
				append(always, "email", "email_verified", "name", "given_name", "family_name", "groups", "raw_attributes"), nil},
		}
		for _, tt := range tests {
			t.Run(strings.Join(tt.scopes, "+"), func(t *testing.T) {
				r := e.confRP(tt.scopes...)
				tok, idt := r.login(t).tokens(t)
				got := claimsOf(t, idt)
				want := map[string]bool{}
				for _, k := range append(slices.Clone(registered), tt.idToken...) {
					want[k] = true
				}
				for k := range got {
					if !want[k] {
						t.Errorf("ID token has unexpected claim %s", k)
					}
				}
				for _, k := range tt.idToken {
					if _, ok := got[k]; !ok {
						t.Errorf("ID token lacks %s (claims %s)", k, keys(got))
					}
				}
				status, ui := e.userinfo(t, tok.AccessToken)
				if status != http.StatusOK {
					t.Fatalf("userinfo status %d", status)
				}
				if keys(ui) != keys(toSet(tt.userinfo)) {
					t.Errorf("userinfo claims %s, want %s", keys(ui), keys(toSet(tt.userinfo)))
				}
				for _, k := range tt.absentInBoth {
					if _, ok := got[k]; ok {
						t.Errorf("ID token has %s", k)
					}
				}
				// Values, where present.
				wantValues := map[string]any{
					"sub": e.ident.Subject, "org_id": e.tenant.ID, "connection_id": e.conn.ID, "idp": "okta",
					"email": "ada@acme.example", "email_verified": true, "name": "Ada Lovelace",
					"given_name": "Ada", "family_name": "Lovelace", "groups": []any{"admins", "eng"},
					"raw_attributes": map[string]any{"mail": []any{"ada@acme.example"}, "department": []any{"R&D"}},
				}
				for _, m := range []map[string]any{got, ui} {
					for k, v := range m {
						if w, ok := wantValues[k]; ok && !reflect.DeepEqual(v, w) {
							t.Errorf("claim %s = %#v, want %#v", k, v, w)
						}
					}
				}
			})
		}
	})
}

func toSet(l []string) map[string]any {
	m := map[string]any{}
	for _, k := range l {
		m[k] = true
	}
	return m
}

// TestEmailVerifiedFalseIsExplicit: an unverified email is reported as
// false, not omitted (zitadel's struct field is omitempty).
func TestEmailVerifiedFalseIsExplicit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		id := e.ident
		id.EmailVerified = false
		id, err := e.st.UpsertIdentity(t.Context(), id)
		check(t, err, "upsert")
		r := e.confRP("openid", "email")
		f := r.authorize(t)
		f.callback(t, e.completeSAML(t, f.loginID, id, e.conn))
		tok, idt := f.tokens(t)
		if v, ok := claimsOf(t, idt)["email_verified"]; !ok || v != false {
			t.Fatalf("ID token email_verified = %v (present %v), want false", v, ok)
		}
		_, ui := e.userinfo(t, tok.AccessToken)
		if v, ok := ui["email_verified"]; !ok || v != false {
			t.Fatalf("userinfo email_verified = %v (present %v), want false", v, ok)
		}
	})
}

// TestDiscovery: what is advertised is what is served, and the issuer is
// static whatever the Host header says.
func TestDiscovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		for _, host := range []string{"", "evil.example", "evil.example:443"} {
			_, d, hdr := e.getJSON(t, "/.well-known/openid-configuration", map[string]string{"Host": host, "X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example"})
			if d["issuer"] != e.issuer || d["token_endpoint"] != e.issuer+"/oauth/token" {
				t.Fatalf("Host %q: issuer %v token endpoint %v", host, d["issuer"], d["token_endpoint"])
			}
			if hdr.Get("Cache-Control") == "" {
				t.Error("discovery is not cacheable")
			}
		}
		_, d, _ := e.getJSON(t, "/.well-known/openid-configuration", nil)
		want := map[string]any{
			"response_types_supported":              []any{"code"},
			"response_modes_supported":              []any{"query"},
			"grant_types_supported":                 []any{"authorization_code", "refresh_token"},
			"code_challenge_methods_supported":      []any{"S256"},
			"id_token_signing_alg_values_supported": []any{"RS256"},
			"token_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post", "none"},
			"scopes_supported":                      []any{"openid", "profile", "email", "groups", "raw_attributes", "offline_access"},
		}
		for k, v := range want {
			if !reflect.DeepEqual(d[k], v) {
				t.Errorf("%s = %v, want %v", k, d[k], v)
			}
		}
		for _, k := range []string{"device_authorization_endpoint", "request_parameter_supported"} {
			if _, ok := d[k]; ok {
				t.Errorf("discovery advertises %s", k)
			}
		}
		claims, _ := d["claims_supported"].([]any)
		for _, c := range []string{"sub", "email", "email_verified", "name", "given_name", "family_name", "groups", "org_id", "connection_id", "idp", "raw_attributes"} {
			if !slices.Contains(claims, any(c)) {
				t.Errorf("claims_supported lacks %s", c)
			}
		}
	})
}

// TestRoutesNotServed: zitadel's extra routes are not exposed.
func TestRoutesNotServed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		for _, path := range []string{"/healthz", "/ready", "/device_authorization", "/nope"} {
			resp, err := http.Get(e.issuer + path)
			check(t, err, path)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404", path, resp.StatusCode)
			}
		}
		status, body, _ := e.form(t, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"x"}}, "", "")
		if status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
			t.Errorf("jwt-bearer grant: %d %v", status, body)
		}
		status, body, _ = e.form(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, e.conf.ID, e.confSecret)
		if status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
			t.Errorf("client_credentials grant: %d %v", status, body)
		}
	})
}

// TestIDTokenHasExactlyOneSignatureKey is a sanity check on what the RP
// verifies: the kid of the ID token is in the JWKS.
func TestIDTokenKid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		_, idt := e.confRP().login(t).tokens(t)
		_ = idt
		_, jwks, _ := e.getJSON(t, "/keys", nil)
		ks, _ := jwks["keys"].([]any)
		if len(ks) != 1 {
			t.Fatalf("JWKS has %d keys, want 1", len(ks))
		}
		k := ks[0].(map[string]any)
		if k["use"] != "sig" || k["alg"] != "RS256" || k["kty"] != "RSA" {
			t.Fatalf("JWK %v", k)
		}
		if _, ok := k["d"]; ok {
			t.Fatal("JWKS leaks a private key")
		}
	})
}

var _ = gooidc.ScopeOpenID
