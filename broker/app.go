package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/tenants"
)

// Config is what the HTTP application needs to know. cmd/ssobroker fills it
// from flags and the environment; packages never read the environment.
type Config struct {
	// Issuer is the broker's public base URL and OIDC issuer, without a
	// trailing slash.
	Issuer string
	// AdminToken guards /api/v1.
	AdminToken tenants.Secret
	// TrustedProxies are CIDRs of reverse proxies whose X-Forwarded-For is
	// believed. Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	Clock          tenants.Clock
	Random         io.Reader
	// MetadataRefreshInterval is how often IdP metadata URLs are fetched
	// again. CertificateWarning is how early an expiring IdP certificate is
	// reported.
	MetadataRefreshInterval time.Duration
	CertificateWarning      time.Duration
	// CookieKey MACs the hosted page's cookies; every replica needs the
	// same one (cmd derives it from the master key).
	CookieKey []byte
	// SAML configures every connection's service provider.
	SAML       saml.Options
	RateLimits RateLimits
	// Dev mounts the IdP simulator and the demo app (ssobroker dev only).
	Dev *DevOptions
}

// DevOptions are the extra parts of `ssobroker dev`.
type DevOptions struct {
	Simulator  *saml.Simulator
	DemoClient DemoClient
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = tenants.SystemClock{}
	}
	if c.Random == nil {
		c.Random = rand.Reader
	}
	if c.MetadataRefreshInterval == 0 {
		c.MetadataRefreshInterval = 12 * time.Hour
	}
	if c.CertificateWarning == 0 {
		c.CertificateWarning = 30 * 24 * time.Hour
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	c.SAML.BaseURL = c.Issuer
	if c.SAML.Clock == nil {
		c.SAML.Clock = c.Clock
	}
	c.RateLimits = c.RateLimits.withDefaults()
	return c
}

// Store is everything the HTTP application persists through. *store.Store
// implements it.
type Store interface {
	tenants.Store
	connectionRefs
	saml.ReplayCache
	auditStore
	portalLinkStore
	portalStore
	jobStore
	Health(ctx context.Context) error
}

// Deps are the collaborators the application composes.
type Deps struct {
	Store   Store
	Fetcher metadataFetcher
	// OIDC is the embedded provider; nil serves only the admin API (used by
	// tests of the admin API alone).
	OIDC *oidcprovider.Provider
}

// App is the HTTP application: admin API, hosted pages, SAML endpoints and
// the embedded OIDC provider behind one router.
type App struct {
	cfg     Config
	deps    Deps
	dir     *tenants.Directory
	audit   *auditRecorder
	pages   *pages
	metrics *metrics
	sps     serviceProviders
	handler http.Handler
}

// New builds the application. It does no I/O.
func New(cfg Config, deps Deps) (*App, error) {
	cfg = cfg.withDefaults()
	if _, err := url.Parse(cfg.Issuer); err != nil || cfg.Issuer == "" {
		return nil, fmt.Errorf("broker: issuer %q is not a URL", cfg.Issuer)
	}
	if len(cfg.AdminToken.Reveal()) < 16 {
		return nil, errors.New("broker: the admin token must be at least 16 characters")
	}
	if deps.Store == nil || deps.Fetcher == nil {
		return nil, errors.New("broker: Store and Fetcher are required")
	}
	if deps.OIDC != nil && len(cfg.CookieKey) < 32 {
		return nil, errors.New("broker: a 32-byte cookie key is required")
	}
	pg, err := newPages(cfg.Logger)
	if err != nil {
		return nil, err
	}
	var keyActiveSince func(context.Context) (time.Time, error)
	if deps.OIDC != nil {
		keyActiveSince = deps.OIDC.SigningKeyActiveSince
	}
	a := &App{cfg: cfg, deps: deps, pages: pg, metrics: newMetrics(keyActiveSince)}
	a.dir = &tenants.Directory{Store: deps.Store, Clock: cfg.Clock, Random: cfg.Random}
	a.audit = &auditRecorder{log: deps.Store, clock: cfg.Clock, random: cfg.Random, logger: cfg.Logger}
	a.sps = serviceProviders{cache: saml.NewCache(saml.DefaultCacheEntries, cfg.SAML), store: deps.Store}
	a.handler = a.routes()
	return a, nil
}

// RecordRevocation writes a revocation by the OIDC provider to the audit
// log; wire it as oidcprovider.Config.OnRevoke.
func (a *App) RecordRevocation(ctx context.Context, r oidcprovider.Revocation) {
	a.audit.revocation(ctx, r)
}

// ErrorPage renders the broker's error page with a fixed title and
// message and the request's reference; wire it as
// oidcprovider.Config.ErrorPage.
func (a *App) ErrorPage(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	a.pages.render(w, r, status, "error.html", errorPage{Title: title, Message: message, RequestID: requestID(r.Context())}, "")
}

// Handler serves every route.
func (a *App) Handler() http.Handler { return a.handler }

