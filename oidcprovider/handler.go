package oidcprovider

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/ssobroker/ssobroker/tenants"
)

// Routes, relative to the issuer. They are zitadel's defaults (we never
// change them; see New).
const (
	discoveryPath  = "/.well-known/openid-configuration"
	authorizePath  = "/authorize"
	callbackPath   = "/authorize/callback"
	tokenPath      = "/oauth/token"
	introspectPath = "/oauth/introspect"
	userinfoPath   = "/userinfo"
	revokePath     = "/revoke"
	endSessionPath = "/end_session"
	keysPath       = "/keys"
	loggedOutPath  = "/logged-out"
)

// Input bounds. Every parameter we know has one; unknown parameters are
// ignored (RFC 6749 §3.1) but bounded by the request size.
const (
	maxBody  = 64 << 10
	maxQuery = 16 << 10

	maxScopes = 20
)

var authorizeLimits = map[string]int{
	"client_id": maxClientIDLength, "redirect_uri": 2048, "response_type": 64, "response_mode": 32,
	"scope": 1024, "state": 1024, "nonce": 512, "prompt": 64, "max_age": 10, "ui_locales": 128,
	"id_token_hint": 8192, "login_hint": 512, "acr_values": 256, "code_challenge": 128,
	"code_challenge_method": 16, "display": 16, "organization": 64, "connection": 64, "domain_hint": 253,
}

var tokenLimits = map[string]int{
	"grant_type": 64, "code": 1024, "redirect_uri": 2048, "code_verifier": 128, "refresh_token": maxRefreshTokenLength,
	"client_id": maxClientIDLength, "client_secret": maxSecretLength, "scope": 1024,
}

var tokenOpLimits = map[string]int{
	"token": 2048, "token_type_hint": 32, "client_id": maxClientIDLength, "client_secret": maxSecretLength,
}

var endSessionLimits = map[string]int{
	"id_token_hint": 8192, "client_id": maxClientIDLength, "post_logout_redirect_uri": 2048,
	"state": 1024, "logout_hint": 512, "ui_locales": 128,
}

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+discoveryPath, p.discovery)
	mux.Handle("GET "+authorizePath, p.authorize(p.op))
	mux.Handle("POST "+authorizePath, p.authorize(p.op))
	mux.HandleFunc("GET "+callbackPath, p.callback)
	mux.Handle("POST "+tokenPath, p.token(p.op))
	mux.Handle("POST "+introspectPath, p.introspect(p.op))
	mux.Handle("GET "+userinfoPath, p.userinfo(p.op))
	mux.Handle("POST "+userinfoPath, p.userinfo(p.op))
	mux.Handle("POST "+revokePath, p.revoke(p.op))
	mux.Handle("GET "+endSessionPath, p.endSession(p.op))
	mux.Handle("POST "+endSessionPath, p.endSession(p.op))
	mux.Handle("GET "+keysPath, cacheFor(600, p.op))
	mux.HandleFunc("GET "+loggedOutPath, loggedOut)
	for _, path := range corsPaths {
		mux.HandleFunc("OPTIONS "+path, p.preflight)
	}
	// Anything else (zitadel's /healthz, /ready, /device_authorization,
	// /authorize/callback on its own terms) is not served: 404 from mux.
	return p.base(mux)
}

