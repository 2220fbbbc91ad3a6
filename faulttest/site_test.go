package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/saml"
)

// testIdP is a SAML IdP on its own 127.0.0.1 server: the project's
// simulator, signing in whichever user the browser names in a header.
type testIdP struct {
	srv    *httptest.Server
	sim    *saml.Simulator
	signed atomic.Int64 // AuthnRequests whose signature the simulator verified
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	i := &testIdP{srv: httptest.NewUnstartedServer(nil)}
	i.srv.Start()
	t.Cleanup(i.srv.Close)
	sim, err := saml.NewSimulator(saml.SimulatorConfig{BaseURL: i.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	i.sim = sim
	i.srv.Config.Handler = i
	return i
}

var idpPage = template.Must(template.New("idp").Parse(`<!doctype html><title>test IdP</title>
<form method="post" action="{{.ACS}}"><input type="hidden" name="SAMLResponse" value="{{.Response}}"><input type="hidden" name="RelayState" value="{{.RelayState}}"><button>Continue</button></form>`))

// ServeHTTP answers an AuthnRequest (either binding) with a page whose
// form posts the signed response to the SP's ACS.
func (i *testIdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, err := i.sim.ParseAuthnRequest(r)
	if err != nil {
		http.Error(w, "test IdP: "+err.Error(), http.StatusBadRequest)
		return
	}
	if info.Signed {
		i.signed.Add(1)
	}
	u := saml.DefaultSimulatedUser()
	if e := r.Header.Get(hdrEmail); e != "" {
		u.NameID, u.Email = e, e
	}
	resp, err := i.sim.Respond(info, u, saml.Scenario{AssertionID: r.Header.Get(hdrAssertionID)})
	if err != nil {
		http.Error(w, "test IdP: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = idpPage.Execute(w, map[string]string{"ACS": info.ACSURL, "Response": resp, "RelayState": info.RelayState})
}

// adminAPI calls the broker's /api/v1.
type adminAPI struct {
	base string
	hc   *http.Client
}

func newAdminAPI(base string) *adminAPI {
	return &adminAPI{base: base, hc: &http.Client{Timeout: 10 * time.Second}}
}

// call sends body as JSON and decodes a 2xx answer into out.
func (a *adminAPI) call(ctx context.Context, method, path string, body, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, fmt.Errorf("%s %s: reading: %w", method, path, err)
	}
	if out != nil && res.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.StatusCode, raw, fmt.Errorf("%s %s: decoding %.200s: %w", method, path, raw, err)
		}
	}
	return res.StatusCode, raw, nil
}

// must is call that fails the test unless the status is want.
func (a *adminAPI) must(t *testing.T, method, path string, body any, want int, out any) []byte {
	t.Helper()
	status, raw, err := a.call(context.Background(), method, path, body, out)
	if err != nil {
		t.Fatal(err)
	}
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %.500s", method, path, status, want, raw)
	}
	return raw
}

type idJSON struct {
	ID string `json:"id"`
}

// site is a configured broker seen from outside: a tenant owning
// acme.com, its connection trusting the test IdP, and a client with an
// independent relying party (go-oidc and x/oauth2).
type site struct {
	issuer   string
	admin    *adminAPI
	idp      *testIdP
	app      *httptest.Server // the client's redirect target (browsers stop before it)
	tenantID string
	connID   string
	clientID string
	rp       *relyingParty
}

