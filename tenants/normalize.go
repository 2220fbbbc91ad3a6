package tenants

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Bounds on what the directory accepts. They sit well above any real value
// and exist so that no input is unbounded.
const (
	maxDomainLength   = 253 // RFC 1035, in ASCII form
	maxLabelLength    = 63
	maxEmailLength    = 254 // RFC 5321 path limit
	maxEmailInput     = 1024
	maxURILength      = 2048
	maxNameLength     = 200
	MaxRedirectURIs   = 20
	MaxDomainsPerCall = 100
)

// domainProfile is IDNA2008 with the checks a registrable hostname needs:
// ASCII output, hyphen rules, bidi rules and STD3 characters only.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.StrictDomainName(true),
	idna.ValidateLabels(true),
	idna.VerifyDNSLength(true),
)

// NormalizeDomain returns the canonical ASCII form of an email domain that a
// tenant may own: trimmed, lower-cased, IDNA-encoded (bücher.example ->
// xn--bcher-kva.example), without a trailing dot. It rejects IP literals,
// single labels, public suffixes (com, co.uk, github.io) and over-long names,
// because a tenant claiming any of those would capture other people's users.
func NormalizeDomain(raw string) (string, error) {
	if len(raw) > 4*maxDomainLength {
		return "", invalidWith("domain", "is too long", ErrInvalidDomain)
	}
	s := strings.TrimSpace(raw)
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", invalidWith("domain", "is empty", ErrInvalidDomain)
	}
	if !utf8.ValidString(s) {
		return "", invalidWith("domain", "is not valid UTF-8", ErrInvalidDomain)
	}
	if strings.HasPrefix(s, "[") || net.ParseIP(s) != nil {
		return "", invalidWith("domain", fmt.Sprintf("%q is an IP address, not a domain", s), ErrInvalidDomain)
	}
	ascii, err := domainProfile.ToASCII(s)
	if err != nil {
		return "", invalidWith("domain", fmt.Sprintf("%q is not a valid domain name", s), fmt.Errorf("%w: %w", ErrInvalidDomain, err))
	}
	ascii = strings.ToLower(ascii)
	// The ASCII form must itself pass the same profile: a label that only
	// exists because of a lenient mapping (U+FFFD from bad input, say) would
	// otherwise be stored and later fail to match what the user types.
	if again, err := domainProfile.ToASCII(ascii); err != nil || again != ascii {
		return "", invalidWith("domain", fmt.Sprintf("%q is not a valid domain name", s), ErrInvalidDomain)
	}
	if len(ascii) > maxDomainLength {
		return "", invalidWith("domain", "is longer than 253 characters", ErrInvalidDomain)
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", invalidWith("domain", fmt.Sprintf("%q is a single label; use a registered domain such as example.com", ascii), ErrInvalidDomain)
	}
	for _, l := range labels {
		if l == "" || len(l) > maxLabelLength {
			return "", invalidWith("domain", fmt.Sprintf("%q has an empty or over-long label", ascii), ErrInvalidDomain)
		}
	}
	// All-numeric dotted names parse as IPv4 in some resolvers (1.2.3.4 was
	// caught above; 1.2.3 or 010.1 are not valid IP literals here but still
	// are not domains anyone registers).
	if _, err := netip.ParseAddr(ascii); err == nil || isAllNumeric(labels[len(labels)-1]) {
		return "", invalidWith("domain", fmt.Sprintf("%q is not a registrable domain", ascii), ErrInvalidDomain)
	}
	suffix, _ := publicsuffix.PublicSuffix(ascii)
	if suffix == ascii {
		return "", invalidWith("domain", fmt.Sprintf("%q is a public suffix that many organizations share", ascii), ErrInvalidDomain)
	}
	return ascii, nil
}

func isAllNumeric(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// Email is a parsed, normalized email address.
type Email struct {
	// Address is local@domain with the domain normalized. The local part is
	// kept as typed: it is case-sensitive by RFC 5321 and only the IdP knows
	// its rules.
	Address string
	Local   string
	Domain  string
}

// ParseEmail normalizes a work email typed on the hosted page or asserted by
// an IdP. It does not try to be a full RFC 5322 parser: it accepts what
// people and IdPs actually send (one @, no spaces or control characters) and
// normalizes the domain with NormalizeDomain.
func ParseEmail(raw string) (Email, error) {
	if len(raw) > maxEmailInput {
		return Email{}, invalidWith("email", "is too long", ErrInvalidEmail)
	}
	s := strings.TrimSpace(raw)
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return Email{}, invalidWith("email", "must look like name@company.com", ErrInvalidEmail)
	}
	local, host := s[:at], s[at+1:]
	if !utf8.ValidString(local) || strings.ContainsFunc(local, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '@' || r == '<' || r == '>' || r == '"'
	}) {
		return Email{}, invalidWith("email", "contains characters not allowed in an address", ErrInvalidEmail)
	}
	if len(local) > 64 {
		return Email{}, invalidWith("email", "local part is longer than 64 characters", ErrInvalidEmail)
	}
	domain, err := NormalizeDomain(host)
	if err != nil {
		return Email{}, invalidWith("email", "domain is not valid", fmt.Errorf("%w: %w", ErrInvalidEmail, err))
	}
	addr := local + "@" + domain
	if len(addr) > maxEmailLength {
		return Email{}, invalidWith("email", "is longer than 254 characters", ErrInvalidEmail)
	}
	return Email{Address: addr, Local: local, Domain: domain}, nil
}

// ValidateRedirectURI checks a client's registered redirect (or post-logout,
// or initiate-login) URI. Exact matching at /authorize is only safe if what
// was registered is itself safe: absolute, no fragment (RFC 6749 §3.1.2), no
// userinfo (a classic open-redirect disguise: https://app.com@evil.com), and
// https unless the host is loopback (RFC 8252 §7.3 native apps).
func ValidateRedirectURI(field, raw string) error {
	if raw == "" {
		return invalidWith(field, "is empty", ErrInvalidRedirect)
	}
	if len(raw) > maxURILength {
		return invalidWith(field, "is longer than 2048 characters", ErrInvalidRedirect)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return invalidWith(field, "contains whitespace or control characters", ErrInvalidRedirect)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalidWith(field, fmt.Sprintf("%q is not a URL", raw), ErrInvalidRedirect)
	}
	switch {
	case !u.IsAbs() || u.Host == "":
		return invalidWith(field, fmt.Sprintf("%q is not an absolute URL", raw), ErrInvalidRedirect)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return invalidWith(field, fmt.Sprintf("%q has a fragment", raw), ErrInvalidRedirect)
	case u.User != nil:
		return invalidWith(field, fmt.Sprintf("%q carries user info", raw), ErrInvalidRedirect)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return invalidWith(field, fmt.Sprintf("%q must use https (http is allowed only for loopback hosts)", raw), ErrInvalidRedirect)
	default:
		return invalidWith(field, fmt.Sprintf("%q has scheme %q; only https (or http on loopback) is allowed", raw, u.Scheme), ErrInvalidRedirect)
	}
}

// IsLoopbackHost reports whether host (without port) is localhost or a
// loopback IP literal.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// ValidateName checks a human-readable name (tenant, connection, client).
func ValidateName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid(field, "is required")
	case utf8.RuneCountInString(name) > maxNameLength:
		return "", invalid(field, "is longer than 200 characters")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return "", invalid(field, "contains control characters")
	}
	return name, nil
}
