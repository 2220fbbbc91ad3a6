package tenants

import (
	"log/slog"
	"time"
)

// Tenant is an enterprise customer organization.
type Tenant struct {
	ID        string
	Name      string
	Domains   []Domain
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Domain is an email domain owned by exactly one tenant. Name is the
// normalized ASCII (IDNA "Lookup" profile) form; see NormalizeDomain.
type Domain struct {
	Name      string
	TenantID  string
	Verified  bool
	CreatedAt time.Time
}

// ConnectionStatus says whether a connection may be used for new logins.
type ConnectionStatus string

const (
	StatusActive   ConnectionStatus = "active"
	StatusInactive ConnectionStatus = "inactive"
)

// Valid reports whether s is one of the known statuses.
func (s ConnectionStatus) Valid() bool { return s == StatusActive || s == StatusInactive }

// Preset names an attribute-mapping preset, which is also the value of the
// `idp` claim.
type Preset string

const (
	PresetOkta     Preset = "okta"
	PresetEntra    Preset = "entra"
	PresetGoogle   Preset = "google"
	PresetOneLogin Preset = "onelogin"
	PresetPing     Preset = "ping"
	PresetGeneric  Preset = "generic"
)

// Presets lists every preset in a stable order (for docs and validation).
var Presets = []Preset{PresetOkta, PresetEntra, PresetGoogle, PresetOneLogin, PresetPing, PresetGeneric}

// Valid reports whether p is a known preset.
func (p Preset) Valid() bool {
	for _, q := range Presets {
		if p == q {
			return true
		}
	}
	return false
}

// Connection is one SAML SP connection from a tenant to its IdP.
//
// The SP entity ID and ACS URL are derived from the broker's issuer and the
// connection ID ({issuer}/saml/{id} and {issuer}/saml/{id}/acs) rather than
// stored, so they cannot drift from the routes that serve them.
type Connection struct {
	ID               string
	TenantID         string
	Name             string
	Status           ConnectionStatus
	Preset           Preset
	IdP              IdPConfig
	AttributeMapping AttributeMapping
	Policy           ConnectionPolicy
	// SPKey is the PEM-encoded private key of this connection's SP. The
	// store seals it with the master key before it reaches the database.
	SPKey Secret
	// SPCertificate is the PEM-encoded self-signed certificate for SPKey.
	SPCertificate string
	Metadata      MetadataSource
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// IdPConfig is what we trust about the customer's IdP.
type IdPConfig struct {
	EntityID string
	// SSORedirectURL and SSOPostURL are the IdP's SingleSignOnService
	// locations for the HTTP-Redirect and HTTP-POST bindings. At least one
	// is set.
	SSORedirectURL string
	SSOPostURL     string
	// Certificates are PEM-encoded signing certificates. Several are kept
	// so that an IdP key rollover does not break logins.
	Certificates []string
	// MetadataXML is the IdP metadata document the config was parsed from,
	// when there was one (pasted or fetched).
	MetadataXML string
}

// MetadataSource describes a connection whose IdP config is refreshed from a
// metadata URL.
type MetadataSource struct {
	URL string
	// RefreshedAt is the last successful fetch; LastError the last failure
	// (empty after a success). The last good IdPConfig is kept on failure.
	RefreshedAt   time.Time
	NextRefreshAt time.Time
	LastError     string
}

// AttributeMapping overrides the preset's choice of SAML attribute for each
// profile field. Empty fields keep the preset's default.
type AttributeMapping struct {
	Subject    string `json:"subject,omitempty"`
	Email      string `json:"email,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	Name       string `json:"name,omitempty"`
	Groups     string `json:"groups,omitempty"`
}

// ConnectionPolicy holds the per-connection switches that loosen or tighten
// SAML validation. The zero value is the strict default.
type ConnectionPolicy struct {
	// AllowIdPInitiated accepts unsolicited responses; they are routed
	// through the client's initiate_login_uri, never straight to a code.
	AllowIdPInitiated bool `json:"allow_idp_initiated,omitempty"`
	// SignAuthnRequests signs AuthnRequests with the SP key.
	SignAuthnRequests bool `json:"sign_authn_requests,omitempty"`
	// AllowSHA1 accepts RSA-SHA1 signatures and SHA-1 digests, for IdPs
	// that cannot be configured otherwise.
	AllowSHA1 bool `json:"allow_sha1,omitempty"`
	// NameIDFormat is requested in the AuthnRequest's NameIDPolicy. Empty
	// means the preset's default (persistent or emailAddress, never
	// transient).
	NameIDFormat string `json:"name_id_format,omitempty"`
	// RejectUnverifiedEmail refuses logins whose asserted email is not in a
	// verified domain of the tenant, instead of passing email_verified=false.
	RejectUnverifiedEmail bool `json:"reject_unverified_email,omitempty"`
}

// Client is a downstream OIDC relying party.
type Client struct {
	ID   string
	Name string
	// Public clients (SPAs, native apps) have no secret and must use PKCE.
	Public bool
	// SecretHash is HashSecret(secret); the secret itself is shown once.
	SecretHash string
	// PreviousSecretHash stays valid until PreviousSecretExpiresAt so that a
	// rotation does not break running deployments.
	PreviousSecretHash      string
	PreviousSecretExpiresAt time.Time
	RedirectURIs            []string
	PostLogoutRedirectURIs  []string
	InitiateLoginURI        string
	// AllowedTenants limits which tenants' users can obtain tokens. Empty
	// means any tenant. Deleting a tenant leaves its id in the list, where it
	// matches nothing: an allow-list must never widen by itself.
	AllowedTenants []string
	// Token lifetimes; zero means the broker default.
	AccessTokenTTL  time.Duration
	IDTokenTTL      time.Duration
	RefreshTokenTTL time.Duration
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// AllowsTenant reports whether users of tenantID may sign in to c.
func (c Client) AllowsTenant(tenantID string) bool {
	if len(c.AllowedTenants) == 0 {
		return true
	}
	for _, t := range c.AllowedTenants {
		if t == tenantID {
			return true
		}
	}
	return false
}

// IdentityStatus says whether an identity may sign in and use its tokens.
type IdentityStatus string

const (
	IdentityActive      IdentityStatus = "active"
	IdentityDeactivated IdentityStatus = "deactivated"
)

// Identity is a user as known through one connection. Subject is the
// broker's `sub`: opaque, random, and stable for (ConnectionID, IdPSubject).
// It never merges across connections or tenants, even for the same email.
type Identity struct {
	Subject       string
	TenantID      string
	ConnectionID  string
	IdPSubject    string
	Email         string
	EmailVerified bool
	Profile       Profile
	Status        IdentityStatus
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastLoginAt   time.Time
}

// Profile is the normalized result of one validated SAML assertion. The saml
// package produces it; the broker stores it on the Identity and the OIDC
// provider turns it into claims.
type Profile struct {
	// Subject is the stable IdP-side identifier the preset chose: the NameID
	// for most IdPs, Entra's objectidentifier when present.
	Subject      string   `json:"subject"`
	NameID       string   `json:"name_id"`
	NameIDFormat string   `json:"name_id_format,omitempty"`
	Email        string   `json:"email,omitempty"`
	GivenName    string   `json:"given_name,omitempty"`
	FamilyName   string   `json:"family_name,omitempty"`
	Name         string   `json:"name,omitempty"`
	Groups       []string `json:"groups,omitempty"`
	// GroupsOverage is set when the IdP said the user has more groups than
	// it would put in the assertion (Entra's groups.link claim). It is
	// surfaced rather than dropped so the app can fetch them.
	GroupsOverage string              `json:"groups_overage,omitempty"`
	Attributes    map[string][]string `json:"attributes,omitempty"`
	// Assertion facts, for the audit log and `auth_time`.
	Issuer       string    `json:"issuer,omitempty"`
	AssertionID  string    `json:"assertion_id,omitempty"`
	SessionIndex string    `json:"session_index,omitempty"`
	AuthnInstant time.Time `json:"authn_instant,omitempty"`
	AuthnContext string    `json:"authn_context,omitempty"`
}

// Page asks for one page of a cursor-paginated list: at most Limit items
// whose id sorts after After.
type Page struct {
	Limit int
	After string
}

// Page limits for every list in the directory.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
)

// Normalized returns p with Limit clamped to [1, MaxPageLimit].
func (p Page) Normalized() Page {
	switch {
	case p.Limit <= 0:
		p.Limit = DefaultPageLimit
	case p.Limit > MaxPageLimit:
		p.Limit = MaxPageLimit
	}
	return p
}

// Secret is a string that must never be logged or printed. Use Reveal to get
// at the value.
type Secret string

// Reveal returns the secret's value. Call it only where the value leaves the
// process on purpose (a response shown once, a hash, a cipher).
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string               { return "[redacted]" }
func (s Secret) GoString() string             { return "[redacted]" }
func (s Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (s Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Clock is the single source of time, so that tests can move it.
type Clock interface {
	Now() time.Time
}

// SystemClock reads the wall clock.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }
