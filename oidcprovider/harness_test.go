package oidcprovider_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

// forEachBackend runs fn against both stores (PostgreSQL never skips).
func forEachBackend(t *testing.T, fn func(t *testing.T, b storetest.Backend)) {
	t.Helper()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// fakeClock starts at the wall clock (zitadel stamps iat/exp with
// time.Now, and go-oidc checks them against it) and moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().UTC().Truncate(time.Microsecond)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one broker: a store, a provider on a real 127.0.0.1 listener, a
// tenant with a connection and an identity, and two registered clients.
type env struct {
	t      testing.TB
	st     *store.Store
	p      *oidcprovider.Provider
	srv    *httptest.Server
	issuer string
	clock  *fakeClock
	logs   *syncBuffer
	dir    *tenants.Directory

	tenant tenants.Tenant
	conn   tenants.Connection
	ident  tenants.Identity

	conf       tenants.Client // confidential
	confSecret string
	pub        tenants.Client // public
}

const (
	confRedirect = "https://app.example.com/callback"
	pubRedirect  = "http://127.0.0.1:9999/cb"
	confLogout   = "https://app.example.com/bye"
)

type envOption func(*oidcprovider.Config)

func newEnv(t testing.TB, b storetest.Backend, opts ...envOption) *env {
	t.Helper()
	st := b.Open(t)
	return newEnvWithStores(t, st, st, opts...)
}

// newEnvWithStores gives the provider ps (e.g. a wrapper that fails on
// demand) while the test sets up the directory through st.
func newEnvWithStores(t testing.TB, st *store.Store, ps oidcprovider.Store, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, st: st, clock: newFakeClock(), logs: &syncBuffer{}}
	e.dir = &tenants.Directory{Store: st, Clock: e.clock, Random: rand.Reader}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(nil)
	e.srv.Listener.Close()
	e.srv.Listener = l
	e.issuer = "http://" + l.Addr().String()

	cfg := oidcprovider.Config{
		Issuer: e.issuer, Clock: e.clock,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.p, err = oidcprovider.New(ctx, cfg, ps)
	if err != nil {
		t.Fatalf("oidcprovider.New: %v", err)
	}
	e.srv.Config.Handler = e.p.Handler()
	e.srv.Start()
	t.Cleanup(e.srv.Close)

	e.tenant, err = e.dir.CreateTenant(ctx, tenants.NewTenant{Name: "Acme", Domains: []string{"acme.example"}})
	check(t, err, "create tenant")
	e.conn = e.createConnection(e.tenant.ID)
	e.ident = e.upsertIdentity(e.conn, "ada")

	var secret tenants.Secret
	e.conf, secret, err = e.dir.CreateClient(ctx, tenants.NewClient{
		Name: "Confidential App", RedirectURIs: []string{confRedirect, "https://app.example.com/other"},
		PostLogoutRedirectURIs: []string{confLogout},
	})
	check(t, err, "create confidential client")
	e.confSecret = secret.Reveal()
	e.pub, _, err = e.dir.CreateClient(ctx, tenants.NewClient{Name: "SPA", Public: true, RedirectURIs: []string{pubRedirect}})
	check(t, err, "create public client")
	return e
}

func (e *env) createConnection(tenantID string) tenants.Connection {
	e.t.Helper()
	id, err := tenants.NewID(tenants.PrefixConnection, e.clock.Now(), rand.Reader)
	check(e.t, err, "connection id")
	c := tenants.Connection{
		ID: id, TenantID: tenantID, Name: "Okta", Status: tenants.StatusActive, Preset: tenants.PresetOkta,
		IdP: tenants.IdPConfig{EntityID: "http://www.okta.com/" + id, SSORedirectURL: "https://acme.okta.example/sso",
			Certificates: []string{"-----BEGIN CERTIFICATE-----\nMIIx\n-----END CERTIFICATE-----\n"}},
		SPKey: "sp-key", SPCertificate: "sp-cert", CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now(),
	}
	check(e.t, e.st.CreateConnection(context.Background(), c), "create connection")
	return c
}

func (e *env) upsertIdentity(c tenants.Connection, who string) tenants.Identity {
	e.t.Helper()
	id, err := e.dir.UpsertIdentity(context.Background(), c, tenants.Profile{
		Subject: who + "-idp-id", NameID: who + "@acme.example", Email: who + "@acme.example",
		GivenName: "Ada", FamilyName: "Lovelace", Name: "Ada Lovelace", Groups: []string{"admins", "eng"},
		Attributes: map[string][]string{"mail": {who + "@acme.example"}, "department": {"R&D"}},
	}, true)
	check(e.t, err, "upsert identity")
	return id
}

func newClientInput(name string, redirects ...string) tenants.NewClient {
	return tenants.NewClient{Name: name, RedirectURIs: redirects}
}

func check(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// browser is a user agent: a cookie jar, and no automatic redirects so
// tests see every hop.
type browser struct{ c *http.Client }

func newBrowser(t testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	check(t, err, "cookie jar")
	return &browser{c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(t testing.TB, u string) *http.Response {
	t.Helper()
	resp, err := b.c.Get(u)
	check(t, err, "GET "+u)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// rp is an independent relying party: go-oidc for discovery and ID token
// verification, x/oauth2 for the code flow.
type rp struct {
	e        *env
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	oauth    oauth2.Config
	ctx      context.Context
}

func (e *env) rp(c tenants.Client, secret string, redirect string, style oauth2.AuthStyle, scopes ...string) *rp {
	e.t.Helper()
	ctx := gooidc.ClientContext(context.Background(), &http.Client{Timeout: 10 * time.Second})
	prov, err := gooidc.NewProvider(ctx, e.issuer)
	check(e.t, err, "discovery")
	ep := prov.Endpoint()
	ep.AuthStyle = style
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "email", "profile"}
	}
	return &rp{
		e: e, provider: prov, ctx: ctx,
		verifier: prov.Verifier(&gooidc.Config{ClientID: c.ID}),
		oauth:    oauth2.Config{ClientID: c.ID, ClientSecret: secret, Endpoint: ep, RedirectURL: redirect, Scopes: scopes},
	}
}

func (e *env) confRP(scopes ...string) *rp {
	return e.rp(e.conf, e.confSecret, confRedirect, oauth2.AuthStyleInHeader, scopes...)
}

func (e *env) pubRP(scopes ...string) *rp {
	return e.rp(e.pub, "", pubRedirect, oauth2.AuthStyleInParams, scopes...)
}

// flow is one login in progress.
type flow struct {
	rp       *rp
	browser  *browser
	state    string
	nonce    string
	verifier string
	loginID  string
	code     string
}

func randomString(t testing.TB) string {
	t.Helper()
	return oauth2.GenerateVerifier()[:24]
}

// authorize sends the browser to /authorize and returns the login id from
// the redirect to the hosted page.
func (r *rp) authorize(t testing.TB, extra ...oauth2.AuthCodeOption) *flow {
	t.Helper()
	f := &flow{rp: r, browser: newBrowser(t), state: randomString(t), nonce: randomString(t), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{gooidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)}, extra...)
	resp := f.browser.get(t, r.oauth.AuthCodeURL(f.state, opts...))
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("authorize: status %d: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	check(t, err, "login redirect")
	if !strings.HasPrefix(loc.String(), r.e.issuer+"/login?id=") {
		t.Fatalf("authorize redirected to %s, want the hosted page", loc)
	}
	f.loginID = loc.Query().Get("id")
	return f
}

// completeSAML plays the broker: route the login, consume the SAML request
// as the ACS would, and complete it for the identity.
func (e *env) completeSAML(t testing.TB, loginID string, id tenants.Identity, conn tenants.Connection) string {
	t.Helper()
	ctx := context.Background()
	samlID := "id-" + randomString(t)
	check(t, e.p.StartSAML(ctx, loginID, conn.TenantID, conn.ID, samlID, e.clock.Now().Add(5*time.Minute)), "StartSAML")
	_, err := e.p.LoginBySAMLRequest(ctx, conn.ID, samlID)
	check(t, err, "LoginBySAMLRequest")
	cb, err := e.p.CompleteLogin(ctx, loginID, id, conn, e.clock.Now())
	check(t, err, "CompleteLogin")
	return cb
}

// callback follows the callback URL in the flow's browser and returns the
// code from the redirect to the client.
func (f *flow) callback(t testing.TB, cb string) {
	t.Helper()
	resp := f.browser.get(t, cb)
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("callback: status %d: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	check(t, err, "redirect to client")
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != f.rp.oauth.RedirectURL {
		t.Fatalf("redirected to %s, want %s", got, f.rp.oauth.RedirectURL)
	}
	if loc.Query().Get("state") != f.state {
		t.Fatalf("state %q, want %q", loc.Query().Get("state"), f.state)
	}
	f.code = loc.Query().Get("code")
	if f.code == "" {
		t.Fatalf("no code in %s", loc)
	}
}

// login runs authorize → SAML → callback and returns the flow with a code.
func (r *rp) login(t testing.TB, extra ...oauth2.AuthCodeOption) *flow {
	t.Helper()
	f := r.authorize(t, extra...)
	f.callback(t, r.e.completeSAML(t, f.loginID, r.e.ident, r.e.conn))
	return f
}

func (f *flow) exchange(t testing.TB) (*oauth2.Token, error) {
	t.Helper()
	return f.rp.oauth.Exchange(f.rp.ctx, f.code, oauth2.VerifierOption(f.verifier))
}

// tokens is a successful code exchange, its ID token verified.
func (f *flow) tokens(t testing.TB) (*oauth2.Token, *gooidc.IDToken) {
	t.Helper()
	tok, err := f.exchange(t)
	check(t, err, "code exchange")
	raw, _ := tok.Extra("id_token").(string)
	idt, err := f.rp.verifier.Verify(f.rp.ctx, raw)
	check(t, err, "verify ID token")
	if idt.Nonce != f.nonce {
		t.Fatalf("nonce %q, want %q", idt.Nonce, f.nonce)
	}
	check(t, idt.VerifyAccessToken(tok.AccessToken), "at_hash")
	return tok, idt
}

// form POSTs a form to an endpoint, with optional basic auth, and decodes
// a JSON answer.
func (e *env) form(t testing.TB, path string, v url.Values, user, pass string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(v.Encode()))
	check(t, err, "request")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	check(t, err, "POST "+path)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			out["_raw"] = string(body)
		}
	}
	return resp.StatusCode, out, resp.Header
}

func (e *env) introspect(t testing.TB, token string) map[string]any {
	t.Helper()
	status, body, _ := e.form(t, "/oauth/introspect", url.Values{"token": {token}}, e.conf.ID, e.confSecret)
	if status != http.StatusOK {
		t.Fatalf("introspect: status %d: %v", status, body)
	}
	return body
}

func (e *env) userinfo(t testing.TB, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	check(t, err, "userinfo")
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *env) refresh(t testing.TB, c tenants.Client, secret, rt string) (int, map[string]any) {
	t.Helper()
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if secret == "" {
		v.Set("client_id", c.ID)
	}
	status, body, _ := e.form(t, "/oauth/token", v, map[bool]string{true: c.ID}[secret != ""], secret)
	return status, body
}

func (e *env) getJSON(t testing.TB, path string, hdr map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+path, nil)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	check(t, err, "GET "+path)
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func claimsOf(t testing.TB, idt *gooidc.IDToken) map[string]any {
	t.Helper()
	m := map[string]any{}
	check(t, idt.Claims(&m), "claims")
	return m
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return fmt.Sprint(sortStrings(ks))
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