func setupSite(t *testing.T, issuer string, idp *testIdP) *site {
	t.Helper()
	s := &site{issuer: issuer, admin: newAdminAPI(issuer), idp: idp}
	s.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "app") }))
	t.Cleanup(s.app.Close)
	var tn, cn idJSON
	s.admin.must(t, "POST", "/api/v1/tenants", map[string]any{"name": "Acme", "domains": []string{"acme.com"}}, http.StatusCreated, &tn)
	s.admin.must(t, "POST", "/api/v1/tenants/"+tn.ID+"/connections", map[string]any{
		"name": "Acme IdP", "preset": "okta", "idp_metadata_xml": string(idp.sim.Metadata()),
	}, http.StatusCreated, &cn)
	s.tenantID, s.connID = tn.ID, cn.ID
	s.registerSP(t, cn.ID)
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	s.admin.must(t, "POST", "/api/v1/clients", map[string]any{"name": "App", "redirect_uris": []string{s.app.URL + "/callback"}}, http.StatusCreated, &c)
	s.clientID = c.ClientID
	s.rp = newRelyingParty(t, issuer, c.ClientID, c.ClientSecret, s.app.URL+"/callback")
	return s
}

// registerSP gives the test IdP the connection's SP metadata.
func (s *site) registerSP(t *testing.T, connID string) {
	t.Helper()
	res, err := http.Get(s.issuer + "/saml/" + connID + "/metadata")
	if err != nil {
		t.Fatalf("SP metadata: %v", err)
	}
	md, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("SP metadata: %d %.300s", res.StatusCode, md)
	}
	if err := s.idp.sim.RegisterServiceProvider(md); err != nil {
		t.Fatalf("registering the SP with the test IdP: %v", err)
	}
}

func (s *site) isApp(u *url.URL) bool { return u.Host == strings.TrimPrefix(s.app.URL, "http://") }

type relyingParty struct {
	cfg      *oauth2.Config
	verifier *oidc.IDTokenVerifier
	hc       *http.Client
}

func newRelyingParty(t *testing.T, issuer, id, secret, redirect string) *relyingParty {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	// The provider keeps this context to fetch keys later: not t.Context().
	p, err := oidc.NewProvider(oidc.ClientContext(context.Background(), hc), issuer)
	if err != nil {
		t.Fatalf("OIDC discovery at %s: %v", issuer, err)
	}
	return &relyingParty{
		cfg: &oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirect,
			Scopes: []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}},
		verifier: p.Verifier(&oidc.Config{ClientID: id}),
		hc:       hc,
	}
}

// login is one authorization code flow (state, nonce, PKCE) driven by a
// browser. When a request gets no response it remembers it, so the login
// can be resumed after the broker comes back.
type login struct {
	s                      *site
	b                      *browser
	state, nonce, verifier string
	code                   string
	pending                *step // browser request that got no response
	tokenPending           bool  // code exchange that got no response
	// hc, when set, makes the token requests (e.g. pinned to a replica).
	hc *http.Client
}

func (s *site) newLogin(b *browser) *login {
	return &login{s: s, b: b, state: randomString(), nonce: randomString(), verifier: oauth2.GenerateVerifier()}
}

func (l *login) authURL() string {
	return l.s.rp.cfg.AuthCodeURL(l.state, oidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier),
		oauth2.SetAuthURLParam("login_hint", l.b.email))
}

type tokens struct {
	tok     *oauth2.Token
	idToken *oidc.IDToken
	email   string
}

// pageError is a login that ended on a page instead of at the app.
type pageError struct{ p page }

func (e *pageError) Error() string {
	return fmt.Sprintf("login ended at %s with %d: %.300s", e.p.URL, e.p.Status, e.p.Body)
}

// appError is a login that reached the app without a code (an OIDC error).
type appError struct{ u *url.URL }

func (e *appError) Error() string { return "the app received " + e.u.RawQuery }

// tokenError is a token endpoint answer other than 200.
type tokenError struct{ re *oauth2.RetrieveError }

func (e *tokenError) Error() string {
	return fmt.Sprintf("token endpoint: %d %s", e.re.Response.StatusCode, e.re.ErrorCode)
}

func (l *login) run(ctx context.Context) (*tokens, error) {
	return l.continueFrom(ctx, step{method: http.MethodGet, url: l.authURL()})
}

