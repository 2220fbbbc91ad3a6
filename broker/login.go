package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/tenants"
)

// loginInfo is what the hosted page and the ACS know about one OIDC login
// in flight (see oidcLogins for where it comes from).
type loginInfo struct {
	ID         string
	ClientID   string
	ClientName string
	// Hints from the authorization request that can skip the email page.
	LoginHint    string
	DomainHint   string
	Organization string
	Connection   string
	// ForceAuthn is true when the app asked for re-authentication
	// (prompt=login or max_age=0).
	ForceAuthn bool
	// MaxAge is the authorization request's max_age, nil when absent.
	MaxAge *time.Duration
	// TenantID and ConnectionID are set once the SAML step has started.
	TenantID     string
	ConnectionID string
	CreatedAt    time.Time
}

// errLoginGone means the login does not exist, expired, or is finished.
var errLoginGone = errors.New("login not found, expired or already finished")

// errTenantNotAllowed means the client is limited to other tenants.
var errTenantNotAllowed = errors.New("the client does not allow this tenant")

// flowError is a login-flow failure with its audit reason. It wraps
// errLoginGone or errTenantNotAllowed where those apply.
type flowError struct {
	reason string
	err    error
}

func (e *flowError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *flowError) Unwrap() error { return e.err }

// loginFlow is what the hosted page and the ACS need from the OIDC
// provider (oidcLogins adapts *oidcprovider.Provider). Errors are
// *flowError.
type loginFlow interface {
	Login(ctx context.Context, id string) (loginInfo, error)
	StartSAML(ctx context.Context, loginID, tenantID, connectionID, samlRequestID string, expiresAt time.Time) error
	// PeekSAMLRequest finds the login waiting for samlRequestID at
	// connectionID, on any replica, without using the request up.
	PeekSAMLRequest(ctx context.Context, connectionID, samlRequestID string) (loginInfo, error)
	// ConsumeSAMLRequest marks the request used, atomically: of two
	// responses to one request exactly one gets past it.
	ConsumeSAMLRequest(ctx context.Context, connectionID, samlRequestID string) (loginInfo, error)
	// CheckAuthTime reports whether an IdP authentication at authTime
	// satisfies the login's prompt=login and max_age.
	CheckAuthTime(li loginInfo, authTime time.Time) error
	CompleteLogin(ctx context.Context, loginID string, id tenants.Identity, conn tenants.Connection, authTime time.Time) (callbackURL string, err error)
	FailLogin(ctx context.Context, loginID, oidcError, description string) (redirectURL string, err error)
}

// serviceProviders builds (and caches) the SAML SP of a connection.
type serviceProviders struct {
	cache *saml.Cache
	store tenants.ConnectionStore
}

func (s serviceProviders) get(ctx context.Context, id string, updatedAt time.Time) (*saml.ServiceProvider, error) {
	return s.cache.ServiceProvider(ctx, id, updatedAt, func(ctx context.Context) (tenants.Connection, error) {
		return s.store.Connection(ctx, id)
	})
}

// hostedPage serves /login: one email field, routing by verified domain.
type hostedPage struct {
	logins  loginFlow
	dir     *tenants.Directory
	refs    connectionRefs
	sps     serviceProviders
	pages   *pages
	cookies cookies
	log     *slog.Logger
	// perTenant bounds logins routed to one tenant, so one customer's
	// flood cannot starve the others.
	perTenant *limiter
	limited   func(w http.ResponseWriter, r *http.Request, l *limiter, retry time.Duration, html bool)
}

func (h *hostedPage) Mount(r chi.Router) {
	r.Get("/login", h.show)
	r.Post("/login", h.submit)
	r.Get("/login/cancel", h.cancel)
}

// loginPage is the data of login.html and picker.html.
type loginPage struct {
	ClientName  string
	LoginID     string
	CSRF        string
	Email       string
	Message     string
	TenantName  string
	Connections []tenants.ConnectionRef
	RequestID   string
}

const maxLoginIDLength = 128

func validLoginID(id string) bool {
	if id == "" || len(id) > maxLoginIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Texts the user sees. They are fixed per class of problem and never carry
// internal detail; "no SSO for this domain" is the only thing the page
// reveals about which domains exist (security.md, Web).
const (
	msgInvalidEmail = "Enter your work email address, like jane@company.com."
	msgNoSSO        = "Single sign-on is not set up for %s. Check the address, or ask your IT administrator."
)

func (h *hostedPage) loginGone(w http.ResponseWriter, r *http.Request) {
	h.pages.render(w, r, http.StatusBadRequest, "error.html", errorPage{
		Title:     "This sign-in link has expired",
		Message:   "Go back to the application and start signing in again.",
		RequestID: requestID(r.Context()),
	}, "")
}

func (h *hostedPage) internalError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "hosted page failed", slog.Any("error", err))
	h.pages.render(w, r, http.StatusInternalServerError, "error.html", errorPage{
		Title: "Something went wrong", Message: "We could not continue your sign-in. Please try again in a moment.",
		RequestID: requestID(r.Context()),
	}, "")
}