func (a *App) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(withRequestID)
	if len(a.cfg.TrustedProxies) > 0 {
		prefixes := make([]string, len(a.cfg.TrustedProxies))
		for i, p := range a.cfg.TrustedProxies {
			prefixes[i] = p.String()
		}
		r.Use(middleware.ClientIPFromXFF(prefixes...))
	} else {
		r.Use(middleware.ClientIPFromRemoteAddr)
	}
	r.Use(accessLog(a.cfg.Logger), a.metrics.observe, recoverPanics(a.cfg.Logger), securityHeaders)

	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	r.Get("/readyz", a.ready)

	adm := &admin{
		token: a.cfg.AdminToken, dir: a.dir, audit: a.deps.Store, portalLinks: a.deps.Store,
		issuer: a.cfg.Issuer, clock: a.cfg.Clock, log: a.cfg.Logger, recorder: a.audit,
		connections: &connectionAdmin{
			dir: a.dir, fetcher: a.deps.Fetcher, urls: spURLs{a.cfg.Issuer}, clock: a.cfg.Clock, random: a.cfg.Random,
			refreshInterval: a.cfg.MetadataRefreshInterval, certWarning: a.cfg.CertificateWarning, recorder: a.audit,
		},
	}
	rl := a.cfg.RateLimits
	newL := func(name string, n int) *limiter {
		return newLimiter(name, n, rl.Window, rl.MaxTrackedKeys, a.cfg.Clock)
	}
	r.With(a.limitByIP(newL("admin_ip", rl.AdminPerIP), false)).Route("/api/v1", adm.Mount)
	r.Handle("/metrics", a.metrics.handler())
	r.Handle("/static/*", staticHandler())
	if a.deps.OIDC == nil {
		return r
	}

	logins := oidcLogins{p: a.deps.OIDC}
	ck := cookies{key: a.cfg.CookieKey, secure: strings.HasPrefix(a.cfg.Issuer, "https://")}
	// One per-IP budget covers /authorize and the hosted page, so probing
	// which domains have SSO costs a login attempt each, whichever way in.
	loginIP := newL("login_ip", rl.LoginPerIP)
	hp := &hostedPage{logins: logins, dir: a.dir, refs: a.deps.Store, sps: a.sps, pages: a.pages, cookies: ck, log: a.cfg.Logger,
		perTenant: newL("login_tenant", rl.LoginPerTenant), limited: a.rateLimited}
	r.With(a.limitByIP(loginIP, true)).Group(hp.Mount)
	ac := &acs{logins: logins, dir: a.dir, refs: a.deps.Store, sps: a.sps, replay: a.deps.Store, pages: a.pages,
		recorder: a.audit, metrics: a.metrics, issuer: a.cfg.Issuer, clock: a.cfg.Clock, log: a.cfg.Logger,
		maxResponseBytes: a.cfg.SAML.MaxResponseBytes}
	if ac.maxResponseBytes == 0 {
		ac.maxResponseBytes = saml.DefaultMaxResponseBytes
	}
	ac.Mount(r, a.limitByIP(newL("acs_ip", rl.ACSPerIP), true))
	pt := &portal{store: a.deps.Store, dir: a.dir, connections: adm.connections, pages: a.pages, cookies: ck,
		recorder: a.audit, clock: a.cfg.Clock, log: a.cfg.Logger, sessionTTL: 8 * time.Hour}
	r.With(a.limitByIP(newL("portal_ip", rl.PortalPerIP), true)).Route("/portal", pt.Mount)
	if dev := a.cfg.Dev; dev != nil {
		sim := &simulatorUI{sim: dev.Simulator, sps: a.sps, refs: a.deps.Store, urls: spURLs{a.cfg.Issuer}, pages: a.pages, log: a.cfg.Logger}
		r.Route("/simulator", sim.Mount)
		demo := &demoApp{issuer: a.cfg.Issuer, client: dev.DemoClient, cookies: ck, pages: a.pages, log: a.cfg.Logger, http: &http.Client{Timeout: 10 * time.Second}}
		r.Route("/demo", demo.Mount)
	}
	// Everything else is the OIDC provider: discovery, /authorize,
	// /authorize/callback, /oauth/token, /userinfo, /keys, /revoke,
	// /oauth/introspect, /end_session.
	op := a.deps.OIDC.Handler()
	r.With(a.limitByIP(loginIP, false)).Handle("/authorize", op)
	r.With(a.limitToken(newL("token_client", rl.TokenPerClient), newL("token_ip", rl.TokenPerIP))).Handle("/oauth/token", op)
	r.Mount("/", op)
	return r
}

// ready reports whether the store accepts a write; load balancers take a
// replica out of rotation while its database is unreachable.
func (a *App) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := a.deps.Store.Health(r.Context()); err != nil {
		a.cfg.Logger.WarnContext(r.Context(), "readiness check failed", slog.Any("error", err))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "store unavailable\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}
