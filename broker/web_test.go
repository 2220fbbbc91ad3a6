package broker_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/broker"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/store/storetest"
)

// TestHostedPageHeadersAndCookies: strict CSP without inline script,
// framing denied, no caching, and HttpOnly SameSite=Lax cookies.
func TestHostedPageHeadersAndCookies(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], envOptions{})
	e.tenant("Acme", "acme.com")
	c := e.client(nil)
	br := newBrowser(t)
	p := br.open(http.MethodGet, c.authURL(newFlow(), nil), nil)
	if p.URL.Path != "/login" {
		t.Fatalf("not on the hosted page: %s", p.URL)
	}
	csp := p.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := p.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(p.Body) || strings.Contains(p.Body, " style=") || strings.Contains(p.Body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(p.Body) {
		t.Error("the hosted page carries inline script, style or event handlers")
	}
	// Cookies as the browser received them.
	res, err := http.Get(p.URL.String())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var nonce *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "ssob_nonce" {
			nonce = ck
		}
	}
	if nonce == nil || !nonce.HttpOnly || nonce.SameSite != http.SameSiteLaxMode || nonce.Path != "/" {
		t.Fatalf("nonce cookie %+v: want HttpOnly, SameSite=Lax, Path=/", nonce)
	}
}

// TestHostedPageCSRF: a POST without the form token, or with a token made
// for another browser or another login, is refused and routes nothing.
func TestHostedPageCSRF(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], envOptions{})
	e.tenant("Acme", "acme.com")
	c := e.client(nil)
	victim, attacker := newBrowser(t), newBrowser(t)
	vp := victim.open(http.MethodGet, c.authURL(newFlow(), nil), nil)
	ap := attacker.open(http.MethodGet, c.authURL(newFlow(), nil), nil)
	vf, af := vp.forms(t)[0], ap.forms(t)[0]
	tests := []struct {
		name string
		b    *browser
		form url.Values
	}{
		{"no token", victim, url.Values{"id": {vf.fields.Get("id")}, "email": {"a@acme.com"}}},
		{"token of another browser", victim, url.Values{"id": {vf.fields.Get("id")}, "csrf": {af.fields.Get("csrf")}, "email": {"a@acme.com"}}},
		{"token of another login", attacker, url.Values{"id": {vf.fields.Get("id")}, "csrf": {af.fields.Get("csrf")}, "email": {"a@acme.com"}}},
		{"no cookie at all", newBrowser(t), url.Values{"id": {vf.fields.Get("id")}, "csrf": {vf.fields.Get("csrf")}, "email": {"a@acme.com"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.b.open(http.MethodPost, e.issuer+"/login", tt.form)
			if p.Status != http.StatusForbidden || p.URL.Path != "/login" {
				t.Fatalf("got %d at %s, want 403 on the hosted page", p.Status, p.URL)
			}
		})
	}
}

// TestNoDomainEnumeration: an unknown domain, a domain without an active
// connection, and a domain of a tenant the client may not serve all get
// the same answer, so the page reveals nothing beyond "no SSO here".
func TestNoDomainEnumeration(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], envOptions{})
	allowed, _ := e.tenant("Acme", "acme.com")
	e.tenant("Other", "other.com")
	var idle idResp
	e.admin.do("POST", "/api/v1/tenants", map[string]any{"name": "Idle", "domains": []string{"idle.com"}}).json(t, &idle)
	c := e.client(map[string]any{"allowed_tenants": []string{allowed}})
	answer := func(email string) (int, string) {
		br := newBrowser(t)
		p := br.open(http.MethodGet, c.authURL(newFlow(), nil), nil)
		p = br.submit(p, map[string]string{"email": email})
		domain := email[strings.IndexByte(email, '@')+1:]
		return p.Status, strings.ReplaceAll(regexp.MustCompile(`lgn_[A-Za-z0-9_-]+|value="[^"]*"|<code>[0-9a-f]+</code>`).ReplaceAllString(p.Body, ""), domain, "DOMAIN")
	}
	s1, b1 := answer("a@nowhere-at-all.com")
	for _, email := range []string{"a@idle.com", "a@other.com"} {
		s, body := answer(email)
		if s != s1 || body != b1 {
			t.Errorf("%s answers %d differently from an unknown domain (%d)", email, s, s1)
		}
	}
}

// TestRateLimits: each surface answers 429 with Retry-After past its limit.
func TestRateLimits(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], envOptions{limits: broker.RateLimits{LoginPerIP: 3, ACSPerIP: 2, TokenPerIP: 2, TokenPerClient: 100, AdminPerIP: 1000, PortalPerIP: 2}})
	_, conn := e.tenant("Acme", "acme.com")
	c := e.client(nil)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name string
		req  func() *http.Response
		n    int
	}{
		{"authorize and hosted page share a per-IP budget", func() *http.Response {
			res, _ := noFollow.Get(c.authURL(newFlow(), nil))
			return res
		}, 3},
		{"ACS", func() *http.Response {
			res, _ := http.PostForm(e.issuer+"/saml/"+conn+"/acs", url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("<x/>"))}})
			return res
		}, 2},
		{"token endpoint", func() *http.Response {
			res, _ := http.PostForm(e.issuer+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {c.ID}})
			return res
		}, 2},
		{"portal", func() *http.Response {
			res, _ := http.Get(e.issuer + "/portal/open?token=ssob_pl_x")
			return res
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < tt.n; i++ {
				res := tt.req()
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusTooManyRequests {
					t.Fatalf("request %d limited before the limit", i+1)
				}
			}
			res := tt.req()
			defer res.Body.Close()
			if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
				t.Fatalf("over the limit: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
			}
		})
	}
}

// TestNoSecretsInLogs runs full flows (login, refresh, reuse, revocation,
// logout, a rejected response, admin calls) and scans every log line the
// broker and the OIDC library wrote for secrets, tokens, codes, SAML
// messages and signatures.
func TestNoSecretsInLogs(t *testing.T) {
	prev := slog.Default()
	e := newEnv(t, storetest.Backends()[1], envOptions{})
	// zitadel logs through slog.Default: capture it too (not parallel).
	slog.SetDefault(slog.New(broker.NewLogHandler(slog.NewJSONHandler(e.logs, nil))))
	t.Cleanup(func() { slog.SetDefault(prev) })

	acme, _ := e.tenant("Acme", "acme.com")
	c := e.client(nil)
	e.setUser(user("jane@acme.com"), saml.Scenario{})
	var secrets []string
	for i := 0; i < 2; i++ {
		br := newBrowser(t)
		f := newFlow()
		final := e.signIn(br, c, f, map[string]string{"login_hint": "jane@acme.com"}, "")
		code := final.URL.Query().Get("code")
		tok := e.redeem(c, f, final)
		secrets = append(secrets, code, tok.tok.AccessToken, tok.tok.RefreshToken, tok.raw, f.verifier)
		ctx := context.Background()
		if i == 0 {
			rotated, err := c.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.tok.RefreshToken}).Token()
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, rotated.RefreshToken, rotated.AccessToken)
			_, _ = c.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.tok.RefreshToken}).Token() // reuse
			_, _ = c.cfg.Exchange(ctx, code, oauth2.VerifierOption(f.verifier))                      // code replay
		} else {
			revoke(t, e, c, tok.tok.AccessToken)
		}
	}
	// A wrongly signed response, so rejection paths log too.
	e.setUser(user("jane@acme.com"), saml.Scenario{Name: saml.ScenarioWrongSignature})
	e.signIn(newBrowser(t), c, newFlow(), map[string]string{"login_hint": "jane@acme.com"}, "")
	// A wrong client secret at the token endpoint.
	bad := *c.cfg
	bad.ClientSecret = "ssob_cs_wrongwrongwrongwrongwrongwrongwrongwro"
	_, _ = bad.Exchange(context.Background(), "x")
	secrets = append(secrets, c.Secret, bad.ClientSecret, adminToken)
	var link struct {
		URL string `json:"url"`
	}
	e.admin.do("POST", "/api/v1/tenants/"+acme+"/portal-links", nil).json(t, &link)
	newBrowser(t).open(http.MethodGet, link.URL, nil)
	secrets = append(secrets, strings.TrimPrefix(link.URL[strings.Index(link.URL, "token="):], "token="))

	logs := e.logs.String()
	if len(logs) < 1000 {
		t.Fatalf("suspiciously little logged (%d bytes): the scan would prove nothing", len(logs))
	}
	for _, s := range secrets {
		if len(s) < 16 {
			t.Fatalf("secret %q too short to scan for", s)
		}
		if strings.Contains(logs, s) || strings.Contains(logs, url.QueryEscape(s)) {
			t.Errorf("a secret of %d chars (prefix %.8s) appears in the logs", len(s), s)
		}
	}
	for _, marker := range []string{"SAMLResponse=", "PHNhbWxwOlJlc3BvbnNl", "<ds:SignatureValue", "SignatureValue>", "BEGIN RSA PRIVATE KEY", "BEGIN PRIVATE KEY", "client_secret="} {
		if strings.Contains(logs, marker) {
			t.Errorf("logs contain %q", marker)
		}
	}
}

