package broker

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/tenants"
)

// portalStore keeps one-time portal links and the sessions they open.
type portalStore interface {
	OpenPortalLink(ctx context.Context, tokenHash string, now time.Time) (tenantID string, err error)
	CreatePortalSession(ctx context.Context, tokenHash, tenantID string, createdAt, expiresAt time.Time) error
	PortalSession(ctx context.Context, tokenHash string, now time.Time) (tenantID string, err error)
	DeletePortalSession(ctx context.Context, tokenHash string) error
}

// portal is the tenant IT admin's self-serve page: opened by a one-time
// link the operator creates, it shows the SP values to give the IdP (ACS
// URL, entity ID, metadata, certificate) and takes the IdP's metadata.
// Everything is scoped to the one tenant of the session: a connection of
// another tenant is "not found", never shown or changed.
type portal struct {
	store       portalStore
	dir         *tenants.Directory
	connections *connectionAdmin
	pages       *pages
	cookies     cookies
	recorder    *auditRecorder
	clock       tenants.Clock
	log         *slog.Logger
	sessionTTL  time.Duration
}

const portalCookie = "ssob_portal"

func (p *portal) Mount(r chi.Router) {
	r.Get("/open", p.open)
	r.Get("/", p.show)
	r.Post("/connections", p.createConnection)
	r.Post("/connections/{connectionID}", p.updateConnection)
	r.Post("/logout", p.logout)
}

// open redeems a portal link (single use, expiring) for a session cookie,
// then redirects so the token leaves the address bar and history.
func (p *portal) open(w http.ResponseWriter, r *http.Request) {
	token := tenants.Secret(r.URL.Query().Get("token"))
	if !strings.HasPrefix(token.Reveal(), portalLinkPrefix) || len(token.Reveal()) > 128 {
		p.gone(w, r)
		return
	}
	now := p.clock.Now()
	tenantID, err := p.store.OpenPortalLink(r.Context(), tenants.HashSecret(token), now)
	if err != nil {
		if !errors.Is(err, tenants.ErrNotFound) {
			p.log.ErrorContext(r.Context(), "opening portal link", slog.Any("error", err))
		}
		p.gone(w, r)
		return
	}
	session, err := tenants.NewToken("ssob_ps_", p.dir.Random)
	if err != nil {
		p.gone(w, r)
		return
	}
	if err := p.store.CreatePortalSession(r.Context(), tenants.HashSecret(session), tenantID, now, now.Add(p.sessionTTL)); err != nil {
		p.log.ErrorContext(r.Context(), "creating portal session", slog.Any("error", err))
		p.gone(w, r)
		return
	}
	p.recorder.record(r.Context(), "portal", audit.Event{Type: audit.PortalLinkOpened, TenantID: tenantID})
	p.cookies.set(w, portalCookie, session.Reveal(), p.sessionTTL)
	http.Redirect(w, r, "/portal/", http.StatusSeeOther)
}

func (p *portal) gone(w http.ResponseWriter, r *http.Request) {
	p.pages.render(w, r, http.StatusNotFound, "error.html", errorPage{
		Title:     "This link has expired",
		Message:   "Portal links work once and expire. Ask the application's administrator for a new link.",
		RequestID: requestID(r.Context()),
	}, "")
}

// session returns the tenant of the request's portal session.
func (p *portal) session(r *http.Request) (tenantID string, session tenants.Secret, ok bool) {
	ck, err := r.Cookie(p.cookies.name(portalCookie))
	if err != nil || len(ck.Value) > 128 {
		return "", "", false
	}
	session = tenants.Secret(ck.Value)
	tenantID, err = p.store.PortalSession(r.Context(), tenants.HashSecret(session), p.clock.Now())
	if err != nil {
		return "", "", false
	}
	addLogAttrs(r.Context(), slog.String("tenant_id", tenantID))
	return tenantID, session, true
}

func (p *portal) csrf(session tenants.Secret) string {
	return p.cookies.mac("portal-csrf", session.Reveal())
}

type portalConnection struct {
	connectionJSON
	Presets []string
}

type portalPage struct {
	Tenant      tenants.Tenant
	Connections []portalConnection
	Presets     []string
	CSRF        string
	Message     string
	Error       string
	RequestID   string
}

func (p *portal) show(w http.ResponseWriter, r *http.Request) {
	tenantID, session, ok := p.session(r)
	if !ok {
		p.gone(w, r)
		return
	}
	p.render(w, r, tenantID, session, http.StatusOK, r.URL.Query().Get("saved") != "", "")
}