func (l *login) continueFrom(ctx context.Context, s step) (*tokens, error) {
	loc, p, err := l.b.follow(ctx, s, l.s.isApp)
	if err != nil {
		var te *transportError
		if errors.As(err, &te) {
			l.pending = &te.step
		}
		return nil, err
	}
	if loc == nil {
		return nil, &pageError{p: p}
	}
	return l.atApp(ctx, loc)
}

// atApp checks the redirect to the app and redeems its code.
func (l *login) atApp(ctx context.Context, loc *url.URL) (*tokens, error) {
	q := loc.Query()
	if q.Get("state") != l.state {
		return nil, fmt.Errorf("the app got state %q, want %q", q.Get("state"), l.state)
	}
	if q.Get("code") == "" {
		return nil, &appError{u: loc}
	}
	l.code = q.Get("code")
	return l.redeem(ctx)
}

func (l *login) tokenContext(ctx context.Context) context.Context {
	hc := l.hc
	if hc == nil {
		hc = l.s.rp.hc
	}
	return context.WithValue(ctx, oauth2.HTTPClient, hc)
}

// redeem exchanges the code with the PKCE verifier and verifies the ID
// token and its nonce.
func (l *login) redeem(ctx context.Context) (*tokens, error) {
	tok, err := l.s.rp.cfg.Exchange(l.tokenContext(ctx), l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, &tokenError{re: re}
		}
		l.tokenPending = true
		return nil, &transportError{step: step{method: http.MethodPost, url: l.s.rp.cfg.Endpoint.TokenURL}, err: err}
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := l.s.rp.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("verifying the ID token: %w", err)
	}
	if idt.Nonce != l.nonce {
		return nil, fmt.Errorf("ID token nonce %q, want %q", idt.Nonce, l.nonce)
	}
	var cl struct {
		Email string `json:"email"`
	}
	if err := idt.Claims(&cl); err != nil {
		return nil, err
	}
	return &tokens{tok: tok, idToken: idt, email: cl.Email}, nil
}

// resume repeats the request that got no response and carries on.
func (l *login) resume(ctx context.Context) (*tokens, error) {
	if l.tokenPending {
		l.tokenPending = false
		return l.redeem(ctx)
	}
	if l.pending == nil {
		return nil, errors.New("nothing to resume")
	}
	s := *l.pending
	l.pending = nil
	return l.continueFrom(ctx, s)
}

// cleanFailure reports whether err is a login refused the way a user can
// live with: a 4xx page, an OIDC error at the app, a 4xx from the token
// endpoint. 5xx, hangs and transport errors are not clean.
func cleanFailure(err error) bool {
	var pe *pageError
	var ae *appError
	var tk *tokenError
	switch {
	case errors.As(err, &pe):
		return pe.p.Status >= 400 && pe.p.Status < 500
	case errors.As(err, &ae):
		return true
	case errors.As(err, &tk):
		return tk.re.Response.StatusCode >= 400 && tk.re.Response.StatusCode < 500
	}
	return false
}

func randomString() string {
	return oauth2.GenerateVerifier()[:22]
}

// identity is the admin API's view of a user.
type identity struct {
	Sub          string    `json:"sub"`
	TenantID     string    `json:"tenant_id"`
	ConnectionID string    `json:"connection_id"`
	Email        string    `json:"email"`
	Status       string    `json:"status"`
	CreatedAt    time.Time `json:"created_at"`
}

// identities lists every identity of a tenant.
func (s *site) identities(t *testing.T, tenantID string) []identity {
	t.Helper()
	var all []identity
	after := ""
	for range 50 {
		var l struct {
			Data      []identity `json:"data"`
			NextAfter string     `json:"next_after"`
		}
		s.admin.must(t, "GET", "/api/v1/identities?limit=200&tenant_id="+tenantID+"&after="+url.QueryEscape(after), nil, http.StatusOK, &l)
		all = append(all, l.Data...)
		if l.NextAfter == "" {
			return all
		}
		after = l.NextAfter
	}
	t.Fatal("identities: too many pages")
	return nil
}