func (h *hostedPage) load(w http.ResponseWriter, r *http.Request, id string) (loginInfo, bool) {
	if !validLoginID(id) {
		h.loginGone(w, r)
		return loginInfo{}, false
	}
	li, err := h.logins.Login(r.Context(), id)
	switch {
	case errors.Is(err, errLoginGone):
		h.loginGone(w, r)
		return loginInfo{}, false
	case err != nil:
		h.internalError(w, r, err)
		return loginInfo{}, false
	}
	addLogAttrs(r.Context(), slog.String("client_id", li.ClientID))
	return li, true
}

// show renders the email page, or skips it when the authorization request
// carried a hint that resolves to exactly one connection.
func (h *hostedPage) show(w http.ResponseWriter, r *http.Request) {
	li, ok := h.load(w, r, r.URL.Query().Get("id"))
	if !ok {
		return
	}
	nonce := h.cookies.nonce(w, r)
	page := loginPage{ClientName: li.ClientName, LoginID: li.ID, CSRF: h.cookies.csrfToken(nonce, li.ID), RequestID: requestID(r.Context())}

	switch {
	case li.Connection != "":
		if h.startByConnection(w, r, li) {
			return
		}
	case li.Organization != "":
		if h.startByOrganization(w, r, li, page) {
			return
		}
	case li.LoginHint != "":
		page.Email = li.LoginHint
		res, err := h.dir.Route(r.Context(), li.LoginHint)
		if err == nil {
			h.route(w, r, li, page, res, "")
			return
		}
		page.Message = h.routeMessage(err, li.LoginHint)
	case li.DomainHint != "":
		if domain, err := tenants.NormalizeDomain(li.DomainHint); err == nil {
			if res, err := h.dir.RouteDomain(r.Context(), tenants.Email{Domain: domain}); err == nil {
				h.route(w, r, li, page, res, "")
				return
			}
		}
	}
	h.pages.render(w, r, http.StatusOK, "login.html", page, "")
}

// routeMessage turns a routing failure into the page's message.
func (h *hostedPage) routeMessage(err error, email string) string {
	if errors.Is(err, tenants.ErrNoSSO) || errors.Is(err, errTenantNotAllowed) {
		domain := email
		if e, perr := tenants.ParseEmail(email); perr == nil {
			domain = e.Domain
		}
		return fmt.Sprintf(msgNoSSO, domain)
	}
	return msgInvalidEmail
}

// startByConnection honours the connection= hint when that connection is
// active; otherwise the email page is shown. It reads only the
// connection's ref: the SP comes from the cache.
func (h *hostedPage) startByConnection(w http.ResponseWriter, r *http.Request, li loginInfo) bool {
	ref, err := h.refs.ConnectionRef(r.Context(), li.Connection)
	if err != nil || ref.Status != tenants.StatusActive {
		return false
	}
	return h.start(w, r, li, ref.TenantID, ref)
}

// startByOrganization honours organization=<tenant id>: one active
// connection starts SAML, several show the picker.
func (h *hostedPage) startByOrganization(w http.ResponseWriter, r *http.Request, li loginInfo, page loginPage) bool {
	rt, err := h.dir.Store.RouteTenant(r.Context(), li.Organization)
	if err != nil || len(rt.Connections) == 0 {
		return false
	}
	h.route(w, r, li, page, tenants.Resolution{Tenant: rt.Tenant, Connections: rt.Connections}, "")
	return true
}

// submit handles the email form and the connection picker.
func (h *hostedPage) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.pages.render(w, r, http.StatusBadRequest, "error.html", errorPage{
			Title: "That did not work", Message: "The form could not be read. Go back and try again.", RequestID: requestID(r.Context()),
		}, "")
		return
	}
	li, ok := h.load(w, r, r.PostForm.Get("id"))
	if !ok {
		return
	}
	if !h.cookies.checkCSRF(r, li.ID, r.PostForm.Get("csrf")) {
		h.log.InfoContext(r.Context(), "hosted page CSRF check failed", slog.String("ip", clientIP(r)))
		h.pages.render(w, r, http.StatusForbidden, "error.html", errorPage{
			Title:     "Please try again",
			Message:   "Your sign-in page was open too long or in another browser. Reload it and try again.",
			RetryURL:  "/login?id=" + url.QueryEscape(li.ID),
			RequestID: requestID(r.Context()),
		}, "")
		return
	}
	email := r.PostForm.Get("email")
	nonce := h.cookies.nonce(w, r)
	page := loginPage{ClientName: li.ClientName, LoginID: li.ID, CSRF: h.cookies.csrfToken(nonce, li.ID), Email: email, RequestID: requestID(r.Context())}
	res, err := h.dir.Route(r.Context(), email)
	if err != nil {
		if !errors.Is(err, tenants.ErrNoSSO) && !errors.Is(err, tenants.ErrInvalidEmail) {
			h.internalError(w, r, err)
			return
		}
		page.Message = h.routeMessage(err, email)
		h.pages.render(w, r, http.StatusUnprocessableEntity, "login.html", page, "")
		return
	}
	h.route(w, r, li, page, res, r.PostForm.Get("connection"))
}

