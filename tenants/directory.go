package tenants

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Directory validates and normalizes every change to tenants, domains,
// connections, clients and identities before handing it to the Store.
type Directory struct {
	Store  Store
	Clock  Clock
	Random io.Reader
}

// NewTenant is the input to CreateTenant.
type NewTenant struct {
	Name    string
	Domains []string
}

// CreateTenant creates a tenant with its domains. Domains given here are
// added by the operator and therefore verified.
func (d *Directory) CreateTenant(ctx context.Context, in NewTenant) (Tenant, error) {
	name, err := ValidateName("name", in.Name)
	if err != nil {
		return Tenant{}, err
	}
	if len(in.Domains) > MaxDomainsPerCall {
		return Tenant{}, invalid("domains", fmt.Sprintf("at most %d domains per request", MaxDomainsPerCall))
	}
	now := d.Clock.Now()
	id, err := NewID(PrefixTenant, now, d.Random)
	if err != nil {
		return Tenant{}, err
	}
	t := Tenant{ID: id, Name: name, CreatedAt: now, UpdatedAt: now}
	seen := map[string]bool{}
	for i, raw := range in.Domains {
		dom, err := NormalizeDomain(raw)
		if err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				ve.Field = fmt.Sprintf("domains[%d]", i)
			}
			return Tenant{}, err
		}
		if seen[dom] {
			continue
		}
		seen[dom] = true
		t.Domains = append(t.Domains, Domain{Name: dom, TenantID: id, Verified: true, CreatedAt: now})
	}
	if err := d.Store.CreateTenant(ctx, t); err != nil {
		return Tenant{}, fmt.Errorf("create tenant: %w", err)
	}
	return t, nil
}

// RenameTenant changes a tenant's display name.
func (d *Directory) RenameTenant(ctx context.Context, id, name string) (Tenant, error) {
	name, err := ValidateName("name", name)
	if err != nil {
		return Tenant{}, err
	}
	now := d.Clock.Now()
	return d.Store.UpdateTenant(ctx, id, func(t *Tenant) error {
		t.Name = name
		t.UpdatedAt = now
		return nil
	})
}

// AddDomain adds a domain to a tenant. It returns a *DomainTakenError when
// any tenant (including this one) already holds it.
func (d *Directory) AddDomain(ctx context.Context, tenantID, raw string, verified bool) (Domain, error) {
	dom, err := NormalizeDomain(raw)
	if err != nil {
		return Domain{}, err
	}
	rec := Domain{Name: dom, TenantID: tenantID, Verified: verified, CreatedAt: d.Clock.Now()}
	if err := d.Store.AddDomain(ctx, rec); err != nil {
		return Domain{}, fmt.Errorf("add domain %s to %s: %w", dom, tenantID, err)
	}
	return rec, nil
}

// RemoveDomain removes a domain from a tenant; ErrNotFound if the tenant
// does not hold it.
func (d *Directory) RemoveDomain(ctx context.Context, tenantID, raw string) error {
	dom, err := NormalizeDomain(raw)
	if err != nil {
		return err
	}
	return d.Store.DeleteDomain(ctx, tenantID, dom)
}

// Resolution is where an email leads on the hosted page.
type Resolution struct {
	Email       Email
	Tenant      Tenant
	Connections []ConnectionRef
}

// Route resolves a typed email to its tenant's active connections. Unknown
// domains, unverified domains and tenants without an active connection all
// return ErrNoSSO, so the page tells the user the same thing in each case.
func (d *Directory) Route(ctx context.Context, rawEmail string) (Resolution, error) {
	email, err := ParseEmail(rawEmail)
	if err != nil {
		return Resolution{}, err
	}
	return d.RouteDomain(ctx, email)
}

// RouteDomain is Route for an already parsed email (or a bare domain hint
// put in Email.Domain).
func (d *Directory) RouteDomain(ctx context.Context, email Email) (Resolution, error) {
	r, err := d.Store.RouteDomain(ctx, email.Domain)
	switch {
	case errors.Is(err, ErrNotFound):
		return Resolution{}, fmt.Errorf("route %s: domain not registered: %w", email.Domain, ErrNoSSO)
	case err != nil:
		return Resolution{}, fmt.Errorf("route %s: %w", email.Domain, err)
	case !r.Domain.Verified:
		return Resolution{}, fmt.Errorf("route %s: domain not verified: %w", email.Domain, ErrNoSSO)
	case len(r.Connections) == 0:
		return Resolution{}, fmt.Errorf("route %s: tenant %s has no active connection: %w", email.Domain, r.Tenant.ID, ErrNoSSO)
	}
	return Resolution{Email: email, Tenant: r.Tenant, Connections: r.Connections}, nil
}

