package oidcprovider_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

// internalDetail is what a failing store says: text that must reach the
// operator's log and never a response.
const internalDetail = "pq: connection to 10.0.0.5:5432 refused (internal-detail-7f3a)"

// flakyStore fails the methods it is told to, like a database going away
// in the middle of a request.
type flakyStore struct {
	*store.Store
	mu   sync.Mutex
	fail map[string]bool
}

func (f *flakyStore) arm(name string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[name] = on
}

func (f *flakyStore) err(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[name] {
		return errors.New(internalDetail)
	}
	return nil
}

func (f *flakyStore) Client(ctx context.Context, id string) (c tenants.Client, err error) {
	if err := f.err("Client"); err != nil {
		return c, err
	}
	return f.Store.Client(ctx, id)
}

func (f *flakyStore) CreateLogin(ctx context.Context, l oidcprovider.LoginRecord) error {
	if err := f.err("CreateLogin"); err != nil {
		return err
	}
	return f.Store.CreateLogin(ctx, l)
}

func (f *flakyStore) SaveCode(ctx context.Context, id, code, browser string, exp, now time.Time) (oidcprovider.LoginRecord, error) {
	if err := f.err("SaveCode"); err != nil {
		return oidcprovider.LoginRecord{}, err
	}
	return f.Store.SaveCode(ctx, id, code, browser, exp, now)
}

func (f *flakyStore) RedeemCode(ctx context.Context, r oidcprovider.CodeRedemption, now time.Time) (oidcprovider.LoginRecord, oidcprovider.Grant, error) {
	if err := f.err("RedeemCode"); err != nil {
		return oidcprovider.LoginRecord{}, oidcprovider.Grant{}, err
	}
	return f.Store.RedeemCode(ctx, r, now)
}

func (f *flakyStore) AccessToken(ctx context.Context, id string) (oidcprovider.TokenState, error) {
	if err := f.err("AccessToken"); err != nil {
		return oidcprovider.TokenState{}, err
	}
	return f.Store.AccessToken(ctx, id)
}

func (f *flakyStore) RefreshToken(ctx context.Context, h string) (oidcprovider.TokenState, error) {
	if err := f.err("RefreshToken"); err != nil {
		return oidcprovider.TokenState{}, err
	}
	return f.Store.RefreshToken(ctx, h)
}

func (f *flakyStore) RevokeGrants(ctx context.Context, sub, client, reason string, now time.Time) (int64, error) {
	if err := f.err("RevokeGrants"); err != nil {
		return 0, err
	}
	return f.Store.RevokeGrants(ctx, sub, client, reason, now)
}

