package oidcprovider_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store/storetest"
)

// BenchmarkCodeExchange is one whole login as the broker serves it, over
// loopback HTTP: /authorize, StartSAML, LoginBySAMLRequest, CompleteLogin,
// the callback, the code exchange (one RSA signature) and /userinfo. The
// relying party is a bare HTTP client (no ID token verification), so that
// the process CPU (cpu-ns/op, from getrusage) is mostly the broker's; it
// still includes the client side of five HTTP exchanges.
func BenchmarkCodeExchange(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			e := newEnv(b, be)
			ctx := context.Background()
			br := newBrowser(b)
			br.c.Transport = &http.Transport{MaxIdleConnsPerHost: 8}
			api := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			verifier := oauth2.GenerateVerifier()
			q := url.Values{
				"client_id": {e.conf.ID}, "redirect_uri": {confRedirect}, "response_type": {"code"},
				"scope": {"openid email profile"}, "state": {"state-1234"}, "nonce": {"nonce-1234"},
				"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
			}
			authURL := e.issuer + "/authorize?" + q.Encode()
			get := func(c *http.Client, u string) *http.Response {
				resp, err := c.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			step := func(i int) {
				resp := get(br.c, authURL)
				loc, _ := url.Parse(resp.Header.Get("Location"))
				id := loc.Query().Get("id")
				samlID := "id-bench-" + id[len(id)-20:]
				if err := e.p.StartSAML(ctx, id, e.tenant.ID, e.conn.ID, samlID, e.clock.Now().Add(5*time.Minute)); err != nil {
					b.Fatal(err)
				}
				if _, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, samlID); err != nil {
					b.Fatal(err)
				}
				cb, err := e.p.CompleteLogin(ctx, id, e.ident, e.conn, e.clock.Now())
				if err != nil {
					b.Fatal(err)
				}
				resp = get(br.c, cb)
				loc, _ = url.Parse(resp.Header.Get("Location"))
				code := loc.Query().Get("code")
				form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confRedirect}, "code_verifier": {verifier}}
				req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(e.conf.ID, e.confSecret)
				tr, err := api.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var tok struct {
					AccessToken string `json:"access_token"`
				}
				_ = json.NewDecoder(tr.Body).Decode(&tok)
				tr.Body.Close()
				if tok.AccessToken == "" {
					b.Fatalf("iteration %d: token endpoint answered %d", i, tr.StatusCode)
				}
				req, _ = http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				ur, err := api.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, ur.Body)
				ur.Body.Close()
				if ur.StatusCode != http.StatusOK {
					b.Fatalf("userinfo: %d", ur.StatusCode)
				}
			}
			step(-1) // warm caches, connections and prepared statements
			b.ReportAllocs()
			start := cpuTime()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				step(i)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user+system CPU in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkCodeExchangeHandlers is BenchmarkCodeExchange without the
// network: the same steps call Handler().ServeHTTP with recorders, so the
// process CPU per op is the broker's own (handlers, zitadel, store client,
// one RSA signature), not an HTTP client's.
func BenchmarkCodeExchangeHandlers(b *testing.B) {
	for _, be := range storetest.Backends() {
		for _, alg := range []string{"RS256", "ES256"} {
			b.Run(be.Name+"/"+alg, func(b *testing.B) { benchHandlers(b, be, alg) })
		}
	}
}

func benchHandlers(b *testing.B, be storetest.Backend, alg string) {
	e := newEnv(b, be, func(c *oidcprovider.Config) { c.SigningAlgorithm = alg })
	ctx := context.Background()
	h := e.p.Handler()
	verifier := oauth2.GenerateVerifier()
	q := url.Values{
		"client_id": {e.conf.ID}, "redirect_uri": {confRedirect}, "response_type": {"code"},
		"scope": {"openid email profile"}, "state": {"state-1234"}, "nonce": {"nonce-1234"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	authURL := e.issuer + "/authorize?" + q.Encode()
	var cookie *http.Cookie
	serve := func(req *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	step := func(i int) {
		req := httptest.NewRequest(http.MethodGet, authURL, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := serve(req)
		if cookie == nil {
			cookie = rec.Result().Cookies()[0]
		}
		loc, _ := url.Parse(rec.Header().Get("Location"))
		id := loc.Query().Get("id")
		samlID := "id-bench-" + id[len(id)-20:]
		if err := e.p.StartSAML(ctx, id, e.tenant.ID, e.conn.ID, samlID, e.clock.Now().Add(5*time.Minute)); err != nil {
			b.Fatal(err)
		}
		if _, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, samlID); err != nil {
			b.Fatal(err)
		}
		cb, err := e.p.CompleteLogin(ctx, id, e.ident, e.conn, e.clock.Now())
		if err != nil {
			b.Fatal(err)
		}
		req = httptest.NewRequest(http.MethodGet, cb, nil)
		req.AddCookie(cookie)
		loc, _ = url.Parse(serve(req).Header().Get("Location"))
		form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {confRedirect}, "code_verifier": {verifier}}
		req = httptest.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(e.conf.ID, e.confSecret)
		rec = serve(req)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &tok)
		if tok.AccessToken == "" {
			b.Fatalf("iteration %d: token endpoint answered %d", i, rec.Code)
		}
		req = httptest.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		if rec := serve(req); rec.Code != http.StatusOK {
			b.Fatalf("userinfo: %d", rec.Code)
		}
	}
	step(-1)
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		step(i)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}
