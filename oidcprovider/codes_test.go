package oidcprovider_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/store/storetest"
)

// authorizeRaw sends an authorization request built by hand and returns
// the response (no redirects followed).
func (e *env) authorizeRaw(t testing.TB, q url.Values) *http.Response {
	t.Helper()
	return newBrowser(t).get(t, e.issuer+"/authorize?"+q.Encode())
}

func (e *env) baseQuery(clientID, redirect string) url.Values {
	return url.Values{
		"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid email"},
		"state": {"st"}, "nonce": {"n"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
	}
}

// wantErrorRedirect checks an error sent back to a validated redirect_uri.
func wantErrorRedirect(t *testing.T, resp *http.Response, redirect, code string) {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d (%s), want an error redirect", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	check(t, err, "location")
	params := loc.Query()
	if loc.Fragment != "" {
		// Errors for implicit response types (and response_mode=fragment)
		// go in the fragment, as OAuth 2.0 Multiple Response Types says.
		params, _ = url.ParseQuery(loc.Fragment)
	}
	base := *loc
	base.RawQuery, base.Fragment = "", ""
	if base.String() != redirect || params.Get("error") != code || params.Get("state") != "st" {
		t.Fatalf("redirect %s, want %s with error=%s and state=st", loc, redirect, code)
	}
}

// wantNoRedirect checks a refusal that must not go to the requested URI.
func wantNoRedirect(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("status %d location %q, want a plain 400", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		tests := []struct {
			name   string
			client string
			edit   func(q url.Values)
			want   string // OAuth error redirected to the client; "" = plain 400, no redirect
		}{
			{"PKCE plain", e.conf.ID, func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
			{"PKCE method missing (means plain)", e.conf.ID, func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
			{"PKCE challenge not S256-shaped", e.conf.ID, func(q url.Values) { q.Set("code_challenge", "short") }, "invalid_request"},
			{"public client without PKCE", e.pub.ID, func(q url.Values) {
				q.Set("redirect_uri", pubRedirect)
				q.Del("code_challenge")
				q.Del("code_challenge_method")
			}, "invalid_request"},
			{"implicit id_token", e.conf.ID, func(q url.Values) { q.Set("response_type", "id_token") }, "unauthorized_client"},
			{"implicit id_token token", e.conf.ID, func(q url.Values) { q.Set("response_type", "id_token token") }, "unauthorized_client"},
			{"response_mode form_post", e.conf.ID, func(q url.Values) { q.Set("response_mode", "form_post") }, "invalid_request"},
			{"response_mode fragment", e.conf.ID, func(q url.Values) { q.Set("response_mode", "fragment") }, "invalid_request"},
			{"no openid scope", e.conf.ID, func(q url.Values) { q.Set("scope", "email") }, "invalid_scope"},
			{"prompt=none (no broker session)", e.conf.ID, func(q url.Values) { q.Set("prompt", "none") }, "login_required"},
			{"request object", e.conf.ID, func(q url.Values) { q.Set("request", "eyJ.x.y") }, ""},
			{"request_uri", e.conf.ID, func(q url.Values) { q.Set("request_uri", "https://evil.example/r") }, ""},
			{"unknown client", "cli_unknown0000000000000000000", nil, ""},
			{"state too long", e.conf.ID, func(q url.Values) { q.Set("state", strings.Repeat("s", 1025)) }, ""},
			{"nonce too long", e.conf.ID, func(q url.Values) { q.Set("nonce", strings.Repeat("n", 513)) }, ""},
			{"login_hint too long", e.conf.ID, func(q url.Values) { q.Set("login_hint", strings.Repeat("l", 513)) }, ""},
			{"too many scopes", e.conf.ID, func(q url.Values) { q.Set("scope", "openid"+strings.Repeat(" x", 20)) }, ""},
			{"repeated parameter", e.conf.ID, func(q url.Values) { q.Add("state", "again") }, ""},
			{"organization not a tenant id", e.conf.ID, func(q url.Values) { q.Set("organization", "acme") }, ""},
			{"connection not a connection id", e.conf.ID, func(q url.Values) { q.Set("connection", "../x") }, ""},
			{"domain_hint not a domain", e.conf.ID, func(q url.Values) { q.Set("domain_hint", "com") }, ""},
			{"control character", e.conf.ID, func(q url.Values) { q.Set("state", "a\nb") }, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q := e.baseQuery(tt.client, confRedirect)
				if tt.edit != nil {
					tt.edit(q)
				}
				resp := e.authorizeRaw(t, q)
				if tt.want == "" {
					wantNoRedirect(t, resp)
					return
				}
				wantErrorRedirect(t, resp, q.Get("redirect_uri"), tt.want)
			})
		}
	})
}

