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

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/tenants"
)

// connectionRefs answers "which version of this connection is current" in
// one cheap query, so a cached SP is reused only while it is current on
// every replica.
type connectionRefs interface {
	ConnectionRef(ctx context.Context, id string) (tenants.ConnectionRef, error)
}

// acs serves the SAML endpoints of every connection: SP metadata for the
// IdP admin and the Assertion Consumer Service.
type acs struct {
	logins   loginFlow
	dir      *tenants.Directory
	refs     connectionRefs
	sps      serviceProviders
	replay   saml.ReplayCache
	pages    *pages
	recorder *auditRecorder
	metrics  *metrics
	issuer   string
	clock    tenants.Clock
	log      *slog.Logger
	// maxResponseBytes bounds the decoded SAMLResponse; the form body may
	// be 4/3 of it (base64) plus RelayState.
	maxResponseBytes int
}

// Mount attaches SP metadata and, behind limit, the ACS (metadata is
// fetched by IdP admins and tools, and must not spend users' budget).
func (a *acs) Mount(r chi.Router, limit func(http.Handler) http.Handler) {
	r.Get("/saml/{connectionID}/metadata", a.metadata)
	r.With(limit).Post("/saml/{connectionID}/acs", a.consume)
}

func (a *acs) connection(ctx context.Context, id string) (tenants.ConnectionRef, *saml.ServiceProvider, error) {
	if !validID(id, tenants.PrefixConnection) {
		return tenants.ConnectionRef{}, nil, fmt.Errorf("connection id %q: %w", truncate(id, 64), tenants.ErrNotFound)
	}
	ref, err := a.refs.ConnectionRef(ctx, id)
	if err != nil {
		return tenants.ConnectionRef{}, nil, err
	}
	sp, err := a.sps.get(ctx, id, ref.UpdatedAt)
	if err != nil {
		return tenants.ConnectionRef{}, nil, err
	}
	return ref, sp, nil
}

