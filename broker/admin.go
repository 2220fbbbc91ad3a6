package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
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

// auditStore records and lists audit events.
type auditStore interface {
	AppendAudit(ctx context.Context, e audit.Event) error
	ListAudit(ctx context.Context, f audit.Filter) (items []audit.Event, next string, err error)
}

// portalLinkStore issues one-time portal links.
type portalLinkStore interface {
	CreatePortalLink(ctx context.Context, tokenHash, tenantID string, createdAt, expiresAt time.Time) error
}

// admin serves the operator's REST API under /api/v1.
type admin struct {
	token       tenants.Secret
	dir         *tenants.Directory
	audit       auditStore
	portalLinks portalLinkStore
	connections *connectionAdmin
	issuer      string
	clock       tenants.Clock
	log         *slog.Logger
	recorder    *auditRecorder
}

// handler is an admin handler that returns its failure; serveAdmin renders
// it as problem+json, logs it at a level set by its class, and keeps
// internal causes out of the response.
type handler func(w http.ResponseWriter, r *http.Request) error

func (a *admin) serve(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		ae := toAPIError(err)
		level := slog.LevelInfo
		if ae.Status >= 500 {
			level = slog.LevelError
		}
		a.log.LogAttrs(r.Context(), level, "admin request failed",
			slog.Int("status", ae.Status), slog.String("problem", ae.Type), slog.String("detail", ae.Detail),
			slog.Any("error", ae.Err))
		writeProblem(w, r, ae)
	}
}

// Mount attaches the API; every route sits behind the bearer token check
// because the sub-router applies it, not each handler.
func (a *admin) Mount(r chi.Router) {
	r.Get("/openapi.json", serveOpenAPI)
	r.Group(func(r chi.Router) {
		r.Use(a.authenticate)
		r.Post("/tenants", a.serve(a.createTenant))
		r.Get("/tenants", a.serve(a.listTenants))
		r.Get("/tenants/{tenantID}", a.serve(a.getTenant))
		r.Patch("/tenants/{tenantID}", a.serve(a.patchTenant))
		r.Delete("/tenants/{tenantID}", a.serve(a.deleteTenant))
		r.Post("/tenants/{tenantID}/domains", a.serve(a.addDomain))
		r.Delete("/tenants/{tenantID}/domains/{domain}", a.serve(a.removeDomain))
		r.Post("/tenants/{tenantID}/portal-links", a.serve(a.createPortalLink))

		r.Post("/tenants/{tenantID}/connections", a.serve(a.connections.create))
		r.Get("/tenants/{tenantID}/connections", a.serve(a.connections.listForTenant))
		r.Get("/connections/{connectionID}", a.serve(a.connections.get))
		r.Patch("/connections/{connectionID}", a.serve(a.connections.patch))
		r.Delete("/connections/{connectionID}", a.serve(a.connections.delete))

		r.Post("/clients", a.serve(a.createClient))
		r.Get("/clients", a.serve(a.listClients))
		r.Get("/clients/{clientID}", a.serve(a.getClient))
		r.Patch("/clients/{clientID}", a.serve(a.patchClient))
		r.Delete("/clients/{clientID}", a.serve(a.deleteClient))
		r.Post("/clients/{clientID}/secrets", a.serve(a.rotateClientSecret))

		r.Get("/identities", a.serve(a.listIdentities))
		r.Get("/identities/{sub}", a.serve(a.getIdentity))
		r.Post("/identities/{sub}/deactivate", a.serve(a.deactivateIdentity))
		r.Post("/identities/{sub}/reactivate", a.serve(a.reactivateIdentity))

		r.Get("/audit-events", a.serve(a.listAuditEvents))
	})
}

