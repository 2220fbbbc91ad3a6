package oidcprovider

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// Config configures a Provider. Zero values take the defaults below.
type Config struct {
	// Issuer is the static issuer and public base URL, e.g.
	// https://sso.example.com, without a path, query or fragment. http is
	// allowed only for loopback hosts (development and tests). It never
	// comes from the request: a Host header cannot change it.
	Issuer string
	// LoginURL is where the browser goes after /authorize. Default:
	// Issuer+"/login?id="+id (the broker's hosted page).
	LoginURL func(loginID string) string
	// LoggedOutURL is where /end_session sends the browser when the client
	// gave no valid post_logout_redirect_uri. Default: Issuer+"/logged-out",
	// a plain page served by Handler.
	LoggedOutURL string

	Clock  tenants.Clock // default tenants.SystemClock
	Random io.Reader     // default crypto/rand
	Logger *slog.Logger  // default: discard

	// SigningAlgorithm is "RS256" (default; RSA-2048) or "ES256" (P-256).
	// Changing it rotates to a key of the new algorithm, published
	// KeyPublishAhead before it signs.
	SigningAlgorithm string
	// KeyRotation is how long a signing key signs (default 30 days).
	KeyRotation time.Duration
	// KeyPublishAhead is how long the next key is in the JWKS before it
	// signs, so that relying parties with a cached JWKS know it (default
	// 24h; at most KeyRotation/2).
	KeyPublishAhead time.Duration
	// KeyCacheTTL is how long the keys read from the store are used before
	// they are read again (default 1 minute). Key activation is by time, so
	// replicas switch keys together regardless of the TTL.
	KeyCacheTTL time.Duration

	// Default token lifetimes; a client's own TTLs win.
	AccessTokenTTL  time.Duration // default 1h
	IDTokenTTL      time.Duration // default 15m
	RefreshTokenTTL time.Duration // default 30 days: the absolute lifetime of a grant with offline_access
	CodeTTL         time.Duration // default and maximum 60s
	LoginTTL        time.Duration // default 30m: from /authorize to the code

	// ClockSkew is tolerated between our clock and the IdP's when checking
	// auth_time against max_age and prompt=login (default 3 minutes).
	ClockSkew time.Duration

	// CORSAllowedOrigins lists the exact origins (scheme://host[:port]) that
	// browsers may call the token, userinfo, revocation, JWKS and discovery
	// endpoints from. Default none. Credentials are never allowed.
	CORSAllowedOrigins []string

	// OnRevoke, when set, is told of every revocation: by the client at
	// the revocation endpoint, by logout, and by the provider itself when a
	// code is replayed or a rotated refresh token is reused. The broker
	// writes these to the audit log. It must not block.
	OnRevoke func(ctx context.Context, r Revocation)

	// ErrorPage, when set, renders the pages the provider shows browsers
	// itself (a callback that cannot issue a code), so users see the
	// broker's page with a reference rather than plain text.
	ErrorPage func(w http.ResponseWriter, r *http.Request, status int, title, message string)
}

// Revocation describes tokens the provider revoked. Reason is one of
// revoked_by_client, logout, code_replayed, refresh_token_reused.
type Revocation struct {
	ClientID     string
	Subject      string
	TenantID     string
	ConnectionID string
	Reason       string
	// Grants and AccessTokens count what was revoked: a grant takes all of
	// its tokens with it.
	Grants       int64
	AccessTokens int64
}

const (
	algRS256 = "RS256"
	algES256 = "ES256"

	maxCodeTTL = 60 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = tenants.SystemClock{}
	}
	if c.Random == nil {
		c.Random = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SigningAlgorithm == "" {
		c.SigningAlgorithm = algRS256
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.KeyRotation, 30*24*time.Hour)
	def(&c.KeyPublishAhead, 24*time.Hour)
	def(&c.KeyCacheTTL, time.Minute)
	def(&c.AccessTokenTTL, time.Hour)
	def(&c.IDTokenTTL, 15*time.Minute)
	def(&c.RefreshTokenTTL, 30*24*time.Hour)
	def(&c.CodeTTL, maxCodeTTL)
	def(&c.LoginTTL, 30*time.Minute)
	def(&c.ClockSkew, 3*time.Minute)
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	if c.LoginURL == nil {
		base := c.Issuer + "/login?id="
		c.LoginURL = func(id string) string { return base + url.QueryEscape(id) }
	}
	if c.LoggedOutURL == "" {
		c.LoggedOutURL = c.Issuer + loggedOutPath
	}
	return c
}

