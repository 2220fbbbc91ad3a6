package saml

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

var formValue = func(name string) *regexp.Regexp {
	return regexp.MustCompile(`name="` + name + `" value="([^"]*)"`)
}

// TestSimulatorHTTP drives the simulator's handler over real HTTP on
// 127.0.0.1, with both bindings, and validates what its page would post.
func TestSimulatorHTTP(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	clock := &fixedClock{t: testNow}
	key := readKey(t, "idp-a")
	var decided atomic.Value
	sim, err := NewSimulator(SimulatorConfig{
		BaseURL: srv.URL + "/idp", Key: key, Certificate: testCert(t, key, "idp-a", certFrom, certTo), Clock: clock,
		Decide: func(info AuthnRequestInfo) (SimulatedUser, Scenario, error) {
			decided.Store(info)
			if info.RelayState == "deny" {
				return SimulatedUser{}, Scenario{}, errors.New("access denied by policy")
			}
			u := alice()
			u.Style = StyleEntra
			return u, Scenario{Sign: SignAssertion}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/idp/", http.StripPrefix("/idp", sim.Handler()))

	spKey := readKey(t, "sp")
	conn := tenants.Connection{ID: "conn_http", Preset: tenants.PresetEntra, IdP: sim.IdPConfig(),
		SPKey: keyPEM(t, spKey), SPCertificate: tenants.CertificatePEM(testCert(t, spKey, "sp", certFrom, certTo))}
	// The broker would fetch the IdP metadata; do it through the guarded
	// fetcher, allowed to reach loopback in development.
	md, err := (&MetadataFetcher{AllowLoopbackHTTP: true}).Fetch(context.Background(), srv.URL+"/idp/metadata")
	if err != nil {
		t.Fatal(err)
	}
	if conn.IdP, err = ParseIdPMetadata(md); err != nil {
		t.Fatal(err)
	}
	sp, err := NewServiceProvider(conn, Options{BaseURL: "https://sso.example.com", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.RegisterServiceProvider(mustMetadata(t, sp)); err != nil {
		t.Fatal(err)
	}

	for _, binding := range []string{"redirect", "post"} {
		t.Run(binding, func(t *testing.T) {
			req, err := sp.NewAuthnRequest("state-"+binding, false)
			if err != nil {
				t.Fatal(err)
			}
			var resp *http.Response
			if binding == "redirect" {
				resp, err = http.Get(req.RedirectURL)
			} else {
				post, _ := url.Parse(sp.conn.IdP.SSOPostURL)
				resp, err = http.PostForm(post.String(), url.Values{"SAMLRequest": {mustPostRequest(t, sp, "state-post").SAMLRequest}, "RelayState": {"state-post"}})
				req.RelayState = "state-post"
			}
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, page)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "form-action https://sso.example.com") ||
				resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Fatalf("headers %v", resp.Header)
			}
			body := string(page)
			if strings.Contains(strings.ToLower(body), "<script") || !strings.Contains(body, `<form method="post" action="https://sso.example.com/saml/conn_http/acs">`) ||
				!strings.Contains(body, `<button type="submit">`) {
				t.Fatalf("page:\n%s", body)
			}
			samlResponse := html.UnescapeString(formValue("SAMLResponse").FindStringSubmatch(body)[1])
			if got := html.UnescapeString(formValue("RelayState").FindStringSubmatch(body)[1]); got != req.RelayState {
				t.Fatalf("RelayState %q", got)
			}
			doc, err := DecodeResponse(samlResponse, 0)
			if err != nil {
				t.Fatal(err)
			}
			irt, err := InResponseTo(doc)
			if err != nil {
				t.Fatal(err)
			}
			var p tenants.Profile
			withCrewjamNow(testNow, func() {
				p, err = sp.ValidateResponse(context.Background(), doc, irt, newMemReplay())
			})
			if err != nil || p.Email != "alice@example.com" || p.Subject != derivedUUID("alice@example.com") {
				t.Fatalf("%+v %v", p, err)
			}
			if info := decided.Load().(AuthnRequestInfo); info.Binding != binding || info.Issuer != sp.EntityID() {
				t.Fatalf("%+v", info)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		req, _ := sp.NewAuthnRequest("deny", false)
		resp, err := http.Get(req.RedirectURL)
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
		for _, u := range []string{srv.URL + "/idp/sso", srv.URL + "/idp/sso?SAMLRequest=%%%"} {
			resp, err := http.Get(u)
			if err != nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s: %v %v", u, resp, err)
			}
			resp.Body.Close()
		}
	})
}

func mustPostRequest(t *testing.T, sp *ServiceProvider, rs string) AuthnRequest {
	t.Helper()
	c := sp.conn
	c.IdP.SSORedirectURL = ""
	postOnly, err := NewServiceProvider(c, sp.opts)
	if err != nil {
		t.Fatal(err)
	}
	req, err := postOnly.NewAuthnRequest(rs, false)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSimulatorChecksRequests(t *testing.T) {
	e := newTestEnv(t)
	other := newEnv(t, envConfig{idpKey: "idp-b", spKey: "sp-b", idpBase: "https://idp-b.example.com/sim", connID: "conn_b"})
	redirect := func(sp *ServiceProvider, mod func(string) string) error {
		req, err := sp.NewAuthnRequest("", false)
		if err != nil {
			t.Fatal(err)
		}
		xml := inflate(t, req.RedirectURL)
		u := e.sim.SSOURL() + "?SAMLRequest=" + url.QueryEscape(deflateB64(t, []byte(mod(string(xml)))))
		_, err = e.sim.ParseAuthnRequest(httptest.NewRequest("GET", u, nil))
		return err
	}
	same := func(s string) string { return s }
	if err := redirect(e.sp, same); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sp   *ServiceProvider
		mod  func(string) string
		want string
	}{
		{"unregistered SP", other.sp, same, "unknown SP"},
		{"foreign ACS", e.sp, func(s string) string {
			return strings.Replace(s, `AssertionConsumerServiceURL="https://sso.example.com/saml/conn_a/acs"`, `AssertionConsumerServiceURL="https://evil.example.com/acs"`, 1)
		}, "not in the SP's metadata"},
		{"other destination", e.sp, func(s string) string {
			return strings.Replace(s, `Destination="https://idp-a.example.com/sim/sso"`, `Destination="https://idp-c.example.com/sso"`, 1)
		}, "not this IdP's SSO URL"},
		{"not an AuthnRequest", e.sp, func(string) string { return `<x/>` }, "not an AuthnRequest"},
		{"DTD", e.sp, func(s string) string { return `<!DOCTYPE x>` + s }, "DTD not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := redirect(tc.sp, tc.mod); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
	t.Run("scenario and input errors", func(t *testing.T) {
		info := e.request(t)
		if _, err := e.sim.Respond(info, alice(), Scenario{Name: "nope"}); err == nil {
			t.Fatal("unknown scenario")
		}
		if _, err := e.sim.Respond(AuthnRequestInfo{Issuer: "https://unknown.example.com"}, alice(), Scenario{}); err == nil {
			t.Fatal("unknown SP")
		}
		if err := e.sim.RegisterServiceProvider(e.sim.Metadata()); err == nil {
			t.Fatal("IdP metadata registered as an SP")
		}
		if _, err := NewSimulator(SimulatorConfig{BaseURL: "relative"}); err == nil {
			t.Fatal("relative base URL")
		}
		if _, err := NewSimulator(SimulatorConfig{BaseURL: "https://x.example.com", Key: readKey(t, "idp-a")}); err == nil {
			t.Fatal("key without certificate")
		}
		if len(Scenarios()) != 12 {
			t.Fatal("scenario list")
		}
	})
}

func deflateB64(t *testing.T, b []byte) string {
	t.Helper()
	var buf strings.Builder
	w := newDeflateWriter(t, &buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.String()
}

// TestSimulatorGeneratesKeys uses the default, generated key pair.
func TestSimulatorGeneratesKeys(t *testing.T) {
	sim, err := NewSimulator(SimulatorConfig{BaseURL: "https://idp.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	c := sim.Certificate()
	if c.NotAfter.Before(time.Now().AddDate(5, 0, 0)) || sim.EntityID() != "https://idp.example.com/metadata" {
		t.Fatalf("%s %s", c.NotAfter, sim.EntityID())
	}
	if _, err := ParseIdPMetadata(sim.Metadata()); err != nil {
		t.Fatal(err)
	}
}

func TestCache(t *testing.T) {
	e := newTestEnv(t)
	var loads atomic.Int32
	conns := map[string]tenants.Connection{}
	for _, id := range []string{"conn_1", "conn_2", "conn_3"} {
		c := e.conn
		c.ID = id
		conns[id] = c
	}
	load := func(id string) func(context.Context) (tenants.Connection, error) {
		return func(context.Context) (tenants.Connection, error) {
			loads.Add(1)
			return conns[id], nil
		}
	}
	c := NewCache(2, Options{BaseURL: "https://sso.example.com"})
	ctx := context.Background()
	sp1, err := c.ServiceProvider(ctx, "conn_1", testNow, load("conn_1"))
	if err != nil || sp1.EntityID() != "https://sso.example.com/saml/conn_1" {
		t.Fatal(err)
	}
	again, _ := c.ServiceProvider(ctx, "conn_1", testNow, load("conn_1"))
	if again != sp1 || loads.Load() != 1 {
		t.Fatal("not reused")
	}
	// A newer UpdatedAt reloads.
	updated := conns["conn_1"]
	updated.UpdatedAt = testNow.Add(time.Minute)
	conns["conn_1"] = updated
	sp1b, _ := c.ServiceProvider(ctx, "conn_1", updated.UpdatedAt, load("conn_1"))
	if sp1b == sp1 || loads.Load() != 2 {
		t.Fatal("stale entry served")
	}
	// LRU: conn_2 then conn_3 evict conn_1.
	_, _ = c.ServiceProvider(ctx, "conn_2", testNow, load("conn_2"))
	_, _ = c.ServiceProvider(ctx, "conn_3", testNow, load("conn_3"))
	if c.Len() != 2 {
		t.Fatalf("len %d", c.Len())
	}
	_, _ = c.ServiceProvider(ctx, "conn_1", updated.UpdatedAt, load("conn_1"))
	if loads.Load() != 5 {
		t.Fatalf("loads %d", loads.Load())
	}
	c.Invalidate("conn_1")
	_, _ = c.ServiceProvider(ctx, "conn_1", updated.UpdatedAt, load("conn_1"))
	if loads.Load() != 6 {
		t.Fatalf("loads %d", loads.Load())
	}
	// Errors are returned and not cached.
	boom := errors.New("store down")
	if _, err := c.ServiceProvider(ctx, "conn_9", testNow, func(context.Context) (tenants.Connection, error) { return tenants.Connection{}, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := c.ServiceProvider(ctx, "conn_9", testNow, load("conn_2")); err == nil {
		t.Fatal("a loader returning another connection was accepted")
	}
	// Concurrent use (run with -race).
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := []string{"conn_1", "conn_2", "conn_3"}[i%3]
			if _, err := c.ServiceProvider(ctx, id, conns[id].UpdatedAt, load(id)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