// Name ID formats a connection may request. Transient is deliberately absent:
// it is a fresh random value per session and cannot key an identity.
var NameIDFormats = []string{
	"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
	"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
	"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
}

const (
	maxEntityIDLength   = 1024
	maxCertificates     = 10
	maxCertificateBytes = 16 << 10
	maxAttributeName    = 512
)

// ValidateConnection checks a connection before it is stored: a name, a
// known preset and status, an IdP we can talk to and verify, and an SP key.
func ValidateConnection(c *Connection) error {
	name, err := ValidateName("name", c.Name)
	if err != nil {
		return err
	}
	c.Name = name
	if c.Preset == "" {
		c.Preset = PresetGeneric
	}
	if !c.Preset.Valid() {
		return invalid("preset", fmt.Sprintf("%q is not one of okta, entra, google, onelogin, ping, generic", c.Preset))
	}
	if c.Status == "" {
		c.Status = StatusActive
	}
	if !c.Status.Valid() {
		return invalid("status", fmt.Sprintf("%q is not active or inactive", c.Status))
	}
	if err := ValidateIdPConfig(c.IdP); err != nil {
		return err
	}
	if c.Metadata.URL != "" {
		if err := ValidateMetadataURL(c.Metadata.URL); err != nil {
			return err
		}
	}
	if err := validateMapping(c.AttributeMapping); err != nil {
		return err
	}
	if f := c.Policy.NameIDFormat; f != "" && !contains(NameIDFormats, f) {
		return invalid("name_id_format", fmt.Sprintf("%q is not persistent, emailAddress or unspecified", f))
	}
	if c.SPKey == "" || c.SPCertificate == "" {
		return invalid("sp_key", "is missing")
	}
	return nil
}

// ValidateIdPConfig checks what we will trust about an IdP.
func ValidateIdPConfig(idp IdPConfig) error {
	switch {
	case strings.TrimSpace(idp.EntityID) == "":
		return invalid("idp_entity_id", "is required")
	case len(idp.EntityID) > maxEntityIDLength || !utf8.ValidString(idp.EntityID):
		return invalid("idp_entity_id", "is longer than 1024 characters or not UTF-8")
	case idp.SSORedirectURL == "" && idp.SSOPostURL == "":
		return invalid("idp_sso_url", "is required (the IdP's SingleSignOnService for HTTP-Redirect or HTTP-POST)")
	}
	for _, u := range []string{idp.SSORedirectURL, idp.SSOPostURL} {
		if u == "" {
			continue
		}
		if err := validateIdPURL("idp_sso_url", u); err != nil {
			return err
		}
	}
	if len(idp.Certificates) == 0 {
		return invalid("idp_certificates", "at least one signing certificate is required")
	}
	if len(idp.Certificates) > maxCertificates {
		return invalid("idp_certificates", fmt.Sprintf("at most %d certificates", maxCertificates))
	}
	for i, c := range idp.Certificates {
		if _, err := ParseCertificate(c); err != nil {
			return invalid(fmt.Sprintf("idp_certificates[%d]", i), err.Error())
		}
	}
	return nil
}

// ValidateMetadataURL checks an IdP metadata URL: https, or http on a
// loopback host (for local IdPs in development).
func ValidateMetadataURL(raw string) error {
	return validateIdPURL("idp_metadata_url", raw)
}

func validateIdPURL(field, raw string) error {
	if len(raw) > maxURILength {
		return invalid(field, "is longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return invalid(field, fmt.Sprintf("%q is not an absolute URL", raw))
	}
	if u.User != nil {
		return invalid(field, "must not carry user info")
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
		return nil
	default:
		return invalid(field, fmt.Sprintf("%q must use https (http only on loopback)", raw))
	}
}

// ParseCertificate decodes one PEM certificate, or bare base64 DER as IdP
// admin consoles often show it.
func ParseCertificate(s string) (*x509.Certificate, error) {
	if len(s) > maxCertificateBytes {
		return nil, errors.New("certificate is larger than 16 KiB")
	}
	s = strings.TrimSpace(s)
	var der []byte
	if strings.HasPrefix(s, "-----BEGIN") {
		block, rest := pem.Decode([]byte(s))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, errors.New("is not a PEM CERTIFICATE block")
		}
		if strings.TrimSpace(string(rest)) != "" {
			return nil, errors.New("holds more than one PEM block; give each certificate separately")
		}
		der = block.Bytes
	} else {
		b, err := decodeBase64Loose(s)
		if err != nil {
			return nil, errors.New("is neither PEM nor base64 DER")
		}
		der = b
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("is not a valid X.509 certificate: %w", err)
	}
	return cert, nil
}