func (a *acs) metadata(w http.ResponseWriter, r *http.Request) {
	_, sp, err := a.connection(r.Context(), chi.URLParam(r, "connectionID"))
	if err != nil {
		if errors.Is(err, tenants.ErrNotFound) {
			http.Error(w, "unknown connection", http.StatusNotFound)
			return
		}
		a.log.ErrorContext(r.Context(), "SP metadata", slog.Any("error", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	md, err := sp.Metadata()
	if err != nil {
		a.log.ErrorContext(r.Context(), "SP metadata", slog.Any("error", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(md)
}

// Reasons for failures the broker detects itself, after or around SAML
// validation. They share the audit `reason` field with saml.Reason.
const (
	reasonUnknownRequest      = "in_response_to_unknown"
	reasonConnectionInactive  = "connection_inactive"
	reasonIdentityDeactivated = "identity_deactivated"
	reasonEmailUnverified     = "email_unverified"
	reasonTenantNotAllowed    = "tenant_not_allowed"
	reasonIdPInitiatedClient  = "idp_initiated_client_unknown"
	reasonInternal            = "internal_error"
)

// loginFailure is one rejected ACS request: Reason and Detail go to the
// audit log and the operator's log, the page shows only a fixed text.
type loginFailure struct {
	Reason string
	Detail string
	Err    error
	// Status and the texts of the page.
	Status  int
	Title   string
	Message string
}

func failure(reason, detail string, err error) *loginFailure {
	f := &loginFailure{Reason: reason, Detail: detail, Err: err, Status: http.StatusBadRequest,
		Title:   "We could not sign you in",
		Message: "Your organization's sign-in could not be verified. Try again, or contact your IT administrator."}
	switch reason {
	case string(saml.ReasonIdPStatus):
		f.Message = "Your organization's sign-in service reported a problem and did not sign you in."
	case string(saml.ReasonExpired), string(saml.ReasonNotYetValid), reasonUnknownRequest, string(saml.ReasonReplayed):
		f.Title = "Your sign-in expired"
		f.Message = "The sign-in took too long or was already used. Try again, or start again from the application."
	case reasonIdentityDeactivated:
		f.Status = http.StatusForbidden
		f.Message = "Your account has been deactivated for this application. Contact your IT administrator."
	case reasonTenantNotAllowed:
		f.Status = http.StatusForbidden
		f.Message = "Your organization is not allowed to sign in to this application."
	case reasonEmailUnverified:
		f.Status = http.StatusForbidden
		f.Message = "Your email address is not in a domain your organization has verified. Contact your IT administrator."
	case reasonConnectionInactive:
		f.Message = "Single sign-on for your organization is currently turned off."
	case reasonInternal:
		f.Status = http.StatusInternalServerError
		f.Title = "Something went wrong"
		f.Message = "We could not complete your sign-in. Please try again in a moment."
	}
	return f
}

// consume is the Assertion Consumer Service (HTTP-POST binding). It is a
// cross-site POST from the IdP, so it uses no cookie: the login is found
// through InResponseTo in the store, which works on any replica.
func (a *acs) consume(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	connID := chi.URLParam(r, "connectionID")
	addLogAttrs(ctx, slog.String("connection_id", connID))
	ev := audit.Event{Type: audit.LoginFailed, ConnectionID: connID}

	// The body is bounded before ParseForm reads it (crewjam's ServeACS
	// has no limit of its own).
	r.Body = http.MaxBytesReader(w, r.Body, int64(a.maxResponseBytes)*4/3+8<<10)
	if err := r.ParseForm(); err != nil {
		reason := saml.ReasonMalformed
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			reason = saml.ReasonTooLarge
		}
		a.fail(w, r, ev, nil, failure(string(reason), "reading the POST body: "+err.Error(), err))
		return
	}
	ref, sp, err := a.connection(ctx, connID)
	if err != nil {
		if errors.Is(err, tenants.ErrNotFound) {
			a.fail(w, r, ev, nil, failure(string(saml.ReasonMalformed), "the ACS URL names no connection", err))
			return
		}
		a.fail(w, r, ev, nil, failure(reasonInternal, "loading the connection", err))
		return
	}
	ev.TenantID = ref.TenantID
	if ref.Status != tenants.StatusActive {
		a.fail(w, r, ev, nil, failure(reasonConnectionInactive, "the connection is inactive", nil))
		return
	}
	doc, err := saml.DecodeResponse(r.PostForm.Get("SAMLResponse"), a.maxResponseBytes)
	if err != nil {
		a.failSAML(w, r, ev, nil, err)
		return
	}
	inResponseTo, err := saml.InResponseTo(doc)
	if err != nil {
		a.failSAML(w, r, ev, nil, err)
		return
	}
	if inResponseTo == "" {
		a.unsolicited(w, r, ev, sp, doc)
		return
	}
	// Find the login first without using its request up: consuming before
	// validation would let anyone who learns a request ID spend it.
	li, err := a.logins.PeekSAMLRequest(ctx, connID, inResponseTo)
	if err != nil {
		a.failFlow(w, r, ev, nil, err, fmt.Sprintf("AuthnRequest %q at this connection", truncate(inResponseTo, 80)))
		return
	}
	ev.ClientID = li.ClientID
	profile, err := sp.ValidateResponse(ctx, doc, inResponseTo, a.replay)
	if err != nil {
		a.failSAML(w, r, ev, &li, err)
		return
	}
	if li, err = a.logins.ConsumeSAMLRequest(ctx, connID, inResponseTo); err != nil {
		a.failFlow(w, r, ev, &li, err, "consuming the AuthnRequest")
		return
	}
	a.complete(w, r, ev, li, sp.Connection(), profile)
}

// failFlow records a failure of the login flow (unknown, replayed or
// expired request; login finished; tenant not allowed ...).
func (a *acs) failFlow(w http.ResponseWriter, r *http.Request, ev audit.Event, li *loginInfo, err error, what string) {
	var fe *flowError
	if !errors.As(err, &fe) {
		a.fail(w, r, ev, li, failure(reasonInternal, what, err))
		return
	}
	if errors.Is(err, errLoginGone) {
		li = nil // nothing to retry or cancel
	}
	a.fail(w, r, ev, li, failure(fe.reason, what+": "+fe.err.Error(), err))
}

// complete turns a validated profile into a finished login: identity just
// in time, then the OIDC callback that mints the code.
func (a *acs) complete(w http.ResponseWriter, r *http.Request, ev audit.Event, li loginInfo, conn tenants.Connection, p tenants.Profile) {
	ctx := r.Context()
	ev.Email = p.Email
	authTime := p.AuthnInstant
	if authTime.IsZero() || authTime.After(a.clock.Now()) {
		authTime = a.clock.Now()
	}
	// Checked before anything is written, so a refused login leaves no
	// identity behind; CompleteLogin checks again.
	if err := a.logins.CheckAuthTime(li, authTime); err != nil {
		a.failFlow(w, r, ev, &li, err, fmt.Sprintf("the IdP authenticated the user at %s", authTime.Format(time.RFC3339)))
		return
	}
	verified, err := a.dir.EmailVerified(ctx, conn.TenantID, p.Email)
	if err != nil {
		a.fail(w, r, ev, &li, failure(reasonInternal, "checking the email domain", err))
		return
	}
	if !verified && conn.Policy.RejectUnverifiedEmail {
		a.fail(w, r, ev, &li, failure(reasonEmailUnverified, fmt.Sprintf("email %q is not in a verified domain of tenant %s", truncate(p.Email, 254), conn.TenantID), nil))
		return
	}
	id, err := a.dir.UpsertIdentity(ctx, conn, p, verified)
	if err != nil {
		a.fail(w, r, ev, &li, failure(reasonInternal, "recording the identity", err))
		return
	}
	ev.Subject = id.Subject
	if id.Status != tenants.IdentityActive {
		a.fail(w, r, ev, &li, failure(reasonIdentityDeactivated, "identity "+id.Subject+" is deactivated", nil))
		return
	}
	callback, err := a.logins.CompleteLogin(ctx, li.ID, id, conn, authTime)
	if err != nil {
		a.failFlow(w, r, ev, &li, err, "completing the login")
		return
	}
	ev.Type = audit.LoginSucceeded
	ev.Detail = fmt.Sprintf("assertion %s from %s", truncate(p.AssertionID, 100), truncate(p.Issuer, 200))
	a.recorder.record(ctx, "user", ev)
	a.metrics.logins.WithLabelValues("succeeded", "").Inc()
	a.log.InfoContext(ctx, "login succeeded", slog.String("tenant_id", conn.TenantID), slog.String("client_id", li.ClientID),
		slog.String("sub", id.Subject), slog.String("assertion_id", p.AssertionID))
	http.Redirect(w, r, callback, http.StatusSeeOther)
}

// failSAML records a validation failure with its SAML reason.
func (a *acs) failSAML(w http.ResponseWriter, r *http.Request, ev audit.Event, li *loginInfo, err error) {
	var rej *saml.RejectError
	if errors.As(err, &rej) {
		a.fail(w, r, ev, li, failure(string(rej.Reason), rej.Detail, err))
		return
	}
	a.fail(w, r, ev, li, failure(reasonInternal, "validating the SAML response", err))
}

// fail records a rejected login (audit event with its reason, a log line
// at a level set by its class) and shows the user a fixed text with the
// request id. Nothing else happens: no identity, no code.
func (a *acs) fail(w http.ResponseWriter, r *http.Request, ev audit.Event, li *loginInfo, f *loginFailure) {
	ctx := r.Context()
	ev.Type, ev.Reason, ev.Detail = audit.LoginFailed, f.Reason, truncate(f.Detail, 1000)
	a.recorder.record(ctx, "user", ev)
	a.metrics.logins.WithLabelValues("failed", f.Reason).Inc()
	level := slog.LevelWarn
	if f.Reason == reasonInternal {
		level = slog.LevelError
	}
	a.log.LogAttrs(ctx, level, "login rejected", slog.String("reason", f.Reason), slog.String("detail", ev.Detail),
		slog.String("tenant_id", ev.TenantID), slog.String("client_id", ev.ClientID), slog.Any("error", f.Err))
	page := errorPage{Title: f.Title, Message: f.Message, RequestID: requestID(ctx)}
	if li != nil {
		page.ClientName = li.ClientName
		page.RetryURL = "/login?id=" + url.QueryEscape(li.ID)
		page.BackURL = "/login/cancel?id=" + url.QueryEscape(li.ID)
	}
	a.pages.render(w, r, f.Status, "error.html", page, "")
}

// unsolicited handles a response without InResponseTo: an IdP-initiated
// login, or an IdP error page that lost the request. Validating it with no
// expected request surfaces an IdP error status (idp_status, with the
// IdP's message for the operator) before the unsolicited rule applies.
//
// IdP-initiated login is refused unless the connection allows it; then,
// rather than minting a code nobody asked for
// (no state, no nonce, no PKCE: the login-CSRF hole of IdP-initiated SSO),
// the browser goes to the client's initiate_login_uri (OIDC Core §4), and
// the app starts an ordinary SP-initiated login, which the IdP's session
// completes at once. RelayState names the client.
func (a *acs) unsolicited(w http.ResponseWriter, r *http.Request, ev audit.Event, sp *saml.ServiceProvider, doc []byte) {
	ctx := r.Context()
	profile, err := sp.ValidateResponse(ctx, doc, "", a.replay)
	if err != nil {
		a.failSAML(w, r, ev, nil, err)
		return
	}
	conn := sp.Connection()
	ev.Email = profile.Email
	clientID := r.PostForm.Get("RelayState")
	if !validID(clientID, tenants.PrefixClient) {
		a.fail(w, r, ev, nil, failure(reasonIdPInitiatedClient, "IdP-initiated login needs RelayState set to the client id of the application", nil))
		return
	}
	client, err := a.dir.Store.Client(ctx, clientID)
	if err != nil || client.InitiateLoginURI == "" {
		a.fail(w, r, ev, nil, failure(reasonIdPInitiatedClient, fmt.Sprintf("client %s does not exist or has no initiate_login_uri", clientID), err))
		return
	}
	ev.ClientID = client.ID
	if !client.AllowsTenant(conn.TenantID) {
		a.fail(w, r, ev, nil, failure(reasonTenantNotAllowed, fmt.Sprintf("client %s does not allow tenant %s", client.ID, conn.TenantID), nil))
		return
	}
	target, err := url.Parse(client.InitiateLoginURI)
	if err != nil {
		a.fail(w, r, ev, nil, failure(reasonInternal, "parsing initiate_login_uri", err))
		return
	}
	q := target.Query()
	q.Set("iss", a.issuer)
	if profile.Email != "" {
		q.Set("login_hint", profile.Email)
	}
	target.RawQuery = q.Encode()
	a.log.InfoContext(ctx, "IdP-initiated login sent to the app", slog.String("client_id", client.ID), slog.String("assertion_id", profile.AssertionID))
	http.Redirect(w, r, target.String(), http.StatusSeeOther)
}
