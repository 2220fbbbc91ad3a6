package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/store/storetest"
)

// TestEndToEndLogin runs whole logins over real HTTP for both stores: the
// hosted page, the IdP simulator, the ACS, the code exchange verified by
// go-oidc (an RP library independent of the provider's), userinfo.
func TestEndToEndLogin(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b, envOptions{})
			acme, acmeConn := e.tenant("Acme", "acme.com")
			beta, betaConn := e.tenant("Beta", "beta.com")
			c := e.client(nil)

			var janeSub string
			t.Run("hosted page", func(t *testing.T) {
				e.setUser(user("jane@acme.com"), saml.Scenario{})
				br := newBrowser(t)
				f := newFlow()
				p := br.open(http.MethodGet, c.authURL(f, nil), nil)
				if p.URL.Path != "/login" || !strings.Contains(p.Body, `name="email"`) || !strings.Contains(p.Body, "Sign in to App") {
					t.Fatalf("hosted page: %s %.300s", p.URL, p.Body)
				}
				// An unknown domain says so plainly and lets the user try again.
				p2 := br.submit(p, map[string]string{"email": "jane@unknown-corp.com"})
				if p2.Status != http.StatusUnprocessableEntity || !strings.Contains(p2.Body, "not set up for unknown-corp.com") || !strings.Contains(p2.Body, `name="email"`) {
					t.Fatalf("unknown domain: %d %.500s", p2.Status, p2.Body)
				}
				p3 := br.submit(p2, map[string]string{"email": "Jane@ACME.com"})
				p3 = br.submit(p3, nil)
				tok := e.redeem(c, f, p3)
				cl := tok.claims
				if cl["email"] != "jane@acme.com" || cl["email_verified"] != true || cl["org_id"] != acme || cl["connection_id"] != acmeConn ||
					cl["idp"] != "okta" || cl["given_name"] != "Alice" || cl["family_name"] != "Example" || cl["name"] != "Alice Example" {
					t.Fatalf("ID token claims: %s", fmtClaims(cl))
				}
				if g, _ := cl["groups"].([]any); len(g) != 2 {
					t.Fatalf("groups: %v", cl["groups"])
				}
				if _, ok := cl["raw_attributes"]; ok {
					t.Fatal("raw_attributes belongs in userinfo only")
				}
				if ra, _ := tok.userinfo["raw_attributes"].(map[string]any); len(ra) == 0 || tok.userinfo["sub"] != tok.idToken.Subject {
					t.Fatalf("userinfo: %v", tok.userinfo)
				}
				if tok.tok.RefreshToken == "" {
					t.Fatal("offline_access gave no refresh token")
				}
				janeSub = tok.idToken.Subject
			})

			t.Run("repeat login keeps sub, login_hint skips the page", func(t *testing.T) {
				br := newBrowser(t)
				f := newFlow()
				p := e.signIn(br, c, f, map[string]string{"login_hint": "jane@acme.com"}, "")
				tok := e.redeem(c, f, p)
				if tok.idToken.Subject != janeSub || janeSub == "" {
					t.Fatalf("sub %q, want %q", tok.idToken.Subject, janeSub)
				}
			})

			t.Run("organization skips the page", func(t *testing.T) {
				e.setUser(user("bob@beta.com"), saml.Scenario{})
				br := newBrowser(t)
				f := newFlow()
				p := br.open(http.MethodGet, c.authURL(f, map[string]string{"organization": beta}), nil)
				if p.URL.Path == "/login" {
					t.Fatalf("organization did not skip the hosted page: %s", p.URL)
				}
				p = br.submit(p, nil)
				tok := e.redeem(c, f, p)
				if tok.claims["org_id"] != beta || tok.claims["connection_id"] != betaConn {
					t.Fatalf("claims %v", tok.claims)
				}
			})

			t.Run("connection skips the page", func(t *testing.T) {
				e.setUser(user("jane@acme.com"), saml.Scenario{})
				br := newBrowser(t)
				f := newFlow()
				p := br.open(http.MethodGet, c.authURL(f, map[string]string{"connection": acmeConn}), nil)
				if p.URL.Path == "/login" {
					t.Fatalf("connection did not skip the hosted page: %s", p.URL)
				}
				tok := e.redeem(c, f, br.submit(p, nil))
				if tok.claims["connection_id"] != acmeConn || tok.idToken.Subject != janeSub {
					t.Fatalf("claims %v", tok.claims)
				}
			})

			t.Run("same email at two tenants: two subs, verified only at the owner", func(t *testing.T) {
				// Beta's IdP asserts an acme.com address: it gets its own
				// sub and email_verified=false, never Jane's account.
				e.setUser(user("jane@acme.com"), saml.Scenario{})
				br := newBrowser(t)
				f := newFlow()
				p := e.signIn(br, c, f, map[string]string{"organization": beta}, "")
				tok := e.redeem(c, f, p)
				if tok.idToken.Subject == janeSub || tok.claims["email_verified"] != false || tok.claims["org_id"] != beta {
					t.Fatalf("cross-tenant email: sub %s (jane %s), claims %v", tok.idToken.Subject, janeSub, tok.claims)
				}
			})

			t.Run("refresh rotation and reuse detection", func(t *testing.T) {
				e.setUser(user("jane@acme.com"), saml.Scenario{})
				br := newBrowser(t)
				f := newFlow()
				tok := e.redeem(c, f, e.signIn(br, c, f, map[string]string{"login_hint": "jane@acme.com"}, ""))
				ctx := context.Background()
				first := tok.tok.RefreshToken
				rotated, err := c.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token()
				if err != nil || rotated.RefreshToken == "" || rotated.RefreshToken == first {
					t.Fatalf("refresh: %v %+v", err, rotated)
				}
				if _, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(rotated)); err != nil {
					t.Fatalf("userinfo with the refreshed token: %v", err)
				}
				// Reusing the rotated-out token revokes the whole family.
				if _, err := c.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token(); err == nil {
					t.Fatal("a used refresh token was accepted again")
				}
				if _, err := c.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rotated.RefreshToken}).Token(); err == nil {
					t.Fatal("the family survived refresh-token reuse")
				}
				if _, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(rotated)); err == nil {
					t.Fatal("the access token survived refresh-token reuse")
				}
			})

			t.Run("revocation", func(t *testing.T) {
				br := newBrowser(t)
				f := newFlow()
				tok := e.redeem(c, f, e.signIn(br, c, f, map[string]string{"login_hint": "jane@acme.com"}, ""))
				revoke(t, e, c, tok.tok.AccessToken)
				if _, err := c.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok.tok)); err == nil {
					t.Fatal("a revoked access token still works at userinfo")
				}
				if active := introspect(t, e, c, tok.tok.AccessToken); active {
					t.Fatal("introspection says a revoked token is active")
				}
			})

			t.Run("end session", func(t *testing.T) {
				br := newBrowser(t)
				f := newFlow()
				tok := e.redeem(c, f, e.signIn(br, c, f, map[string]string{"login_hint": "jane@acme.com"}, ""))
				var disc struct {
					EndSession string `json:"end_session_endpoint"`
				}
				_ = c.provider.Claims(&disc)
				p := br.open(http.MethodGet, disc.EndSession+"?"+url.Values{
					"id_token_hint": {tok.raw}, "post_logout_redirect_uri": {e.app.URL + "/bye"}, "state": {"s1"},
				}.Encode(), nil)
				if p.URL.Path != "/bye" || p.URL.Query().Get("state") != "s1" {
					t.Fatalf("end session landed on %s", p.URL)
				}
				if _, err := c.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.tok.RefreshToken}).Token(); err == nil {
					t.Fatal("refresh token survived logout")
				}
				// A post_logout_redirect_uri that is not registered is not followed.
				p = br.open(http.MethodGet, disc.EndSession+"?"+url.Values{"id_token_hint": {tok.raw}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode(), nil)
				if p.URL.Host == "evil.example" {
					t.Fatal("open redirect at end_session")
				}
			})

			t.Run("client limited to tenant A cannot finish a login for tenant B", func(t *testing.T) {
				limited := e.client(map[string]any{"allowed_tenants": []string{acme}})
				e.setUser(user("bob@beta.com"), saml.Scenario{})
				br := newBrowser(t)
				f := newFlow()
				p := br.open(http.MethodGet, limited.authURL(f, nil), nil)
				p = br.submit(p, map[string]string{"email": "bob@beta.com"})
				if p.URL.Path != "/login" || p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "not set up for beta.com") {
					t.Fatalf("limited client: %s %d %.400s", p.URL, p.Status, p.Body)
				}
				// Naming B's organization is refused at the route too.
				p = br.open(http.MethodGet, limited.authURL(newFlow(), map[string]string{"organization": beta}), nil)
				if p.URL.Host == strings.TrimPrefix(e.idp.URL, "http://") || strings.Contains(p.URL.RawQuery, "code=") {
					t.Fatalf("organization=%s reached the IdP for a client limited to %s: %s", beta, acme, p.URL)
				}
			})

			t.Run("a response for tenant A is rejected at tenant B's ACS", func(t *testing.T) {
				e.setUser(user("jane@acme.com"), saml.Scenario{})
				br := newBrowser(t)
				p := br.open(http.MethodGet, c.authURL(newFlow(), map[string]string{"login_hint": "jane@acme.com"}), nil)
				f := p.forms(t)[0] // the IdP's page, posting to Acme's ACS
				if !strings.Contains(f.action, acmeConn) {
					t.Fatalf("IdP form posts to %s", f.action)
				}
				p = br.open(http.MethodPost, strings.Replace(f.action, acmeConn, betaConn, 1), f.fields)
				if p.Status < 400 || strings.Contains(p.URL.RawQuery, "code=") {
					t.Fatalf("B's ACS accepted A's response: %s %d", p.URL, p.Status)
				}
				if got := e.auditTypes(beta)["login.failed"]; !slices.Contains(got, "in_response_to_unknown") {
					t.Fatalf("B's audit reasons %v", got)
				}
				// The same response still works where it belongs, once.
				p = br.open(http.MethodPost, f.action, f.fields)
				if !strings.Contains(p.URL.RawQuery, "code=") {
					t.Fatalf("A's ACS refused its own response: %s %d", p.URL, p.Status)
				}
				if p = br.open(http.MethodPost, f.action, f.fields); p.Status < 400 {
					t.Fatalf("a replayed response was accepted: %d", p.Status)
				}
			})

			t.Run("audit", func(t *testing.T) {
				ev := e.auditTypes(acme)
				if len(ev["login.succeeded"]) == 0 {
					t.Fatalf("no login.succeeded for acme: %v", ev)
				}
				all := e.auditTypes("")
				for _, reason := range []string{"revoked_by_client", "refresh_token_reused", "logout"} {
					if !slices.Contains(all["token.revoked"], reason) {
						t.Errorf("no token.revoked event with reason %s: %v", reason, all["token.revoked"])
					}
				}
			})
		})
	}
}