func (p *portal) render(w http.ResponseWriter, r *http.Request, tenantID string, session tenants.Secret, status int, saved bool, problem string) {
	ctx := r.Context()
	t, err := p.dir.Store.Tenant(ctx, tenantID)
	if err != nil {
		p.gone(w, r)
		return
	}
	conns, _, err := p.dir.Store.ListConnections(ctx, tenantID, tenants.Page{Limit: tenants.MaxPageLimit})
	if err != nil {
		p.log.ErrorContext(ctx, "portal: listing connections", slog.Any("error", err))
		p.gone(w, r)
		return
	}
	presets := make([]string, len(tenants.Presets))
	for i, pr := range tenants.Presets {
		presets[i] = string(pr)
	}
	page := portalPage{Tenant: t, Presets: presets, CSRF: p.csrf(session), Error: problem, RequestID: requestID(ctx)}
	if saved {
		page.Message = "Saved."
	}
	for _, c := range conns {
		page.Connections = append(page.Connections, portalConnection{connectionJSON: p.connections.toJSON(c), Presets: presets})
	}
	p.pages.render(w, r, status, "portal.html", page, "")
}

// form reads and checks a portal POST: session, CSRF token, bounded body.
func (p *portal) form(w http.ResponseWriter, r *http.Request) (tenantID string, session tenants.Secret, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form is too large or malformed", http.StatusBadRequest)
		return "", "", false
	}
	tenantID, session, ok = p.session(r)
	if !ok {
		p.gone(w, r)
		return "", "", false
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(p.csrf(session))) {
		p.log.InfoContext(r.Context(), "portal CSRF check failed", slog.String("ip", clientIP(r)))
		p.render(w, r, tenantID, session, http.StatusForbidden, false, "The page was open too long. Reload it and try again.")
		return "", "", false
	}
	return tenantID, session, true
}

// requestFromForm maps the portal's form to the admin API's request, so
// both go through the same validation.
func requestFromForm(r *http.Request) connectionRequest {
	f := r.PostForm
	var in connectionRequest
	opt := func(name string) *string {
		if v := strings.TrimSpace(f.Get(name)); v != "" {
			return &v
		}
		return nil
	}
	in.Name, in.Preset, in.Status = opt("name"), opt("preset"), opt("status")
	in.IdPMetadataXML, in.IdPMetadataURL = opt("idp_metadata_xml"), opt("idp_metadata_url")
	return in
}

func (p *portal) createConnection(w http.ResponseWriter, r *http.Request) {
	tenantID, session, ok := p.form(w, r)
	if !ok {
		return
	}
	c, err := p.connections.createConnection(r.Context(), tenantID, requestFromForm(r))
	if err != nil {
		p.fail(w, r, tenantID, session, err)
		return
	}
	p.recorder.record(r.Context(), "portal", audit.Event{Type: audit.ConnectionCreated, TenantID: tenantID, ConnectionID: c.ID,
		Detail: fmt.Sprintf("preset %s, IdP %s", c.Preset, truncate(c.IdP.EntityID, 200))})
	http.Redirect(w, r, "/portal/?saved=1", http.StatusSeeOther)
}

func (p *portal) updateConnection(w http.ResponseWriter, r *http.Request) {
	tenantID, session, ok := p.form(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "connectionID")
	if !validID(id, tenants.PrefixConnection) {
		p.fail(w, r, tenantID, session, notFoundError("that connection does not exist"))
		return
	}
	c, newSource, err := p.connections.updateConnection(r.Context(), id, tenantID, requestFromForm(r))
	if err != nil {
		p.fail(w, r, tenantID, session, err)
		return
	}
	p.recorder.record(r.Context(), "portal", audit.Event{Type: audit.ConnectionUpdated, TenantID: tenantID, ConnectionID: c.ID,
		Detail: fmt.Sprintf("status %s, new IdP source %t", c.Status, newSource)})
	http.Redirect(w, r, "/portal/?saved=1", http.StatusSeeOther)
}

// fail shows the form again with a specific, safe message: the IT admin
// is the one who can fix their metadata, so validation details are theirs
// to see; internal errors are not.
func (p *portal) fail(w http.ResponseWriter, r *http.Request, tenantID string, session tenants.Secret, err error) {
	ae := toAPIError(err)
	msg := ae.Detail
	if ae.Status >= 500 {
		p.log.ErrorContext(r.Context(), "portal", slog.Any("error", err))
		msg = "Something went wrong on our side. Try again in a moment."
	}
	if ae.Status == http.StatusNotFound {
		msg = "That connection does not exist."
	}
	p.render(w, r, tenantID, session, ae.Status, false, msg)
}

func (p *portal) logout(w http.ResponseWriter, r *http.Request) {
	_, session, ok := p.form(w, r)
	if !ok {
		return
	}
	_ = p.store.DeletePortalSession(r.Context(), tenants.HashSecret(session))
	p.cookies.set(w, portalCookie, "", -1)
	p.pages.render(w, r, http.StatusOK, "error.html", errorPage{Title: "Signed out", Message: "You have left the portal.", RequestID: requestID(r.Context())}, "")
}
