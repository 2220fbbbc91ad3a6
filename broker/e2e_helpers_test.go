package broker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/broker"
	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/storetest"
)

// env is a running broker (one or more replicas behind a round-robin
// front), an IdP simulator on its own server, and an app that receives
// redirects, all on 127.0.0.1.
type env struct {
	t      testing.TB
	issuer string
	admin  *adminClient
	stores []*store.Store
	logs   *syncBuffer

	idp      *httptest.Server
	sim      *saml.Simulator
	simMu    sync.Mutex
	simUser  saml.SimulatedUser
	simScene saml.Scenario

	app *httptest.Server // the relying party's redirect target
}

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

type envOptions struct {
	replicas int
	limits   broker.RateLimits
}

// newEnv starts the broker. With replicas > 1 every replica has its own
// store handle on the same database and the front alternates requests
// between them, like a load balancer without sticky sessions.
func newEnv(t testing.TB, b storetest.Backend, opts envOptions) *env {
	t.Helper()
	if opts.replicas == 0 {
		opts.replicas = 1
	}
	e := &env{t: t, logs: &syncBuffer{}, simUser: saml.DefaultSimulatedUser()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.issuer = "http://" + ln.Addr().String()
	dbURL := b.URL(t)
	log := slog.New(broker.NewLogHandler(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	cookieKey := bytes.Repeat([]byte{7}, 32)
	var backends []*url.URL
	for i := 0; i < opts.replicas; i++ {
		st := storetest.OpenURL(t, dbURL)
		e.stores = append(e.stores, st)
		var app *broker.App
		prov, err := oidcprovider.New(context.Background(), oidcprovider.Config{Issuer: e.issuer, Logger: log,
			OnRevoke: func(ctx context.Context, r oidcprovider.Revocation) { app.RecordRevocation(ctx, r) },
			ErrorPage: func(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
				app.ErrorPage(w, r, status, title, msg)
			},
		}, st)
		if err != nil {
			t.Fatal(err)
		}
		app, err = broker.New(broker.Config{
			Issuer: e.issuer, AdminToken: adminToken, Logger: log, CookieKey: cookieKey, RateLimits: opts.limits,
		}, broker.Deps{Store: st, Fetcher: &saml.MetadataFetcher{AllowLoopbackHTTP: true, AllowPrivateNetworks: true}, OIDC: prov})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(app.Handler())
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		backends = append(backends, u)
	}
	var next atomic.Uint64
	front := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		be := backends[next.Add(1)%uint64(len(backends))]
		pr.SetURL(be)
		pr.Out.Host = pr.In.Host
		pr.Out.Header.Set("X-Replica", be.Host)
	}}
	frontSrv := &http.Server{Handler: front, ReadHeaderTimeout: 10 * time.Second}
	go frontSrv.Serve(ln)
	t.Cleanup(func() { frontSrv.Close() })

	e.idp = httptest.NewUnstartedServer(nil)
	e.idp.Start()
	t.Cleanup(e.idp.Close)
	e.sim, err = saml.NewSimulator(saml.SimulatorConfig{BaseURL: e.idp.URL, Decide: func(saml.AuthnRequestInfo) (saml.SimulatedUser, saml.Scenario, error) {
		e.simMu.Lock()
		defer e.simMu.Unlock()
		return e.simUser, e.simScene, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.idp.Config.Handler = e.sim.Handler()

	e.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app received the redirect")
	}))
	t.Cleanup(e.app.Close)
	e.admin = &adminClient{t: t, base: e.issuer}
	return e
}

func (e *env) setUser(u saml.SimulatedUser, sc saml.Scenario) {
	e.simMu.Lock()
	defer e.simMu.Unlock()
	e.simUser, e.simScene = u, sc
}

func user(email string) saml.SimulatedUser {
	u := saml.DefaultSimulatedUser()
	u.NameID, u.Email = email, email
	return u
}

type idResp struct {
	ID string `json:"id"`
}

// tenant creates a tenant owning domains with one connection that trusts
// the simulator, and registers the connection's SP with the simulator.
func (e *env) tenant(name string, domains ...string) (tenantID, connID string) {
	e.t.Helper()
	var tn, cn idResp
	r := e.admin.do("POST", "/api/v1/tenants", map[string]any{"name": name, "domains": domains})
	if r.Status != 201 {
		e.t.Fatalf("tenant: %d %s", r.Status, r.Body)
	}
	r.json(e.t, &tn)
	r = e.admin.do("POST", "/api/v1/tenants/"+tn.ID+"/connections", map[string]any{
		"name": name + " IdP", "preset": "okta", "idp_metadata_xml": string(e.sim.Metadata()),
	})
	if r.Status != 201 {
		e.t.Fatalf("connection: %d %s", r.Status, r.Body)
	}
	r.json(e.t, &cn)
	res, err := http.Get(e.issuer + "/saml/" + cn.ID + "/metadata")
	if err != nil {
		e.t.Fatal(err)
	}
	md, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if err := e.sim.RegisterServiceProvider(md); err != nil {
		e.t.Fatal(err)
	}
	return tn.ID, cn.ID
}

type client struct {
	ID, Secret string
	cfg        *oauth2.Config
	verifier   *oidc.IDTokenVerifier
	provider   *oidc.Provider
}

// client registers an OIDC client and builds an independent RP for it.
func (e *env) client(extra map[string]any) *client {
	e.t.Helper()
	body := map[string]any{"name": "App", "redirect_uris": []string{e.app.URL + "/callback"}, "post_logout_redirect_uris": []string{e.app.URL + "/bye"}}
	for k, v := range extra {
		body[k] = v
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	r := e.admin.do("POST", "/api/v1/clients", body)
	if r.Status != 201 {
		e.t.Fatalf("client: %d %s", r.Status, r.Body)
	}
	r.json(e.t, &c)
	p, err := oidc.NewProvider(context.Background(), e.issuer)
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	return &client{
		ID: c.ClientID, Secret: c.ClientSecret, provider: p,
		cfg: &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: e.app.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "email", "profile", "groups", "raw_attributes", oidc.ScopeOfflineAccess}},
		verifier: p.Verifier(&oidc.Config{ClientID: c.ClientID}),
	}
}