// TestStoreFailureIsOpaque: every Storage method returns an oidc error, so
// no internal text reaches error_description or a plain-text body, while
// the operator's log has it.
func TestStoreFailureIsOpaque(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		st := b.Open(t)
		fs := &flakyStore{Store: st, fail: map[string]bool{}}
		e := newEnvWithStores(t, st, fs)
		r := e.confRP("openid", "offline_access")
		readBody := func(resp *http.Response) string {
			body, _ := io.ReadAll(resp.Body)
			return string(body) + " " + resp.Header.Get("Location")
		}
		// Each case arms the failure (arm) at the step under test.
		tests := []struct {
			name   string
			method string
			do     func(t *testing.T, arm func()) (status int, body string)
			want   int
		}{
			// A store outage is 503 with Retry-After, not zitadel's 400
			// "invalid client".
			{"authorize: reading the client", "Client", func(t *testing.T, arm func()) (int, string) {
				arm()
				resp := e.authorizeRaw(t, e.baseQuery(e.conf.ID, confRedirect))
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				return resp.StatusCode, readBody(resp)
			}, http.StatusServiceUnavailable},
			{"authorize: storing the login", "CreateLogin", func(t *testing.T, arm func()) (int, string) {
				arm()
				resp := e.authorizeRaw(t, e.baseQuery(e.conf.ID, confRedirect))
				return resp.StatusCode, readBody(resp)
			}, http.StatusFound},
			{"callback", "SaveCode", func(t *testing.T, arm func()) (int, string) {
				f := r.authorize(t)
				cb := e.completeSAML(t, f.loginID, e.ident, e.conn)
				arm()
				resp := f.browser.get(t, cb)
				return resp.StatusCode, readBody(resp)
			}, http.StatusBadRequest},
			{"token: authenticating the client", "Client", func(t *testing.T, arm func()) (int, string) {
				f := r.login(t)
				arm()
				status, body := e.tokenRequest(t, f, e.conf.ID, e.confSecret, nil)
				return status, toString(body)
			}, http.StatusInternalServerError},
			{"token: redeeming the code", "RedeemCode", func(t *testing.T, arm func()) (int, string) {
				f := r.login(t)
				arm()
				status, body := e.tokenRequest(t, f, e.conf.ID, e.confSecret, nil)
				return status, toString(body)
			}, http.StatusInternalServerError},
			{"refresh", "RefreshToken", func(t *testing.T, arm func()) (int, string) {
				tok, _ := r.login(t).tokens(t)
				arm()
				status, body := e.refresh(t, e.conf, e.confSecret, tok.RefreshToken)
				return status, toString(body)
			}, http.StatusInternalServerError},
			{"userinfo", "AccessToken", func(t *testing.T, arm func()) (int, string) {
				tok, _ := r.login(t).tokens(t)
				arm()
				status, body := e.userinfo(t, tok.AccessToken)
				return status, toString(body)
			}, http.StatusForbidden},
			{"introspect", "AccessToken", func(t *testing.T, arm func()) (int, string) {
				tok, _ := r.login(t).tokens(t)
				arm()
				status, body, _ := e.form(t, "/oauth/introspect", url.Values{"token": {tok.AccessToken}}, e.conf.ID, e.confSecret)
				return status, toString(body)
			}, http.StatusOK},
			{"revoke", "RefreshToken", func(t *testing.T, arm func()) (int, string) {
				tok, _ := r.login(t).tokens(t)
				arm()
				status, body, _ := e.form(t, "/revoke", url.Values{"token": {tok.RefreshToken}}, e.conf.ID, e.confSecret)
				return status, toString(body)
			}, http.StatusInternalServerError},
			{"end_session", "RevokeGrants", func(t *testing.T, arm func()) (int, string) {
				tok, _ := r.login(t).tokens(t)
				arm()
				resp := newBrowser(t).get(t, e.issuer+"/end_session?"+url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}.Encode())
				return resp.StatusCode, readBody(resp)
			}, http.StatusInternalServerError},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(e.logs.String())
				defer fs.arm(tt.method, false)
				status, body := tt.do(t, func() { fs.arm(tt.method, true) })
				if status != tt.want {
					t.Errorf("status %d, want %d (%s)", status, tt.want, body)
				}
				for _, leak := range []string{"internal-detail", "10.0.0.5", "pq:", "store:", "sql", "Parent="} {
					if strings.Contains(body, leak) {
						t.Fatalf("response leaks %q: %s", leak, body)
					}
				}
				if !strings.Contains(e.logs.String()[before:], "internal-detail-7f3a") {
					t.Errorf("the operator log lacks the cause")
				}
			})
		}
		// Last: the database is gone altogether.
		t.Run("closed store", func(t *testing.T) {
			f := r.login(t)
			check(t, st.Close(), "close")
			resp := e.authorizeRaw(t, e.baseQuery(e.conf.ID, confRedirect))
			body := readBody(resp)
			status, tb := e.tokenRequest(t, f, e.conf.ID, e.confSecret, nil)
			if resp.StatusCode != http.StatusServiceUnavailable || status != http.StatusInternalServerError || tb["error"] != "server_error" {
				t.Fatalf("authorize %d, token %d %v", resp.StatusCode, status, tb)
			}
			for _, b := range []string{body, toString(tb)} {
				for _, leak := range []string{"closed", "sql", "database", "store:"} {
					if strings.Contains(b, leak) {
						t.Fatalf("response leaks %q: %s", leak, b)
					}
				}
			}
			if !strings.Contains(e.logs.String(), "database is closed") {
				t.Error("the operator log lacks the cause")
			}
		})
	})
}

func toString(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		fmt.Fprintf(&b, "%s=%v ", k, v)
	}
	return b.String()
}

// TestCORS: no origin is reflected unless configured, and credentials are
// never allowed.
func TestCORS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		const spa = "https://spa.example.com"
		e := newEnv(t, b, func(c *oidcprovider.Config) { c.CORSAllowedOrigins = []string{spa} })
		plain := newEnv(t, b)
		for _, tt := range []struct {
			name   string
			e      *env
			origin string
			want   string
		}{
			{"evil origin", e, "https://evil.example", ""},
			{"configured origin", e, spa, spa},
			{"null origin", e, "null", ""},
			{"default: none", plain, spa, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				for _, path := range []string{"/.well-known/openid-configuration", "/keys"} {
					_, _, hdr := tt.e.getJSON(t, path, map[string]string{"Origin": tt.origin})
					if got := hdr.Get("Access-Control-Allow-Origin"); got != tt.want {
						t.Errorf("%s: Allow-Origin %q, want %q", path, got, tt.want)
					}
					if hdr.Get("Access-Control-Allow-Credentials") != "" {
						t.Errorf("%s: credentials allowed", path)
					}
				}
				req, _ := http.NewRequest(http.MethodOptions, tt.e.issuer+"/oauth/token", nil)
				req.Header.Set("Origin", tt.origin)
				req.Header.Set("Access-Control-Request-Method", "POST")
				resp, err := http.DefaultClient.Do(req)
				check(t, err, "preflight")
				resp.Body.Close()
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.want || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
					t.Errorf("preflight: Allow-Origin %q credentials %q", got, resp.Header.Get("Access-Control-Allow-Credentials"))
				}
				if (tt.want == "") != (resp.StatusCode == http.StatusForbidden) {
					t.Errorf("preflight status %d", resp.StatusCode)
				}
			})
		}
	})
}