// CertificatePEM re-encodes a certificate in canonical PEM.
func CertificatePEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func validateMapping(m AttributeMapping) error {
	for field, v := range map[string]string{
		"attribute_mapping.subject": m.Subject, "attribute_mapping.email": m.Email,
		"attribute_mapping.given_name": m.GivenName, "attribute_mapping.family_name": m.FamilyName,
		"attribute_mapping.name": m.Name, "attribute_mapping.groups": m.Groups,
	} {
		if len(v) > maxAttributeName || !utf8.ValidString(v) {
			return invalid(field, "is longer than 512 characters or not UTF-8")
		}
	}
	return nil
}

// NewClient is the input to CreateClient.
type NewClient struct {
	Name                   string
	Public                 bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	InitiateLoginURI       string
	AllowedTenants         []string
	AccessTokenTTL         time.Duration
	IDTokenTTL             time.Duration
	RefreshTokenTTL        time.Duration
}

// Token lifetime bounds for clients.
const (
	MaxAccessTokenTTL  = 24 * time.Hour
	MaxIDTokenTTL      = 24 * time.Hour
	MaxRefreshTokenTTL = 365 * 24 * time.Hour
	minTokenTTL        = time.Minute
)

// ValidateClient checks a client's settings (not its secret).
func ValidateClient(c *Client) error {
	name, err := ValidateName("name", c.Name)
	if err != nil {
		return err
	}
	c.Name = name
	if len(c.RedirectURIs) == 0 {
		return invalidWith("redirect_uris", "at least one redirect URI is required", ErrInvalidRedirect)
	}
	for field, list := range map[string][]string{"redirect_uris": c.RedirectURIs, "post_logout_redirect_uris": c.PostLogoutRedirectURIs} {
		if len(list) > MaxRedirectURIs {
			return invalidWith(field, fmt.Sprintf("at most %d URIs", MaxRedirectURIs), ErrInvalidRedirect)
		}
		for i, u := range list {
			if err := ValidateRedirectURI(fmt.Sprintf("%s[%d]", field, i), u); err != nil {
				return err
			}
		}
	}
	if c.InitiateLoginURI != "" {
		if err := ValidateRedirectURI("initiate_login_uri", c.InitiateLoginURI); err != nil {
			return err
		}
		if !strings.HasPrefix(c.InitiateLoginURI, "https://") {
			// OIDC Core §4: initiate_login_uri MUST use https.
			if u, _ := url.Parse(c.InitiateLoginURI); u == nil || !IsLoopbackHost(u.Hostname()) {
				return invalidWith("initiate_login_uri", "must use https", ErrInvalidRedirect)
			}
		}
	}
	if len(c.AllowedTenants) > MaxDomainsPerCall {
		return invalid("allowed_tenants", fmt.Sprintf("at most %d tenants", MaxDomainsPerCall))
	}
	for i, t := range c.AllowedTenants {
		if !strings.HasPrefix(t, PrefixTenant) || len(t) > 64 {
			return invalid(fmt.Sprintf("allowed_tenants[%d]", i), fmt.Sprintf("%q is not a tenant id", t))
		}
	}
	for _, ttl := range []struct {
		field string
		v     time.Duration
		max   time.Duration
	}{
		{"access_token_ttl", c.AccessTokenTTL, MaxAccessTokenTTL},
		{"id_token_ttl", c.IDTokenTTL, MaxIDTokenTTL},
		{"refresh_token_ttl", c.RefreshTokenTTL, MaxRefreshTokenTTL},
	} {
		if ttl.v != 0 && (ttl.v < minTokenTTL || ttl.v > ttl.max) {
			return invalid(ttl.field, fmt.Sprintf("must be between %s and %s", minTokenTTL, ttl.max))
		}
	}
	return nil
}

// CreateClient registers a client. For confidential clients it returns the
// secret, which is stored only as a hash and cannot be shown again.
func (d *Directory) CreateClient(ctx context.Context, in NewClient) (Client, Secret, error) {
	now := d.Clock.Now()
	c := Client{
		Name: in.Name, Public: in.Public,
		RedirectURIs: in.RedirectURIs, PostLogoutRedirectURIs: in.PostLogoutRedirectURIs,
		InitiateLoginURI: in.InitiateLoginURI, AllowedTenants: in.AllowedTenants,
		AccessTokenTTL: in.AccessTokenTTL, IDTokenTTL: in.IDTokenTTL, RefreshTokenTTL: in.RefreshTokenTTL,
		CreatedAt: now, UpdatedAt: now,
	}
	if err := ValidateClient(&c); err != nil {
		return Client{}, "", err
	}
	id, err := NewID(PrefixClient, now, d.Random)
	if err != nil {
		return Client{}, "", err
	}
	c.ID = id
	var secret Secret
	if !c.Public {
		if secret, err = NewToken(clientSecretPrefix, d.Random); err != nil {
			return Client{}, "", err
		}
		c.SecretHash = HashSecret(secret)
	}
	if err := d.Store.CreateClient(ctx, c); err != nil {
		return Client{}, "", fmt.Errorf("create client: %w", err)
	}
	return c, secret, nil
}

