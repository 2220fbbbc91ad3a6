package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-chi/chi/v5"
	"golang.org/x/oauth2"
)

// DemoClient is the OIDC client the dev-mode demo app signs in with.
type DemoClient struct {
	ID     string
	Secret string
}

// demoApp is dev mode's relying party: an ordinary OIDC client (go-oidc and
// x/oauth2, not the provider's own library) that talks to the broker over
// HTTP like any SaaS app would, then shows the verified ID token claims and
// userinfo.
type demoApp struct {
	issuer  string
	client  DemoClient
	cookies cookies
	pages   *pages
	log     *slog.Logger
	http    *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

func (d *demoApp) Mount(r chi.Router) {
	r.Get("/", d.home)
	r.Get("/login", d.login)
	r.Get("/callback", d.callback)
}

type demoPage struct {
	Issuer         string
	ClientID       string
	Email          string
	Error          string
	IDTokenClaims  string
	UserInfo       string
	AccessTokenExp string
	HasRefresh     bool
	LogoutURL      string
	RequestID      string
}

// discover fetches the provider's discovery document on first use: the
// server must be listening before the demo can read its own issuer.
func (d *demoApp) discover(r *http.Request) (*oidc.Provider, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.provider != nil {
		return d.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(r.Context(), d.http), d.issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	d.provider = p
	return p, nil
}

func (d *demoApp) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: d.client.ID, ClientSecret: d.client.Secret, Endpoint: p.Endpoint(),
		RedirectURL: d.issuer + "/demo/callback",
		Scopes:      []string{oidc.ScopeOpenID, "email", "profile", "groups", "raw_attributes", oidc.ScopeOfflineAccess},
	}
}

func (d *demoApp) home(w http.ResponseWriter, r *http.Request) {
	d.pages.render(w, r, http.StatusOK, "demo.html", demoPage{
		Issuer: d.issuer, ClientID: d.client.ID, Email: "alice@example.com", RequestID: requestID(r.Context()),
	}, "")
}

const demoCookie = "ssob_demo"

// login starts an authorization code flow with state, nonce and PKCE S256,
// kept in a MACed cookie until the callback.
func (d *demoApp) login(w http.ResponseWriter, r *http.Request) {
	p, err := d.discover(r)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	value := state + "." + nonce + "." + verifier
	d.cookies.set(w, demoCookie, value+"."+d.cookies.mac("demo", value), 10*time.Minute)
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if hint := strings.TrimSpace(r.URL.Query().Get("login_hint")); hint != "" && len(hint) <= 320 {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	http.Redirect(w, r, d.oauth(p).AuthCodeURL(state, opts...), http.StatusSeeOther)
}

func (d *demoApp) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		d.fail(w, r, fmt.Errorf("the broker returned %s: %s", e, q.Get("error_description")))
		return
	}
	ck, err := r.Cookie(d.cookies.name(demoCookie))
	if err != nil {
		d.fail(w, r, errors.New("no login in progress in this browser (the demo cookie is missing)"))
		return
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 4 || d.cookies.mac("demo", strings.Join(parts[:3], ".")) != parts[3] || parts[0] != q.Get("state") {
		d.fail(w, r, errors.New("state mismatch: this callback does not belong to the login this browser started"))
		return
	}
	nonce, verifier := parts[1], parts[2]
	p, err := d.discover(r)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	ctx := oidc.ClientContext(r.Context(), d.http)
	tok, err := d.oauth(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		d.fail(w, r, fmt.Errorf("code exchange: %w", err))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: d.client.ID}).Verify(ctx, raw)
	if err != nil {
		d.fail(w, r, fmt.Errorf("ID token: %w", err))
		return
	}
	if idt.Nonce != nonce {
		d.fail(w, r, errors.New("ID token nonce does not match"))
		return
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		d.fail(w, r, fmt.Errorf("userinfo: %w", err))
		return
	}
	var uiClaims map[string]any
	_ = ui.Claims(&uiClaims)
	d.cookies.set(w, demoCookie, "", -1)
	logout := ""
	var disc struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if p.Claims(&disc) == nil && disc.EndSession != "" {
		logout = disc.EndSession + "?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {d.issuer + "/demo/"}}.Encode()
	}
	d.pages.render(w, r, http.StatusOK, "demo.html", demoPage{
		Issuer: d.issuer, ClientID: d.client.ID, IDTokenClaims: pretty(claims), UserInfo: pretty(uiClaims),
		AccessTokenExp: tok.Expiry.Format(time.RFC3339), HasRefresh: tok.RefreshToken != "", LogoutURL: logout,
		RequestID: requestID(r.Context()),
	}, "")
}

func (d *demoApp) fail(w http.ResponseWriter, r *http.Request, err error) {
	d.log.WarnContext(r.Context(), "demo app", slog.Any("error", err))
	d.pages.render(w, r, http.StatusBadGateway, "demo.html", demoPage{
		Issuer: d.issuer, ClientID: d.client.ID, Error: err.Error(), RequestID: requestID(r.Context()),
	}, "")
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func randomString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