// TestMetrics: /metrics counts logins by outcome and reason, times every
// route by its pattern, and reports the signing key in use.
func TestMetrics(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], envOptions{})
	e.tenant("Acme", "acme.com")
	c := e.client(nil)
	e.setUser(user("jane@acme.com"), saml.Scenario{})
	f := newFlow()
	e.redeem(c, f, e.signIn(newBrowser(t), c, f, map[string]string{"login_hint": "jane@acme.com"}, ""))
	e.setUser(user("jane@acme.com"), saml.Scenario{Name: saml.ScenarioExpired})
	e.signIn(newBrowser(t), c, newFlow(), map[string]string{"login_hint": "jane@acme.com"}, "")

	res, err := http.Get(e.issuer + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m := string(body)
	for _, want := range []string{
		`ssobroker_logins_total{outcome="succeeded",reason=""} 1`,
		`ssobroker_logins_total{outcome="failed",reason="expired"} 1`,
		`ssobroker_http_request_duration_seconds_count{method="POST",route="/saml/{connectionID}/acs",status="303"} 1`,
		`route="/oauth/token"`,
		`route="/userinfo"`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if regexp.MustCompile(`route="/saml/conn_`).MatchString(m) || strings.Contains(m, "lgn_") {
		t.Error("/metrics labels carry raw ids")
	}
	if !regexp.MustCompile(`(?m)^ssobroker_signing_key_active_since_timestamp_seconds [1-9][0-9.e+]*$`).MatchString(m) {
		t.Error("no signing key gauge")
	}
}

// TestPerTenantLoginLimit: logins routed to one tenant are limited
// together, whatever the client's address, and other tenants are not
// affected.
func TestPerTenantLoginLimit(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], envOptions{limits: broker.RateLimits{LoginPerTenant: 2}})
	e.tenant("Acme", "acme.com")
	e.tenant("Beta", "beta.com")
	c := e.client(nil)
	route := func(email string) int {
		br := newBrowser(t)
		p := br.open(http.MethodGet, c.authURL(newFlow(), nil), nil)
		br.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return br.submit(p, map[string]string{"email": email}).Status
	}
	for i := 0; i < 2; i++ {
		if s := route("jane@acme.com"); s != http.StatusSeeOther {
			t.Fatalf("login %d to acme: %d", i+1, s)
		}
	}
	if s := route("joe@acme.com"); s != http.StatusTooManyRequests {
		t.Fatalf("third login to acme: %d, want 429", s)
	}
	if s := route("bob@beta.com"); s != http.StatusSeeOther {
		t.Fatalf("beta limited by acme's traffic: %d", s)
	}
}