// TestEndToEndRejections checks that rejected logins record a specific
// reason, show the user a generic page with a reference, and create no
// identity and no code.
func TestEndToEndRejections(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b, envOptions{})
			acme, _ := e.tenant("Acme", "acme.com")
			c := e.client(nil)
			tests := []struct {
				scenario saml.ScenarioName
				reason   string
			}{
				{saml.ScenarioExpired, "expired"},
				{saml.ScenarioNotYetValid, "not_yet_valid"},
				{saml.ScenarioWrongSignature, "signature_invalid"},
				{saml.ScenarioUnsigned, "signature_missing"},
				{saml.ScenarioWrongAudience, "audience_mismatch"},
				{saml.ScenarioWrongRecipient, "recipient_mismatch"},
				{saml.ScenarioWrongDestination, "destination_mismatch"},
				{saml.ScenarioWrongIssuer, "issuer_mismatch"},
				{saml.ScenarioIdPError, "idp_status"},
			}
			for _, tt := range tests {
				t.Run(string(tt.scenario), func(t *testing.T) {
					e.setUser(user("eve@acme.com"), saml.Scenario{Name: tt.scenario, StatusMessage: "MFA failed"})
					br := newBrowser(t)
					p := e.signIn(br, c, newFlow(), map[string]string{"login_hint": "eve@acme.com"}, "")
					if p.Status < 400 || strings.Contains(p.URL.RawQuery, "code=") {
						t.Fatalf("scenario %s was not rejected: %s %d", tt.scenario, p.URL, p.Status)
					}
					// Reason codes and operator detail stay in the log and the
					// audit trail (single-word codes like "expired" are plain
					// English and may appear in the page's own text).
					leaks := strings.Contains(tt.reason, "_") && strings.Contains(p.Body, tt.reason)
					if !strings.Contains(p.Body, "Reference") || leaks || strings.Contains(p.Body, "MFA failed") || strings.Contains(p.Body, "saml:") {
						t.Fatalf("the error page must show a reference and no internal reason: %.600s", p.Body)
					}
					if got := e.auditTypes(acme)["login.failed"]; !slices.Contains(got, tt.reason) {
						t.Fatalf("audit reasons %v lack %s", got, tt.reason)
					}
				})
			}
			var ids struct {
				Data []any `json:"data"`
			}
			e.admin.do("GET", "/api/v1/identities?tenant_id="+acme, nil).json(t, &ids)
			if len(ids.Data) != 0 {
				t.Fatalf("rejected logins created %d identities", len(ids.Data))
			}
		})
	}
}