// TestRedirectURIExactMatch: near misses of a registered URI are refused
// without a redirect (no open redirect, no code to a look-alike).
func TestRedirectURIExactMatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		nearMisses := []struct {
			name, client, uri string
		}{
			{"trailing slash", e.conf.ID, confRedirect + "/"},
			{"extra query", e.conf.ID, confRedirect + "?next=https://evil.example"},
			{"case of the host", e.conf.ID, "https://APP.example.com/callback"},
			{"case of the path", e.conf.ID, "https://app.example.com/Callback"},
			{"percent-encoded path", e.conf.ID, "https://app.example.com/c%61llback"},
			{"http instead of https", e.conf.ID, "http://app.example.com/callback"},
			{"explicit default port", e.conf.ID, "https://app.example.com:443/callback"},
			{"userinfo", e.conf.ID, "https://app.example.com@evil.example/callback"},
			{"fragment", e.conf.ID, confRedirect + "#x"},
			{"other client's URI", e.conf.ID, pubRedirect},
			{"loopback on another port", e.pub.ID, "http://127.0.0.1:9998/cb"},
			{"localhost for 127.0.0.1", e.pub.ID, "http://localhost:9999/cb"},
		}
		for _, tt := range nearMisses {
			t.Run(tt.name, func(t *testing.T) {
				wantNoRedirect(t, e.authorizeRaw(t, e.baseQuery(tt.client, tt.uri)))
			})
		}
		t.Run("exact", func(t *testing.T) {
			resp := e.authorizeRaw(t, e.baseQuery(e.pub.ID, pubRedirect))
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), e.issuer+"/login?id=lgn_") {
				t.Fatalf("exact loopback URI of a public client: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	})
}

func (e *env) tokenRequest(t testing.TB, f *flow, user, pass string, edit func(url.Values)) (int, map[string]any) {
	t.Helper()
	v := url.Values{"grant_type": {"authorization_code"}, "code": {f.code}, "redirect_uri": {f.rp.oauth.RedirectURL}, "code_verifier": {f.verifier}}
	if user == "" {
		v.Set("client_id", f.rp.oauth.ClientID)
	}
	if edit != nil {
		edit(v)
	}
	status, body, _ := e.form(t, "/oauth/token", v, user, pass)
	return status, body
}

// TestCodeBinding: a code is bound to its client, redirect_uri and PKCE
// verifier, and expires after 60 s. A refused attempt by another client
// or without the verifier does not spend it.
func TestCodeBinding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		other, otherSecret, err := e.dir.CreateClient(t.Context(), newClientInput("Other", "https://other.example/cb"))
		check(t, err, "other client")
		r := e.confRP()
		f := r.login(t)

		refusals := []struct {
			name       string
			user, pass string
			edit       func(url.Values)
			status     int
			err        string
		}{
			{"another client", other.ID, otherSecret.Reveal(), nil, 400, "invalid_grant"},
			{"wrong secret", e.conf.ID, "ssob_cs_wrong", nil, 401, "invalid_client"},
			{"no client authentication", "", "", nil, 401, "invalid_client"},
			{"wrong verifier", e.conf.ID, e.confSecret, func(v url.Values) { v.Set("code_verifier", oauth2.GenerateVerifier()) }, 400, "invalid_grant"},
			{"no verifier", e.conf.ID, e.confSecret, func(v url.Values) { v.Del("code_verifier") }, 400, "invalid_grant"},
			{"malformed verifier", e.conf.ID, e.confSecret, func(v url.Values) { v.Set("code_verifier", "short") }, 400, "invalid_request"},
			{"other redirect_uri", e.conf.ID, e.confSecret, func(v url.Values) { v.Set("redirect_uri", "https://app.example.com/other") }, 400, "invalid_grant"},
		}
		for _, tt := range refusals {
			status, body := e.tokenRequest(t, f, tt.user, tt.pass, tt.edit)
			if status != tt.status || body["error"] != tt.err {
				t.Errorf("%s: %d %v, want %d %s", tt.name, status, body, tt.status, tt.err)
			}
		}
		// A wrong redirect_uri is checked after the code is spent
		// (zitadel's order), so it comes last; before it, nothing spent
		// the code. Start over with a fresh one for the happy path.
		f = r.login(t)
		for _, tt := range refusals[:4] {
			e.tokenRequest(t, f, tt.user, tt.pass, tt.edit)
		}
		if _, err := f.exchange(t); err != nil {
			t.Fatalf("refused attempts by others spent the code: %v", err)
		}

		// Expiry: 60 s.
		f = r.login(t)
		e.clock.Advance(61 * time.Second)
		if _, err := f.exchange(t); err == nil {
			t.Fatal("a 61 s old code was accepted")
		}
	})
}

// TestCodeReplayRevokes: a code is single use, and its replay revokes
// what the first redemption issued.
func TestCodeReplayRevokes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		r := e.confRP("openid", "email", "offline_access")
		f := r.login(t)
		tok, _ := f.tokens(t)
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		if _, err := f.exchange(t); err == nil {
			t.Fatal("code redeemed twice")
		}
		if status, _ := e.userinfo(t, tok.AccessToken); status == http.StatusOK {
			t.Fatal("access token of a replayed code still works at userinfo")
		}
		if got := e.introspect(t, tok.AccessToken); got["active"] != false || len(got) != 1 {
			t.Fatalf("introspection of a replayed code's token: %v", got)
		}
		if status, body := e.refresh(t, e.conf, e.confSecret, tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("refresh token of a replayed code: %d %v", status, body)
		}
		if !strings.Contains(e.logs.String(), "authorization code replayed") {
			t.Error("the replay is not logged")
		}
	})
}

// TestConcurrentCodeRedemption: of two simultaneous redemptions at most
// one gets tokens; the other is a replay, so whatever was issued is
// revoked in the end.
func TestConcurrentCodeRedemption(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		r := e.confRP()
		for round := range 5 {
			f := r.login(t)
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				tokens []*oauth2.Token
			)
			start := make(chan struct{})
			for range 2 {
				wg.Go(func() {
					<-start
					tok, err := f.exchange(t)
					if err == nil {
						mu.Lock()
						tokens = append(tokens, tok)
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			if len(tokens) > 1 {
				t.Fatalf("round %d: both redemptions got tokens", round)
			}
			for _, tok := range tokens {
				if got := e.introspect(t, tok.AccessToken); got["active"] != false {
					t.Fatalf("round %d: the winner's token survived the concurrent replay", round)
				}
			}
		}
	})
}