// base runs on every request: per-request state, security headers, CORS.
func (p *Provider) base(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := withReqState(r.Context())
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// Codes and login ids ride in URLs; never leak them in Referer.
		h.Set("Referrer-Policy", "no-referrer")
		if isCORSPath(r.URL.Path) {
			// Vary even when refusing, so a shared cache never serves one
			// origin's answer to another.
			h.Add("Vary", "Origin")
			if origin := r.Header.Get("Origin"); origin != "" && r.Method != http.MethodOptions && p.cors[origin] {
				h.Set("Access-Control-Allow-Origin", origin)
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// corsPaths are what a browser application calls with fetch. Never with
// credentials: these endpoints use no cookies, so reflecting an origin with
// Allow-Credentials (zitadel's default, for any origin) only adds risk.
var corsPaths = []string{discoveryPath, keysPath, tokenPath, userinfoPath, revokePath}

func isCORSPath(path string) bool {
	for _, c := range corsPaths {
		if c == path {
			return true
		}
	}
	return false
}

func (p *Provider) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if !p.cors[origin] {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

func cacheFor(seconds int, next http.Handler) http.Handler {
	v := fmt.Sprintf("public, max-age=%d", seconds)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", v)
		next.ServeHTTP(w, r)
	})
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// checkParams bounds the parameters we know: at most one value each
// (RFC 6749 §3.1: "parameters MUST NOT be included more than once") and
// within its length.
func checkParams(form url.Values, limits map[string]int) error {
	for name, max := range limits {
		vs, ok := form[name]
		if !ok {
			continue
		}
		if len(vs) != 1 {
			return fmt.Errorf("parameter %s is repeated", name)
		}
		if len(vs[0]) > max {
			return fmt.Errorf("parameter %s is longer than %d bytes", name, max)
		}
		if !utf8.ValidString(vs[0]) || strings.ContainsFunc(vs[0], unicode.IsControl) {
			return fmt.Errorf("parameter %s contains invalid characters", name)
		}
	}
	return nil
}

// parseBounded reads a form with the body and query bounded.
func parseBounded(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.RawQuery) > maxQuery {
		return errors.New("request URL is too long")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return errors.New("malformed or oversized request")
	}
	return nil
}

func badRequest(w http.ResponseWriter, msg string) {
	noStore(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintln(w, msg)
}

// oauthError writes a JSON error as the token, introspection and
// revocation endpoints do.
func oauthError(w http.ResponseWriter, status int, e *oidc.Error) {
	noStore(w)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="ssobroker"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

// authorizeExtras are the authorize parameters zitadel does not parse.
type authorizeExtras struct {
	organization string
	connection   string
	domainHint   string
}

// authorize bounds the request, captures our extra parameters, binds the
// login to this browser, and hands over to zitadel.
func (p *Provider) authorize(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := parseBounded(w, r); err != nil {
			badRequest(w, "invalid authorization request: "+err.Error())
			return
		}
		if err := checkParams(r.Form, authorizeLimits); err != nil {
			badRequest(w, "invalid authorization request: "+err.Error())
			return
		}
		// Request objects would let parameters bypass the bounds above;
		// zitadel refuses "request" only after validating the rest.
		if r.Form.Has("request") || r.Form.Has("request_uri") {
			badRequest(w, "invalid authorization request: request objects are not supported")
			return
		}
		if n := len(strings.Fields(r.Form.Get("scope"))); n > maxScopes {
			badRequest(w, fmt.Sprintf("invalid authorization request: more than %d scopes", maxScopes))
			return
		}
		ex, err := parseExtras(r.Form)
		if err != nil {
			badRequest(w, "invalid authorization request: "+err.Error())
			return
		}
		// Read the client first: zitadel reports any client lookup
		// failure as a 400 "invalid client", which would make a database
		// outage look like the application's mistake. The read is cached
		// for the rest of the request, so it costs nothing extra.
		if id := r.Form.Get("client_id"); id != "" {
			if _, err := p.client(r.Context(), id); err != nil && !errors.Is(err, tenants.ErrNotFound) {
				p.log.LogAttrs(r.Context(), slog.LevelError, "oidcprovider: authorize: reading the client", slog.Any("error", err))
				w.Header().Set("Retry-After", "5")
				http.Error(w, "the service is temporarily unavailable; try again shortly", http.StatusServiceUnavailable)
				return
			}
		}
		rs := reqStateFrom(r.Context())
		rs.authorize = &ex
		rs.browserHash = p.bindBrowser(w, r)
		noStore(w)
		next.ServeHTTP(w, r)
	}
}

func parseExtras(form url.Values) (authorizeExtras, error) {
	var ex authorizeExtras
	if v := form.Get("organization"); v != "" {
		if !validPrefixedID(v, tenants.PrefixTenant) {
			return ex, errors.New("organization is not a tenant id")
		}
		ex.organization = v
	}
	if v := form.Get("connection"); v != "" {
		if !validPrefixedID(v, tenants.PrefixConnection) {
			return ex, errors.New("connection is not a connection id")
		}
		ex.connection = v
	}
	if v := form.Get("domain_hint"); v != "" {
		d, err := tenants.NormalizeDomain(v)
		if err != nil {
			return ex, errors.New("domain_hint is not a valid domain")
		}
		ex.domainHint = d
	}
	return ex, nil
}

// validPrefixedID accepts the shape of tenants.NewID ids.
func validPrefixedID(v, prefix string) bool {
	if !strings.HasPrefix(v, prefix) || len(v) > 64 || len(v) == len(prefix) {
		return false
	}
	for _, c := range v[len(prefix):] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// Browser binding. Anyone who learns a login id (it travels in the hosted
// page URL and can leak, e.g. through the IdP's Referer logs) could hit the
// callback once the login is done and carry the code into their own
// session at the application (authorization code injection). So /authorize
// sets a random cookie, the login stores its hash, and the callback issues
// the code only to a browser presenting it.
const (
	bindingCookie    = "ssob_authz"
	bindingCookieLen = 43
)

func (p *Provider) bindBrowser(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(bindingCookie); err == nil && len(c.Value) == bindingCookieLen {
		if _, err := base64Decode(c.Value); err == nil {
			p.setBindingCookie(w, c.Value) // extend
			return hashToken(c.Value)
		}
	}
	v, err := tenants.NewToken("", p.random)
	if err != nil {
		panic(fmt.Sprintf("oidcprovider: reading randomness: %v", err))
	}
	p.setBindingCookie(w, v.Reveal())
	return hashToken(v.Reveal())
}

func (p *Provider) setBindingCookie(w http.ResponseWriter, v string) {
	http.SetCookie(w, &http.Cookie{
		Name: bindingCookie, Value: v, Path: authorizePath,
		MaxAge: int(p.cfg.LoginTTL / time.Second), HttpOnly: true, Secure: p.secureCookies,
		// Lax: sent on the top-level GET to the callback, even after the
		// cross-site POST from the IdP to our ACS.
		SameSite: http.SameSiteLaxMode,
	})
}

// callback issues the authorization code of a completed login and sends
// the browser to the client's redirect_uri. It replaces zitadel's callback
// so that it takes one store round trip (SaveCode checks and returns the
// login at once), checks the browser binding, and issues at most one code
// per login (zitadel mints a new one on every hit).
func (p *Provider) callback(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if len(r.URL.RawQuery) > maxQuery {
		badRequest(w, "invalid request")
		return
	}
	id := r.URL.Query().Get("id")
	if !validLoginID(id) {
		p.callbackError(w, r)
		return
	}
	cookie, err := r.Cookie(bindingCookie)
	if err != nil || len(cookie.Value) != bindingCookieLen {
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "oidcprovider: callback without browser binding", slog.String("login_id", id))
		p.callbackError(w, r)
		return
	}
	code, err := p.op.Crypto().Encrypt(id)
	if err != nil {
		p.serverError(r.Context(), "callback: encrypting code", err)
		p.callbackError(w, r)
		return
	}
	now := p.clock.Now()
	l, err := p.st.SaveCode(r.Context(), id, hashToken(code), hashToken(cookie.Value), now.Add(p.cfg.CodeTTL), now)
	if err != nil {
		p.logCallbackFailure(r, id, err)
		p.callbackError(w, r)
		return
	}
	u, err := op.AuthResponseURL(l.Request.RedirectURI, oidc.ResponseType(l.Request.ResponseType), oidc.ResponseMode(l.Request.ResponseMode),
		&op.CodeResponseType{Code: code, State: l.Request.State}, p.op.Encoder())
	if err != nil {
		p.serverError(r.Context(), "callback: building redirect", err, slog.String("login_id", id))
		p.callbackError(w, r)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// logCallbackFailure says why, for the operator only.
func (p *Provider) logCallbackFailure(r *http.Request, id string, err error) {
	ctx := r.Context()
	if !errors.Is(err, tenants.ErrConflict) && !errors.Is(err, tenants.ErrNotFound) {
		p.serverError(ctx, "callback: saving code", err, slog.String("login_id", id))
		return
	}
	reason := "unknown login"
	if l, lerr := p.st.Login(ctx, id); lerr == nil {
		now := p.clock.Now()
		c, _ := r.Cookie(bindingCookie)
		switch {
		case !l.ExpiresAt.After(now):
			reason = "login expired"
		case !l.FailedAt.IsZero():
			reason = "login failed"
		case !l.Done:
			reason = "login not completed"
		case l.CodeIssued:
			reason = "code already issued (callback replayed)"
		case c == nil || subtle.ConstantTimeCompare([]byte(hashToken(c.Value)), []byte(l.BrowserHash)) != 1:
			reason = "browser binding mismatch (login finished in another browser?)"
		}
	}
	p.log.LogAttrs(ctx, slog.LevelWarn, "oidcprovider: callback refused", slog.String("login_id", id), slog.String("reason", reason))
}

// callbackError tells the browser its callback cannot issue a code, on
// the broker's error page when one is configured.
func (p *Provider) callbackError(w http.ResponseWriter, r *http.Request) {
	if p.cfg.ErrorPage != nil {
		p.cfg.ErrorPage(w, r, http.StatusBadRequest, "This sign-in link is no longer valid", "Return to the application and sign in again.")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintln(w, "This sign-in link is no longer valid. Return to the application and sign in again.")
}

// readBackChannelForm reads the body of a token, introspection or
// revocation request within bounds, refusing parameters in the URL
// (secrets in URLs end up in logs). On failure it has written an OAuth
// error and returns false.
func readBackChannelForm(w http.ResponseWriter, r *http.Request, limits map[string]int) bool {
	noStore(w)
	if r.URL.RawQuery != "" {
		oauthError(w, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("parameters must be sent in the request body"))
		return false
	}
	if err := parseBounded(w, r); err != nil {
		oauthError(w, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("%s", err.Error()))
		return false
	}
	if err := checkParams(r.PostForm, limits); err != nil {
		oauthError(w, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("%s", err.Error()))
		return false
	}
	return true
}

// token bounds the request, allows only our grants, and authenticates the
// client before zitadel sees the request, so that a code or refresh token
// is looked up (and possibly consumed) only for its authenticated owner.
func (p *Provider) token(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !readBackChannelForm(w, r, tokenLimits) {
			return
		}
		grant := r.PostForm.Get("grant_type")
		if grant != string(oidc.GrantTypeCode) && grant != string(oidc.GrantTypeRefreshToken) {
			oauthError(w, http.StatusBadRequest, oidc.ErrUnsupportedGrantType().WithDescription("supported: authorization_code, refresh_token"))
			return
		}
		rs := reqStateFrom(r.Context())
		if grant == string(oidc.GrantTypeCode) {
			if v := r.PostForm.Get("code_verifier"); v != "" {
				if !validVerifier(v) {
					oauthError(w, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("code_verifier must be 43 to 128 unreserved characters"))
					return
				}
				rs.codeChallenge = s256(v)
			}
		}
		id, status, oerr := p.authenticateClient(r, true)
		if oerr != nil {
			oauthError(w, status, oerr)
			return
		}
		rs.authClientID = id
		rs.redirectURI = r.PostForm.Get("redirect_uri")
		// Redeem the code (or read the refresh token) now, before zitadel:
		// it would turn a store failure into invalid_grant, and a client
		// told its refresh token is invalid throws it away.
		var err error
		if grant == string(oidc.GrantTypeCode) {
			_, err = p.storage.AuthRequestByCode(r.Context(), r.PostForm.Get("code"))
		} else {
			_, err = p.storage.TokenRequestByRefreshToken(r.Context(), r.PostForm.Get("refresh_token"))
		}
		if err != nil {
			oerr := oidc.DefaultToServerError(err, "internal error")
			status := http.StatusBadRequest
			if oerr.ErrorType == oidc.ServerError {
				status = http.StatusInternalServerError
			}
			oauthError(w, status, oerr)
			return
		}
		next.ServeHTTP(w, r)
	}
}

// authenticateClient checks client_secret_basic, client_secret_post, or
// none for public clients. It mirrors zitadel's parsing (Basic values are
// form-urlencoded, RFC 6749 §2.3.1) so both agree on who the client is.
func (p *Provider) authenticateClient(r *http.Request, allowPost bool) (id string, status int, oerr *oidc.Error) {
	if r.PostForm.Has("client_assertion") || r.PostForm.Has("client_assertion_type") {
		return "", http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("client assertions are not supported")
	}
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	basicID, basicSecret, basic := r.BasicAuth()
	var secret string
	switch {
	case basic && formSecret != "":
		return "", http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("client authentication must not use more than one method")
	case basic:
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return "", http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("invalid basic auth header")
		}
		if formID != "" && formID != id {
			return "", http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("client_id does not match the authenticated client")
		}
	case !allowPost && formSecret != "":
		return "", http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("use client_secret_basic")
	default:
		id, secret = formID, formSecret
	}
	if id == "" {
		return "", http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	c, err := p.client(r.Context(), id)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return "", http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("client authentication failed")
	case err != nil:
		return "", http.StatusInternalServerError, p.serverError(r.Context(), "authenticating client", err, slog.String("client_id", id))
	}
	if c.Public {
		if secret != "" {
			return "", http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("client authentication failed")
		}
		return id, 0, nil
	}
	if secret == "" || len(secret) > maxSecretLength || !tenants.AuthenticateClient(c, tenants.Secret(secret), p.clock.Now()) {
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "oidcprovider: client authentication failed", slog.String("client_id", id))
		return "", http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return id, 0, nil
}

// introspect requires client_secret_basic (RFC 7662 §2.1; zitadel accepts
// nothing else) and answers authentication failures in JSON rather than
// zitadel's plain-text error string.
func (p *Provider) introspect(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !readBackChannelForm(w, r, tokenOpLimits) {
			return
		}
		if _, _, ok := r.BasicAuth(); !ok {
			oauthError(w, http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("use client_secret_basic"))
			return
		}
		id, status, oerr := p.authenticateClient(r, false)
		if oerr != nil {
			oauthError(w, status, oerr)
			return
		}
		if c, err := p.client(r.Context(), id); err == nil && c.Public {
			oauthError(w, http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("public clients cannot introspect"))
			return
		}
		reqStateFrom(r.Context()).authClientID = id
		next.ServeHTTP(w, r)
	}
}

func (p *Provider) revoke(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !readBackChannelForm(w, r, tokenOpLimits) {
			return
		}
		id, status, oerr := p.authenticateClient(r, true)
		if oerr != nil {
			oauthError(w, status, oerr)
			return
		}
		reqStateFrom(r.Context()).authClientID = id
		next.ServeHTTP(w, r)
	}
}

func (p *Provider) userinfo(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		if err := parseBounded(w, r); err != nil {
			oauthError(w, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("%s", err.Error()))
			return
		}
		if len(r.Header.Get("Authorization")) > 4096 || len(r.Form.Get("access_token")) > 4096 {
			oauthError(w, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("access token too long"))
			return
		}
		next.ServeHTTP(w, r)
	}
}

func (p *Provider) endSession(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		if err := parseBounded(w, r); err != nil {
			badRequest(w, "invalid logout request: "+err.Error())
			return
		}
		if err := checkParams(r.Form, endSessionLimits); err != nil {
			badRequest(w, "invalid logout request: "+err.Error())
			return
		}
		next.ServeHTTP(w, r)
	}
}

// discovery is zitadel's document corrected to what we actually serve:
// zitadel always lists implicit, id_token response types, the JWT-bearer
// grant and a device endpoint.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), p.cfg.Issuer)
	d := op.CreateDiscoveryConfig(ctx, p.op, p.storage)
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	d.DeviceAuthorizationEndpoint = ""
	d.CheckSessionIframe = ""
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic}
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.RequestObjectSigningAlgValuesSupported = nil
	d.RequestParameterSupported = false
	d.ClaimsParameterSupported = false
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.ScopesSupported = supportedScopes
	d.ClaimsSupported = supportedClaims
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

func loggedOut(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprintln(w, "You have been signed out.")
}