// route starts SAML for the chosen connection, shows the picker when the
// tenant has several and none was chosen, or explains the problem.
func (h *hostedPage) route(w http.ResponseWriter, r *http.Request, li loginInfo, page loginPage, res tenants.Resolution, chosen string) {
	addLogAttrs(r.Context(), slog.String("tenant_id", res.Tenant.ID))
	if ok, retry := h.perTenant.allow("tenant:" + res.Tenant.ID); !ok {
		h.limited(w, r, h.perTenant, retry, true)
		return
	}
	var ref tenants.ConnectionRef
	switch {
	case chosen != "":
		found := false
		for _, c := range res.Connections {
			if c.ID == chosen {
				ref, found = c, true
			}
		}
		if !found {
			page.Message = "That sign-in option is no longer available. Choose another."
			page.TenantName, page.Connections = res.Tenant.Name, res.Connections
			h.pages.render(w, r, http.StatusUnprocessableEntity, "picker.html", page, "")
			return
		}
	case len(res.Connections) == 1:
		ref = res.Connections[0]
	default:
		page.TenantName, page.Connections = res.Tenant.Name, res.Connections
		h.pages.render(w, r, http.StatusOK, "picker.html", page, "")
		return
	}
	if !h.start(w, r, li, res.Tenant.ID, ref) {
		page.Message = fmt.Sprintf(msgNoSSO, res.Email.Domain)
		if res.Email.Domain == "" {
			page.Message = "Your organization cannot sign in to this application. Ask your IT administrator."
		}
		h.pages.render(w, r, http.StatusUnprocessableEntity, "login.html", page, "")
	}
}

// start sends the browser to the IdP. It returns false (having written
// nothing) when the client may not sign in users of this tenant, so the
// caller can explain; other failures render an error page and return true.
func (h *hostedPage) start(w http.ResponseWriter, r *http.Request, li loginInfo, tenantID string, ref tenants.ConnectionRef) bool {
	addLogAttrs(r.Context(), slog.String("tenant_id", tenantID), slog.String("connection_id", ref.ID))
	sp, err := h.sps.get(r.Context(), ref.ID, ref.UpdatedAt)
	if err != nil {
		h.internalError(w, r, fmt.Errorf("building SP for %s: %w", ref.ID, err))
		return true
	}
	req, err := sp.NewAuthnRequest(li.ID, li.ForceAuthn)
	if err != nil {
		h.internalError(w, r, fmt.Errorf("AuthnRequest for %s: %w", ref.ID, err))
		return true
	}
	err = h.logins.StartSAML(r.Context(), li.ID, tenantID, ref.ID, req.ID, req.ExpiresAt)
	switch {
	case errors.Is(err, errTenantNotAllowed):
		h.log.InfoContext(r.Context(), "client does not allow tenant", slog.String("client_id", li.ClientID), slog.String("tenant_id", tenantID))
		return false
	case errors.Is(err, errLoginGone):
		h.loginGone(w, r)
		return true
	case err != nil:
		h.internalError(w, r, err)
		return true
	}
	if req.Binding == "post" {
		u, _ := url.Parse(req.PostURL)
		origin := u.Scheme + "://" + u.Host
		h.pages.render(w, r, http.StatusOK, "samlpost.html", samlPostPage{
			Action: req.PostURL, RequestID: requestID(r.Context()),
			Fields: []formField{{"SAMLRequest", req.SAMLRequest}, {"RelayState", req.RelayState}},
		}, origin)
		return true
	}
	http.Redirect(w, r, req.RedirectURL, http.StatusSeeOther)
	return true
}

type formField struct{ Name, Value string }

type samlPostPage struct {
	Action    string
	Fields    []formField
	RequestID string
}

// cancel ends a login the user gave up on after a failed SAML step,
// sending them back to the app with error=access_denied and the app's
// state. It needs no token: whoever holds a login id can already restart
// its SAML step, and a pending login ends in an error either way; the
// code, the thing worth stealing, is bound to the browser that started the
// login by the provider.
func (h *hostedPage) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if !validLoginID(id) {
		h.loginGone(w, r)
		return
	}
	to, err := h.logins.FailLogin(r.Context(), id, "access_denied", "The user did not complete sign-in.")
	if err != nil {
		if errors.Is(err, errLoginGone) {
			h.loginGone(w, r)
			return
		}
		h.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