// TestReplicasServeAlternateSteps runs logins through two broker instances
// on one PostgreSQL database, every request going to the other replica.
func TestReplicasServeAlternateSteps(t *testing.T) {
	pg := storetest.Backends()[1]
	e := newEnv(t, pg, envOptions{replicas: 2})
	e.tenant("Acme", "acme.com")
	c := e.client(nil)
	e.setUser(user("jane@acme.com"), saml.Scenario{})
	var sub string
	for i := 0; i < 3; i++ {
		br := newBrowser(t)
		f := newFlow()
		tok := e.redeem(c, f, e.signIn(br, c, f, nil, "jane@acme.com"))
		if sub != "" && tok.idToken.Subject != sub {
			t.Fatalf("sub changed across replicas: %s then %s", sub, tok.idToken.Subject)
		}
		sub = tok.idToken.Subject
		if _, err := c.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.tok.RefreshToken}).Token(); err != nil {
			t.Fatalf("refresh on the other replica: %v", err)
		}
	}
}

func revoke(t *testing.T, e *env, c *client, token string) {
	t.Helper()
	var disc struct {
		Revocation string `json:"revocation_endpoint"`
	}
	_ = c.provider.Claims(&disc)
	req, _ := http.NewRequest(http.MethodPost, disc.Revocation, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revocation: %d", res.StatusCode)
	}
}

