package browsertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/broker"
	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

// stack is what `ssobroker dev` runs (broker, IdP simulator UI, demo app,
// SQLite), started in-process, with one difference that matters here: the
// simulator is served from another site. The broker's issuer is
// http://127.0.0.1:<port>, the simulator's base URL http://127.0.0.2:<port>
// (same handler, second listener). Sites compare hosts, not ports, so the
// simulator's auto-posted SAMLResponse reaches the ACS as a cross-site
// POST, as it does from a real IdP; with `ssobroker dev` the simulator
// shares the broker's origin and SameSite never comes into play.
type stack struct {
	issuer   string // http://127.0.0.1:port
	idp      string // http://127.0.0.2:port, the simulator's site
	clientID string
	tenantID string // the demo tenant
	logs     *syncBuffer

	mu   sync.Mutex
	seen []seenRequest
}

// seenRequest is one request as it reached the server.
type seenRequest struct {
	Method, Host, Path, Query string
	SecFetchSite              string
	Cookies                   []string // names
	Status                    int
	Location                  string
	RequestID                 string
}

const (
	demoDomain   = "example.com"
	pickerDomain = "globex.example"
	demoUser     = "alice@example.com"
)

func startStack(t *testing.T) *stack {
	t.Helper()
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.2, the IdP simulator's separate site (Linux routes all of 127.0.0.0/8 to lo): %v", err)
	}
	s := &stack{issuer: "http://" + ln1.Addr().String(), idp: "http://" + ln2.Addr().String(), logs: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", truncate(s.logs.String(), 20000))
			t.Logf("slog.Default (zitadel):\n%s", truncate(defaultLog.String(), 5000))
		}
	})
	log := slog.New(broker.NewLogHandler(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	sim, err := saml.NewSimulator(saml.SimulatorConfig{BaseURL: s.idp + "/simulator"})
	if err != nil {
		t.Fatal(err)
	}
	client, secret, tenant := provision(t, ctx, st, s.issuer, sim)
	s.clientID, s.tenantID = client, tenant
	prov, err := oidcprovider.New(ctx, oidcprovider.Config{Issuer: s.issuer, Logger: log}, st)
	if err != nil {
		t.Fatal(err)
	}
	app, err := broker.New(broker.Config{
		Issuer: s.issuer, AdminToken: adminToken, Logger: log, CookieKey: bytes.Repeat([]byte{9}, 32),
		Dev:        &broker.DevOptions{Simulator: sim, DemoClient: broker.DemoClient{ID: client, Secret: secret}},
		RateLimits: broker.RateLimits{LoginPerIP: 600, LoginPerTenant: 6000, ACSPerIP: 600, TokenPerClient: 6000, TokenPerIP: 6000, AdminPerIP: 6000, PortalPerIP: 600},
	}, broker.Deps{
		Store:   st,
		Fetcher: &saml.MetadataFetcher{AllowLoopbackHTTP: true, AllowPrivateNetworks: true},
		OIDC:    prov,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := s.recorder(app.Handler())
	for _, ln := range []net.Listener{ln1, ln2} {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	return s
}

// provision does what `ssobroker dev` does on first run (a tenant owning
// example.com with a connection to the simulator, and the demo client),
// plus a second tenant with two connections, for the picker. Its second
// connection offers only the HTTP-POST binding, so the hosted page's own
// SAML POST page is exercised too.
func provision(t *testing.T, ctx context.Context, st *store.Store, issuer string, sim *saml.Simulator) (clientID, secret, tenantID string) {
	t.Helper()
	dir := &tenants.Directory{Store: st, Clock: tenants.SystemClock{}, Random: rand.Reader}
	conn := func(tenantID, name string, idp tenants.IdPConfig) {
		key, cert, err := saml.GenerateSPKey(rand.Reader, time.Now(), "ssobroker SP")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dir.CreateConnection(ctx, tenants.Connection{TenantID: tenantID, Name: name, Preset: tenants.PresetGeneric,
			IdP: idp, SPKey: key, SPCertificate: cert}); err != nil {
			t.Fatalf("connection %s: %v", name, err)
		}
	}
	demo, err := dir.CreateTenant(ctx, tenants.NewTenant{Name: "Example Inc (demo)", Domains: []string{demoDomain}})
	if err != nil {
		t.Fatal(err)
	}
	conn(demo.ID, "IdP simulator", sim.IdPConfig())
	globex, err := dir.CreateTenant(ctx, tenants.NewTenant{Name: "Globex", Domains: []string{pickerDomain}})
	if err != nil {
		t.Fatal(err)
	}
	conn(globex.ID, "Globex staff (Okta)", sim.IdPConfig())
	postOnly := sim.IdPConfig()
	postOnly.SSORedirectURL = ""
	conn(globex.ID, "Globex contractors (POST binding)", postOnly)
	c, sec, err := dir.CreateClient(ctx, tenants.NewClient{
		Name: "Demo app", RedirectURIs: []string{issuer + "/demo/callback"}, PostLogoutRedirectURIs: []string{issuer + "/demo/"},
		InitiateLoginURI: issuer + "/demo/login",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, sec.Reveal(), demo.ID
}

const adminToken = "browsertest-admin-token-0123456789"

// portalLink asks the admin API for a one-time portal link to the demo
// tenant.
func (s *stack) portalLink(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.issuer+"/api/v1/tenants/"+s.tenantID+"/portal-links", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var link struct {
		URL string `json:"url"`
	}
	if err := json.NewDecoder(res.Body).Decode(&link); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("portal link: %d %v", res.StatusCode, err)
	}
	return link.URL
}

// recorder notes every request as the server received it: which cookies
// the browser attached and what it said about the request's site.
func (s *stack) recorder(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := seenRequest{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, SecFetchSite: r.Header.Get("Sec-Fetch-Site")}
		for _, c := range r.Cookies() {
			rec.Cookies = append(rec.Cookies, c.Name)
		}
		sort.Strings(rec.Cookies)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		rec.Status, rec.Location, rec.RequestID = sw.status, w.Header().Get("Location"), w.Header().Get("X-Request-Id")
		s.mu.Lock()
		s.seen = append(s.seen, rec)
		s.mu.Unlock()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// mark returns a position in the request log; requestsSince returns the
// requests after it whose method and path match (path prefix).
func (s *stack) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *stack) requestsSince(mark int, method, pathPrefix string) []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []seenRequest
	for _, r := range s.seen[mark:] {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			out = append(out, r)
		}
	}
	return out
}

// oneRequest is requestsSince expecting exactly one match.
func (s *stack) oneRequest(t *testing.T, mark int, method, pathPrefix string) seenRequest {
	t.Helper()
	rs := s.requestsSince(mark, method, pathPrefix)
	if len(rs) != 1 {
		t.Fatalf("want exactly one %s %s, got %d: %+v", method, pathPrefix, len(rs), rs)
	}
	return rs[0]
}