// TestTwoProviders: endpoint options would mutate zitadel's package-level
// DefaultEndpoints; we use none, and two providers in one process keep
// their own issuers and keys.
func TestTwoProviders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e1, e2 := newEnv(t, b), newEnv(t, b)
		for _, e := range []*env{e1, e2} {
			_, d, _ := e.getJSON(t, "/.well-known/openid-configuration", nil)
			if d["issuer"] != e.issuer || d["authorization_endpoint"] != e.issuer+"/authorize" || d["jwks_uri"] != e.issuer+"/keys" {
				t.Fatalf("discovery of %s: %v", e.issuer, d)
			}
		}
		if op.DefaultEndpoints.Authorization.Relative() != "/authorize" || op.DefaultEndpoints.Token.Relative() != "/oauth/token" {
			t.Fatal("op.DefaultEndpoints was changed")
		}
		k1, k2 := e1.jwksKids(t), e2.jwksKids(t)
		if k1[0] == k2[0] {
			t.Fatal("two providers on two stores share a key")
		}
		// Tokens of one are nothing to the other.
		tok, _ := e1.confRP().login(t).tokens(t)
		if status, _ := e2.userinfo(t, tok.AccessToken); status == http.StatusOK {
			t.Fatal("provider 2 accepted provider 1's access token")
		}
	})
}

// TestBounds: every input is bounded before it is parsed.
func TestBounds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		big := strings.Repeat("a", 70<<10)
		post := func(t *testing.T, path, body, query string) int {
			u := e.issuer + path
			if query != "" {
				u += "?" + query
			}
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(e.conf.ID, e.confSecret)
			resp, err := http.DefaultClient.Do(req)
			check(t, err, "post")
			resp.Body.Close()
			return resp.StatusCode
		}
		tests := []struct {
			name       string
			path, body string
			query      string
		}{
			{"token body over 64 KiB", "/oauth/token", "grant_type=authorization_code&x=" + big, ""},
			{"introspect body over 64 KiB", "/oauth/introspect", "token=" + big, ""},
			{"revoke body over 64 KiB", "/revoke", "token=" + big, ""},
			{"authorize POST over 64 KiB", "/authorize", "client_id=x&x=" + big, ""},
			{"token parameters in the URL", "/oauth/token", "grant_type=authorization_code", "code=abc"},
			{"token repeated parameter", "/oauth/token", "grant_type=authorization_code&code=a&code=b", ""},
			{"token code too long", "/oauth/token", "grant_type=authorization_code&code=" + strings.Repeat("c", 1025), ""},
			{"token verifier too long", "/oauth/token", "grant_type=authorization_code&code=x&code_verifier=" + strings.Repeat("v", 129), ""},
			{"revoke token too long", "/revoke", "token=" + strings.Repeat("t", 2049), ""},
			{"end_session state too long", "/end_session", "state=" + strings.Repeat("s", 1025), ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if status := post(t, tt.path, tt.body, tt.query); status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400", status)
				}
			})
		}
		t.Run("authorize URL over 16 KiB", func(t *testing.T) {
			resp := newBrowser(t).get(t, e.issuer+"/authorize?x="+strings.Repeat("q", 17<<10))
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	})
}

// TestBrowserBinding: only the browser that started a login collects its
// code, once.
func TestBrowserBinding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		r := e.confRP()
		wantRefused := func(t *testing.T, br *browser, cb string) {
			t.Helper()
			resp := br.get(t, cb)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("callback: %d %s, want refused", resp.StatusCode, resp.Header.Get("Location"))
			}
		}

		f := r.authorize(t)
		cbEarly := e.issuer + "/authorize/callback?id=" + f.loginID
		wantRefused(t, f.browser, cbEarly) // not done yet
		cb := e.completeSAML(t, f.loginID, e.ident, e.conn)
		if !strings.HasPrefix(cb, e.issuer+"/authorize/callback?id=lgn_") {
			t.Fatalf("callback URL %s is not absolute under the issuer", cb)
		}
		wantRefused(t, newBrowser(t), cb) // a browser without the cookie
		attacker := r.authorize(t)        // a browser with its own binding
		wantRefused(t, attacker.browser, cb)
		f.callback(t, cb)             // the right browser, after all that
		wantRefused(t, f.browser, cb) // one code per login
		if _, err := f.exchange(t); err != nil {
			t.Fatalf("exchange: %v", err)
		}
		for _, bad := range []string{"", "?id=", "?id=lgn_short", "?id=" + strings.Repeat("x", 100)} {
			wantRefused(t, f.browser, e.issuer+"/authorize/callback"+bad)
		}
		if !strings.Contains(e.logs.String(), "browser binding mismatch") {
			t.Error("binding mismatch not logged for the operator")
		}
	})
}
