package saml

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// Options are shared by every ServiceProvider of one broker.
type Options struct {
	// BaseURL is the broker's issuer, e.g. https://sso.example.com, without
	// a trailing slash. SP entity IDs and ACS URLs hang below it.
	BaseURL string
	// Clock is the source of time for every check; nil means
	// tenants.SystemClock.
	Clock tenants.Clock
	// ClockSkew is allowed on every NotBefore, NotOnOrAfter and
	// IssueInstant. Default 3 minutes, at most MaxClockSkew.
	ClockSkew time.Duration
	// MaxResponseAge bounds how old a Response or Assertion IssueInstant may
	// be (plus ClockSkew). Default 5 minutes, at most MaxResponseAgeLimit.
	MaxResponseAge time.Duration
	// MaxResponseBytes bounds the decoded XML. Default 256 KiB, at most
	// MaxResponseBytesLimit.
	MaxResponseBytes int
	// RequestTTL is the lifetime of an AuthnRequest the broker stores.
	// Default 15 minutes, at most 24 hours.
	RequestTTL time.Duration
	// Random is the source of AuthnRequest IDs and certificate serials;
	// nil means crypto/rand. Tests set it for deterministic output.
	Random io.Reader
}

// Defaults and bounds of Options. The upper bounds exist because crewjam's
// own time checks are package globals that we set once to these bounds (see
// crewtime.go): no connection may ask for more leeway than they allow.
const (
	DefaultClockSkew        = 3 * time.Minute
	MaxClockSkew            = 10 * time.Minute
	DefaultMaxResponseAge   = 5 * time.Minute
	MaxResponseAgeLimit     = time.Hour
	DefaultMaxResponseBytes = 256 << 10
	MaxResponseBytesLimit   = 4 << 20
	DefaultRequestTTL       = 15 * time.Minute
	maxRequestTTL           = 24 * time.Hour
)

func (o Options) withDefaults() (Options, error) {
	base := strings.TrimSpace(o.BaseURL)
	u, err := url.Parse(base)
	switch {
	case base == "":
		return o, fmt.Errorf("saml: Options.BaseURL is required")
	case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return o, fmt.Errorf("saml: Options.BaseURL %q is not an absolute http(s) URL", o.BaseURL)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return o, fmt.Errorf("saml: Options.BaseURL %q must not carry a query, fragment or user info", o.BaseURL)
	case strings.HasSuffix(base, "/"):
		return o, fmt.Errorf("saml: Options.BaseURL %q must not end with a slash", o.BaseURL)
	}
	o.BaseURL = base
	if o.Clock == nil {
		o.Clock = tenants.SystemClock{}
	}
	if o.Random == nil {
		o.Random = rand.Reader
	}
	if o.ClockSkew == 0 {
		o.ClockSkew = DefaultClockSkew
	}
	if o.MaxResponseAge == 0 {
		o.MaxResponseAge = DefaultMaxResponseAge
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.RequestTTL == 0 {
		o.RequestTTL = DefaultRequestTTL
	}
	switch {
	case o.ClockSkew < 0 || o.ClockSkew > MaxClockSkew:
		return o, fmt.Errorf("saml: Options.ClockSkew %s must be between 0 and %s", o.ClockSkew, MaxClockSkew)
	case o.MaxResponseAge < 0 || o.MaxResponseAge > MaxResponseAgeLimit:
		return o, fmt.Errorf("saml: Options.MaxResponseAge %s must be between 0 and %s", o.MaxResponseAge, MaxResponseAgeLimit)
	case o.MaxResponseBytes < 0 || o.MaxResponseBytes > MaxResponseBytesLimit:
		return o, fmt.Errorf("saml: Options.MaxResponseBytes %d must be between 0 and %d", o.MaxResponseBytes, MaxResponseBytesLimit)
	case o.RequestTTL < 0 || o.RequestTTL > maxRequestTTL:
		return o, fmt.Errorf("saml: Options.RequestTTL %s must be between 0 and %s", o.RequestTTL, maxRequestTTL)
	}
	return o, nil
}