func introspect(t *testing.T, e *env, c *client, token string) bool {
	t.Helper()
	var disc struct {
		Introspection string `json:"introspection_endpoint"`
	}
	_ = c.provider.Claims(&disc)
	req, _ := http.NewRequest(http.MethodPost, disc.Introspection, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Active bool `json:"active"`
	}
	if err := jsonDecode(res, &out); err != nil {
		t.Fatal(err)
	}
	return out.Active
}

// TestIdentityDeactivation: deactivating an identity revokes its tokens
// (introspection, userinfo and refresh see it at once) and refuses its
// logins with reason identity_deactivated; reactivating lets it back in
// with the same sub.
func TestIdentityDeactivation(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b, envOptions{})
			acme, _ := e.tenant("Acme", "acme.com")
			c := e.client(nil)
			e.setUser(user("jane@acme.com"), saml.Scenario{})
			f := newFlow()
			tok := e.redeem(c, f, e.signIn(newBrowser(t), c, f, map[string]string{"login_hint": "jane@acme.com"}, ""))
			sub := tok.idToken.Subject

			var list struct {
				Data []struct {
					Sub    string `json:"sub"`
					Status string `json:"status"`
				} `json:"data"`
			}
			e.admin.do("GET", "/api/v1/identities?tenant_id="+acme, nil).json(t, &list)
			if len(list.Data) != 1 || list.Data[0].Sub != sub || list.Data[0].Status != "active" {
				t.Fatalf("identities: %+v", list.Data)
			}
			if r := e.admin.do("POST", "/api/v1/identities/"+sub+"/deactivate", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"deactivated"`) {
				t.Fatalf("deactivate: %d %s", r.Status, r.Body)
			}
			ctx := context.Background()
			if introspect(t, e, c, tok.tok.AccessToken) {
				t.Error("introspection: a deactivated identity's token is active")
			}
			if _, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok.tok)); err == nil {
				t.Error("userinfo works for a deactivated identity")
			}
			if _, err := c.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.tok.RefreshToken}).Token(); err == nil {
				t.Error("refresh works for a deactivated identity")
			}
			p := e.signIn(newBrowser(t), c, newFlow(), map[string]string{"login_hint": "jane@acme.com"}, "")
			if p.Status != http.StatusForbidden || strings.Contains(p.URL.RawQuery, "code=") || !strings.Contains(p.Body, "deactivated") {
				t.Fatalf("login of a deactivated identity: %s %d", p.URL, p.Status)
			}
			ev := e.auditTypes(acme)
			if !slices.Contains(ev["login.failed"], "identity_deactivated") || len(ev["identity.deactivated"]) != 1 {
				t.Fatalf("audit: %v", ev)
			}
			e.admin.do("POST", "/api/v1/identities/"+sub+"/reactivate", nil)
			f = newFlow()
			again := e.redeem(c, f, e.signIn(newBrowser(t), c, f, map[string]string{"login_hint": "jane@acme.com"}, ""))
			if again.idToken.Subject != sub {
				t.Fatalf("sub after reactivation %s, want %s", again.idToken.Subject, sub)
			}
		})
	}
}