// RotateClientSecret issues a new secret. The old one keeps working for
// grace (zero: not at all), so deployments can roll over without downtime.
func (d *Directory) RotateClientSecret(ctx context.Context, id string, grace time.Duration) (Client, Secret, error) {
	if grace < 0 || grace > 30*24*time.Hour {
		return Client{}, "", invalid("grace_period_seconds", "must be between 0 and 30 days")
	}
	secret, err := NewToken(clientSecretPrefix, d.Random)
	if err != nil {
		return Client{}, "", err
	}
	now := d.Clock.Now()
	c, err := d.Store.UpdateClient(ctx, id, func(c *Client) error {
		if c.Public {
			return invalid("client", "public clients have no secret")
		}
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = "", time.Time{}
		if grace > 0 {
			c.PreviousSecretHash, c.PreviousSecretExpiresAt = c.SecretHash, now.Add(grace)
		}
		c.SecretHash = HashSecret(secret)
		c.UpdatedAt = now
		return nil
	})
	if err != nil {
		return Client{}, "", fmt.Errorf("rotate secret of %s: %w", id, err)
	}
	return c, secret, nil
}

// AuthenticateClient reports whether secret is the client's current secret,
// or its previous one within the grace period. Both comparisons always run,
// in constant time.
func AuthenticateClient(c Client, secret Secret, now time.Time) bool {
	current := SecretMatches(c.SecretHash, secret)
	previous := SecretMatches(c.PreviousSecretHash, secret) && now.Before(c.PreviousSecretExpiresAt)
	return !c.Public && (current || previous)
}

// UpsertIdentity records a login's profile just in time and returns the
// identity with its stable Subject. emailVerified must already reflect the
// tenant's verified domains (see EmailVerified).
func (d *Directory) UpsertIdentity(ctx context.Context, conn Connection, p Profile, emailVerified bool) (Identity, error) {
	if p.Subject == "" {
		return Identity{}, invalid("subject", "the assertion carries no subject")
	}
	now := d.Clock.Now()
	sub, err := NewID(PrefixIdentity, now, d.Random)
	if err != nil {
		return Identity{}, err
	}
	id, err := d.Store.UpsertIdentity(ctx, Identity{
		Subject: sub, TenantID: conn.TenantID, ConnectionID: conn.ID, IdPSubject: p.Subject,
		Email: p.Email, EmailVerified: emailVerified, Profile: p, Status: IdentityActive,
		CreatedAt: now, UpdatedAt: now, LastLoginAt: now,
	})
	if err != nil {
		return Identity{}, fmt.Errorf("upsert identity for %s: %w", conn.ID, err)
	}
	return id, nil
}

// EmailVerified reports whether an email asserted by tenantID's IdP may be
// trusted: its domain must be a verified domain of that same tenant. Any IdP
// can put any address in an assertion; only the owner of a domain vouches
// for addresses in it.
func (d *Directory) EmailVerified(ctx context.Context, tenantID, email string) (bool, error) {
	e, err := ParseEmail(email)
	if err != nil {
		return false, nil
	}
	dom, err := d.Store.Domain(ctx, e.Domain)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("email verification for %s: %w", tenantID, err)
	}
	return dom.Verified && dom.TenantID == tenantID, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// CreateConnection validates c, gives it an id and stores it. The caller
// supplies the IdP config and the SP key pair (package saml makes both).
func (d *Directory) CreateConnection(ctx context.Context, c Connection) (Connection, error) {
	now := d.Clock.Now()
	id, err := NewID(PrefixConnection, now, d.Random)
	if err != nil {
		return Connection{}, err
	}
	c.ID, c.CreatedAt, c.UpdatedAt = id, now, now
	if err := ValidateConnection(&c); err != nil {
		return Connection{}, err
	}
	if err := d.Store.CreateConnection(ctx, c); err != nil {
		return Connection{}, fmt.Errorf("create connection for %s: %w", c.TenantID, err)
	}
	return c, nil
}