// browser is a user agent: a cookie jar, redirects followed, forms read
// from the pages' HTML and submitted as a browser would.
type browser struct {
	t    testing.TB
	http *http.Client
}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, http: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

type page struct {
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
}

func (b *browser) open(method, target string, form url.Values) page {
	b.t.Helper()
	var res *http.Response
	var err error
	if method == http.MethodPost {
		res, err = b.http.PostForm(target, form)
	} else {
		res, err = b.http.Get(target)
	}
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{URL: res.Request.URL, Status: res.StatusCode, Header: res.Header, Body: string(body)}
}

type htmlForm struct {
	action string
	fields url.Values
}

// forms parses every form of a page with its inputs' initial values.
func (p page) forms(t testing.TB) []htmlForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		t.Fatal(err)
	}
	var out []htmlForm
	var cur *htmlForm
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			switch n.Data {
			case "form":
				action, _ := p.URL.Parse(attr["action"])
				out = append(out, htmlForm{action: action.String(), fields: url.Values{}})
				cur = &out[len(out)-1]
			case "input":
				if cur != nil && attr["name"] != "" {
					cur.fields.Set(attr["name"], attr["value"])
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

// submit posts the page's first form with some fields overridden.
func (b *browser) submit(p page, set map[string]string) page {
	b.t.Helper()
	fs := p.forms(b.t)
	if len(fs) == 0 {
		b.t.Fatalf("no form on %s (%d): %.400s", p.URL, p.Status, p.Body)
	}
	f := fs[0]
	for k, v := range set {
		f.fields.Set(k, v)
	}
	return b.open(http.MethodPost, f.action, f.fields)
}

// authorize starts an authorization code flow with state, nonce and PKCE.
type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: randString(), nonce: randString(), verifier: oauth2.GenerateVerifier()}
}

func randString() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (c *client) authURL(f flow, params map[string]string) string {
	opts := []oauth2.AuthCodeOption{oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)}
	for k, v := range params {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return c.cfg.AuthCodeURL(f.state, opts...)
}

// signIn runs a whole browser login: authorize, the hosted page (typing
// email when it is shown), the IdP's page, the ACS, the callback. It
// returns the last page, which is the app's redirect target on success.
func (e *env) signIn(b *browser, c *client, f flow, params map[string]string, email string) page {
	e.t.Helper()
	p := b.open(http.MethodGet, c.authURL(f, params), nil)
	if p.URL.Path == "/login" && p.Status == http.StatusOK {
		p = b.submit(p, map[string]string{"email": email})
	}
	if p.URL.Host == strings.TrimPrefix(e.idp.URL, "http://") {
		p = b.submit(p, nil) // the IdP's page posts the SAMLResponse to the ACS
	}
	return p
}

type tokens struct {
	tok      *oauth2.Token
	idToken  *oidc.IDToken
	raw      string
	claims   map[string]any
	userinfo map[string]any
}

// redeem checks the redirect's state, exchanges the code with PKCE and
// verifies the ID token and nonce with go-oidc.
func (e *env) redeem(c *client, f flow, final page) tokens {
	e.t.Helper()
	q := final.URL.Query()
	if final.URL.Path != "/callback" || q.Get("code") == "" {
		e.t.Fatalf("login did not reach the app: %s (%d) %.600s", final.URL, final.Status, final.Body)
	}
	if q.Get("state") != f.state {
		e.t.Fatalf("state %q, want %q", q.Get("state"), f.state)
	}
	ctx := context.Background()
	tok, err := c.cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		e.t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		e.t.Fatalf("ID token: %v", err)
	}
	if idt.Nonce != f.nonce {
		e.t.Fatalf("nonce %q, want %q", idt.Nonce, f.nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		e.t.Fatalf("at_hash: %v", err)
	}
	out := tokens{tok: tok, idToken: idt, raw: raw}
	_ = idt.Claims(&out.claims)
	ui, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		e.t.Fatalf("userinfo: %v", err)
	}
	_ = ui.Claims(&out.userinfo)
	return out
}

func (e *env) auditTypes(tenantID string) map[string][]string {
	e.t.Helper()
	var list struct {
		Data []struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"data"`
	}
	q := "/api/v1/audit-events?limit=200"
	if tenantID != "" {
		q += "&tenant_id=" + tenantID
	}
	e.admin.do("GET", q, nil).json(e.t, &list)
	out := map[string][]string{}
	for _, ev := range list.Data {
		out[ev.Type] = append(out[ev.Type], ev.Reason)
	}
	return out
}

func fmtClaims(m map[string]any) string { return fmt.Sprintf("%v", m) }

func jsonDecode(res *http.Response, v any) error {
	return json.NewDecoder(res.Body).Decode(v)
}