// authenticate checks the bearer token. Both sides are hashed first so the
// constant-time comparison does not leak the token's length either.
func (a *admin) authenticate(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(a.token.Reveal()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ssobroker admin"`)
			a.log.InfoContext(r.Context(), "admin API authentication failed", slog.String("ip", clientIP(r)))
			writeProblem(w, r, &apiError{Status: http.StatusUnauthorized, Type: "unauthorized", Detail: "a valid admin bearer token is required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ---- tenants and domains ----

type domainJSON struct {
	Domain    string    `json:"domain"`
	Verified  bool      `json:"verified"`
	CreatedAt time.Time `json:"created_at"`
}

type tenantJSON struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Domains   []domainJSON `json:"domains"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

func toTenantJSON(t tenants.Tenant) tenantJSON {
	out := tenantJSON{ID: t.ID, Name: t.Name, Domains: []domainJSON{}, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
	for _, d := range t.Domains {
		out.Domains = append(out.Domains, toDomainJSON(d))
	}
	return out
}

func toDomainJSON(d tenants.Domain) domainJSON {
	return domainJSON{Domain: d.Name, Verified: d.Verified, CreatedAt: d.CreatedAt}
}

func (a *admin) createTenant(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name    string   `json:"name"`
		Domains []string `json:"domains"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	t, err := a.dir.CreateTenant(r.Context(), tenants.NewTenant{Name: in.Name, Domains: in.Domains})
	if err != nil {
		return err
	}
	a.recorder.admin(r, audit.Event{Type: audit.TenantCreated, TenantID: t.ID, Detail: fmt.Sprintf("name %q, %d domains", t.Name, len(t.Domains))})
	writeJSON(w, http.StatusCreated, toTenantJSON(t))
	return nil
}

func (a *admin) listTenants(w http.ResponseWriter, r *http.Request) error {
	p, err := pageFromQuery(r)
	if err != nil {
		return err
	}
	items, next, err := a.dir.Store.ListTenants(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next, toTenantJSON))
	return nil
}

func (a *admin) getTenant(w http.ResponseWriter, r *http.Request) error {
	id, err := tenantIDParam(r)
	if err != nil {
		return err
	}
	t, err := a.dir.Store.Tenant(r.Context(), id)
	if err != nil {
		return tenantNotFound(err, id)
	}
	writeJSON(w, http.StatusOK, toTenantJSON(t))
	return nil
}

func (a *admin) patchTenant(w http.ResponseWriter, r *http.Request) error {
	id, err := tenantIDParam(r)
	if err != nil {
		return err
	}
	var in struct {
		Name *string `json:"name"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return unprocessable("name", "nothing to update: name is the only field a tenant has")
	}
	t, err := a.dir.RenameTenant(r.Context(), id, *in.Name)
	if err != nil {
		return tenantNotFound(err, id)
	}
	a.recorder.admin(r, audit.Event{Type: audit.TenantUpdated, TenantID: id, Detail: fmt.Sprintf("renamed to %q", t.Name)})
	writeJSON(w, http.StatusOK, toTenantJSON(t))
	return nil
}

func (a *admin) deleteTenant(w http.ResponseWriter, r *http.Request) error {
	id, err := tenantIDParam(r)
	if err != nil {
		return err
	}
	if err := a.dir.Store.DeleteTenant(r.Context(), id); err != nil {
		return tenantNotFound(err, id)
	}
	a.recorder.admin(r, audit.Event{Type: audit.TenantDeleted, TenantID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *admin) addDomain(w http.ResponseWriter, r *http.Request) error {
	id, err := tenantIDParam(r)
	if err != nil {
		return err
	}
	var in struct {
		Domain string `json:"domain"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	d, err := a.dir.AddDomain(r.Context(), id, in.Domain, true)
	if err != nil {
		return tenantNotFound(err, id)
	}
	a.recorder.admin(r, audit.Event{Type: audit.DomainAdded, TenantID: id, Detail: d.Name})
	writeJSON(w, http.StatusCreated, toDomainJSON(d))
	return nil
}

func (a *admin) removeDomain(w http.ResponseWriter, r *http.Request) error {
	id, err := tenantIDParam(r)
	if err != nil {
		return err
	}
	domain := chi.URLParam(r, "domain")
	if err := a.dir.RemoveDomain(r.Context(), id, domain); err != nil {
		if errors.Is(err, tenants.ErrNotFound) {
			return notFoundError(fmt.Sprintf("tenant %s does not hold domain %q", id, truncate(domain, 253)))
		}
		return err
	}
	a.recorder.admin(r, audit.Event{Type: audit.DomainRemoved, TenantID: id, Detail: domain})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- portal links ----

const (
	defaultPortalLinkTTL = 24 * time.Hour
	maxPortalLinkTTL     = 7 * 24 * time.Hour
	minPortalLinkTTL     = 5 * time.Minute
)

func (a *admin) createPortalLink(w http.ResponseWriter, r *http.Request) error {
	id, err := tenantIDParam(r)
	if err != nil {
		return err
	}
	in := struct {
		ExpiresInSeconds int64 `json:"expires_in_seconds"`
	}{}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
	}
	ttl := defaultPortalLinkTTL
	if in.ExpiresInSeconds != 0 {
		ttl = time.Duration(in.ExpiresInSeconds) * time.Second
		if ttl < minPortalLinkTTL || ttl > maxPortalLinkTTL {
			return unprocessable("expires_in_seconds", "must be between 300 and 604800 seconds")
		}
	}
	if _, err := a.dir.Store.Tenant(r.Context(), id); err != nil {
		return tenantNotFound(err, id)
	}
	token, err := tenants.NewToken(portalLinkPrefix, a.dir.Random)
	if err != nil {
		return err
	}
	now := a.clock.Now()
	expires := now.Add(ttl)
	if err := a.portalLinks.CreatePortalLink(r.Context(), tenants.HashSecret(token), id, now, expires); err != nil {
		return tenantNotFound(err, id)
	}
	a.recorder.admin(r, audit.Event{Type: audit.PortalLinkCreated, TenantID: id, Detail: "expires " + expires.Format(time.RFC3339)})
	writeJSON(w, http.StatusCreated, struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}{a.issuer + "/portal/open?token=" + token.Reveal(), expires})
	return nil
}

const portalLinkPrefix = "ssob_pl_"

// ---- audit events ----

type auditEventJSON struct {
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Type         string    `json:"type"`
	TenantID     string    `json:"tenant_id,omitempty"`
	ConnectionID string    `json:"connection_id,omitempty"`
	ClientID     string    `json:"client_id,omitempty"`
	Subject      string    `json:"subject,omitempty"`
	Email        string    `json:"email,omitempty"`
	Actor        string    `json:"actor,omitempty"`
	IP           string    `json:"ip,omitempty"`
	UserAgent    string    `json:"user_agent,omitempty"`
	RequestID    string    `json:"request_id,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Detail       string    `json:"detail,omitempty"`
}

func toAuditEventJSON(e audit.Event) auditEventJSON {
	return auditEventJSON{
		ID: e.ID, Time: e.Time, Type: string(e.Type), TenantID: e.TenantID, ConnectionID: e.ConnectionID,
		ClientID: e.ClientID, Subject: e.Subject, Email: e.Email, Actor: e.Actor, IP: e.IP,
		UserAgent: e.UserAgent, RequestID: e.RequestID, Reason: e.Reason, Detail: e.Detail,
	}
}

func (a *admin) listAuditEvents(w http.ResponseWriter, r *http.Request) error {
	p, err := pageFromQuery(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := audit.Filter{TenantID: q.Get("tenant_id"), Type: audit.Type(q.Get("type")), Limit: p.Limit, After: p.After}
	if f.TenantID != "" && !validID(f.TenantID, tenants.PrefixTenant) {
		return unprocessable("tenant_id", "tenant_id is not a tenant id")
	}
	if f.Type != "" && !f.Type.Valid() {
		return unprocessable("type", fmt.Sprintf("unknown event type %q", truncate(string(f.Type), 64)))
	}
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(b.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return unprocessable(b.name, b.name+" must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
			*b.dst = t
		}
	}
	items, next, err := a.audit.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next, toAuditEventJSON))
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func tenantIDParam(r *http.Request) (string, error) {
	return idParam(r, "tenantID", tenants.PrefixTenant, "tenant")
}

func tenantNotFound(err error, id string) error { return notFoundAs(err, "tenant", id) }