// validate returns every problem at once.
func (c Config) validate() (insecure bool, err error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	insecure, ierr := validateIssuer(c.Issuer)
	if ierr != nil {
		errs = append(errs, ierr)
	}
	if c.SigningAlgorithm != algRS256 && c.SigningAlgorithm != algES256 {
		bad("signing algorithm %q: want RS256 or ES256", c.SigningAlgorithm)
	}
	if c.CodeTTL < 0 || c.CodeTTL > maxCodeTTL {
		bad("code TTL %s: must be at most %s (codes are bearer secrets in browser URLs)", c.CodeTTL, maxCodeTTL)
	}
	for name, d := range map[string]time.Duration{
		"key rotation": c.KeyRotation, "key publish-ahead": c.KeyPublishAhead, "key cache TTL": c.KeyCacheTTL,
		"access token TTL": c.AccessTokenTTL, "ID token TTL": c.IDTokenTTL, "refresh token TTL": c.RefreshTokenTTL,
		"login TTL": c.LoginTTL, "clock skew": c.ClockSkew,
	} {
		if d < 0 {
			bad("%s %s: must not be negative", name, d)
		}
	}
	if c.KeyPublishAhead > c.KeyRotation/2 {
		bad("key publish-ahead %s: must be at most half the key rotation %s", c.KeyPublishAhead, c.KeyRotation)
	}
	if c.KeyCacheTTL > c.KeyPublishAhead {
		bad("key cache TTL %s: must be shorter than the key publish-ahead %s", c.KeyCacheTTL, c.KeyPublishAhead)
	}
	if c.LoginTTL > 24*time.Hour {
		bad("login TTL %s: at most 24h", c.LoginTTL)
	}
	if c.AccessTokenTTL > tenants.MaxAccessTokenTTL || c.IDTokenTTL > tenants.MaxIDTokenTTL || c.RefreshTokenTTL > tenants.MaxRefreshTokenTTL {
		bad("token TTLs: at most %s (access), %s (ID), %s (refresh)", tenants.MaxAccessTokenTTL, tenants.MaxIDTokenTTL, tenants.MaxRefreshTokenTTL)
	}
	if c.LoggedOutURL != "" && c.LoggedOutURL != c.Issuer+loggedOutPath {
		if err := tenants.ValidateRedirectURI("logged_out_url", c.LoggedOutURL); err != nil {
			bad("logged-out URL: %w", err)
		}
	}
	for _, o := range c.CORSAllowedOrigins {
		if err := validateOrigin(o); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return false, fmt.Errorf("oidcprovider: invalid config: %w", errors.Join(errs...))
	}
	return insecure, nil
}

// validateIssuer accepts https URLs, and http only on loopback hosts: an
// http issuer anywhere else would let anyone on the path read codes and
// tokens. The issuer has no path because Handler is mounted at "/".
func validateIssuer(raw string) (insecure bool, err error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return false, errors.New("issuer is required")
	case err != nil || !u.IsAbs() || u.Host == "":
		return false, fmt.Errorf("issuer %q is not an absolute URL", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(raw, "#") || strings.Contains(raw, "?"):
		return false, fmt.Errorf("issuer %q must not have user info, a query or a fragment", raw)
	case u.Path != "" && u.Path != "/":
		return false, fmt.Errorf("issuer %q must not have a path: the provider is mounted at /", raw)
	case u.Scheme == "https":
		return false, nil
	case u.Scheme == "http" && tenants.IsLoopbackHost(u.Hostname()):
		return true, nil
	default:
		return false, fmt.Errorf("issuer %q must use https (http only for loopback hosts)", raw)
	}
}

func validateOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || o == "*" || !u.IsAbs() || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || strings.Contains(o, "*") {
		return fmt.Errorf("CORS origin %q: want an exact scheme://host[:port] (no wildcards)", o)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && tenants.IsLoopbackHost(u.Hostname())) {
		return fmt.Errorf("CORS origin %q: must use https (http only for loopback hosts)", o)
	}
	return nil
}
