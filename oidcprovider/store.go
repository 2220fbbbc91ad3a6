package oidcprovider

import (
	"context"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// Store is the persistence the provider needs. Package store implements it
// for PostgreSQL and SQLite; store/storetest.RunOIDC is its conformance
// suite, run against both.
//
// Conventions: a missing row is tenants.ErrNotFound; a conditional
// transition whose preconditions do not hold (the login is done, expired,
// routed elsewhere, ...) is tenants.ErrConflict, and the provider reads the
// row again to tell the caller which precondition failed. Every "now" is
// the provider's clock, so tests can move time. Errors are wrapped with the
// operation and ids and never carry secrets: codes and tokens reach the
// store only as SHA-256 hashes.
type Store interface {
	// Client returns a client of the tenant directory (the same method as
	// tenants.ClientStore).
	Client(ctx context.Context, id string) (tenants.Client, error)

	// CreateLogin inserts a new login (ErrAlreadyExists if the id is taken).
	CreateLogin(ctx context.Context, l LoginRecord) error
	// Login returns a login whatever its state.
	Login(ctx context.Context, id string) (LoginRecord, error)
	// RouteLogin records the route chosen on the hosted page and the SAML
	// AuthnRequest sent for it, replacing an earlier route whose request was
	// not consumed. Preconditions: not done, not failed, expires after now,
	// current SAML request (if any) not consumed, the route matches the
	// login's organization/connection hints, the connection belongs to the
	// tenant, and the client (read now, not at /authorize) allows the tenant.
	RouteLogin(ctx context.Context, id string, r LoginRoute, now time.Time) error
	// ConsumeSAMLRequest atomically marks the SAML request of a login used
	// and returns the login: the request must be unused, the login routed
	// to connectionID, not done or failed, and neither it nor the request
	// expired. Of two concurrent calls exactly one succeeds. ErrNotFound
	// when no login has that request on that connection, ErrConflict when
	// one has but a precondition fails.
	ConsumeSAMLRequest(ctx context.Context, connectionID, samlRequestID string, now time.Time) (LoginRecord, error)
	// LoginBySAMLRequest returns the login routed to connectionID with that
	// SAML request, whatever its state.
	LoginBySAMLRequest(ctx context.Context, connectionID, samlRequestID string) (LoginRecord, error)
	// CompleteLogin marks a login done for an identity. Preconditions: not
	// done or failed, expires after now, routed to c.TenantID and
	// c.ConnectionID with its SAML request consumed, fresh enough for its
	// max_age (see LoginCompletion), and the client (read now) allows the
	// tenant.
	CompleteLogin(ctx context.Context, id string, c LoginCompletion, now time.Time) error
	// FailLogin marks a pending login failed with an OAuth error code and
	// returns it. Preconditions: not done, not failed.
	FailLogin(ctx context.Context, id, failure string, now time.Time) (LoginRecord, error)
	// SaveCode attaches the hash of the login's authorization code and
	// returns the login. A login gets at most one code: preconditions are
	// done, no code yet, expires after now, and browserHash equal to the
	// login's (pass the stored value when the browser is not checked).
	SaveCode(ctx context.Context, loginID, codeHash, browserHash string, expiresAt, now time.Time) (LoginRecord, error)
	// RedeemCode redeems a code once and, in the same atomic step, creates
	// the grant it yields with its first access token and (when the login's
	// scopes include offline_access) its first refresh token. The code must
	// be unused and unexpired, issued to r.ClientID for r.RedirectURI, and,
	// when the login has a PKCE challenge, presented with a verifier whose
	// S256 hash is r.CodeChallenge ("" for none); the identity must be
	// active and the client (read now) must allow the login's tenant. Of
	// two concurrent calls exactly one succeeds. It returns the login and
	// the grant.
	//
	// If the code had already been redeemed, RedeemCode revokes the grant it
	// yielded and returns ErrCodeReplayed (RFC 6749 §4.1.2). If the code is
	// valid but the identity is deactivated it returns ErrIdentityInactive,
	// and if the client no longer allows the tenant ErrTenantNotAllowed;
	// neither spends the code. Anything else is ErrNotFound.
	RedeemCode(ctx context.Context, r CodeRedemption, now time.Time) (LoginRecord, Grant, error)

	// AccessToken returns an access token with its grant and the grant's
	// identity as they are now.
	AccessToken(ctx context.Context, id string) (TokenState, error)
	// RefreshToken returns the refresh token with this hash, its grant and
	// identity.
	RefreshToken(ctx context.Context, tokenHash string) (TokenState, error)
	// RotateRefreshToken marks the refresh token oldHash used and inserts the
	// next access and refresh tokens of its grant, atomically. The old token
	// must be unused and unexpired, and its grant live; otherwise (a
	// concurrent rotation won, or the grant was revoked) it returns
	// ErrRefreshTokenReused and leaves everything unchanged.
	RotateRefreshToken(ctx context.Context, oldHash string, at AccessToken, rt RefreshToken, now time.Time) error
	// RevokeGrant revokes a grant and so every token in it. Revoking a
	// revoked grant keeps the first reason; ErrNotFound if there is none.
	RevokeGrant(ctx context.Context, grantID, reason string, now time.Time) error
	// RevokeAccessToken revokes one access token.
	RevokeAccessToken(ctx context.Context, id string, now time.Time) error
	// RevokeGrants revokes every live grant of subject for clientID (both
	// required) and returns how many it revoked.
	RevokeGrants(ctx context.Context, subject, clientID, reason string, now time.Time) (int64, error)

	// SigningKeys returns every stored signing key, oldest generation
	// first, with its private key opened.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// CreateSigningKey inserts k (its private key sealed at rest with AAD
	// "signing_keys.private_key:"+k.ID) and, in the same transaction, sets
	// the previous generation's RetireAt to k.ActiveFrom and its ExpiresAt
	// to prevExpiresAt. ErrAlreadyExists when the generation exists: another
	// replica created it first.
	CreateSigningKey(ctx context.Context, k SigningKey, prevExpiresAt time.Time) error
	// Secret returns the shared secret named id, first storing candidate
	// (sealed, AAD "oidc_secrets.value:"+id) if there is none yet. Replicas
	// racing to create it all get the winner's value.
	Secret(ctx context.Context, id string, candidate []byte, now time.Time) ([]byte, error)

	// DeleteExpiredOIDC deletes logins, grants (with their tokens), access
	// and refresh tokens and signing keys whose expiry is at or before now,
	// and returns how many rows it deleted.
	DeleteExpiredOIDC(ctx context.Context, now time.Time) (int64, error)
	// Health reports whether the store can serve requests.
	Health(ctx context.Context) error
}

// LoginRecord is a login as stored.
type LoginRecord struct {
	ID         string
	ClientID   string
	ClientName string
	Request    AuthParams
	// CodeChallenge is the S256 PKCE challenge, "" without PKCE.
	CodeChallenge string
	// BrowserHash is the SHA-256 of the browser-binding cookie.
	BrowserHash      string
	HintTenantID     string
	HintConnectionID string

	TenantID             string
	ConnectionID         string
	SAMLRequestID        string
	SAMLRequestExpiresAt time.Time
	SAMLRequestUsedAt    time.Time

	Done     bool
	Subject  string
	AuthTime time.Time
	Claims   Claims
	FailedAt time.Time
	Failure  string

	CodeIssued     bool
	CodeExpiresAt  time.Time
	CodeUsedAt     time.Time
	CodeReplayedAt time.Time
	GrantID        string

	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuthParams is the validated authorization request a login keeps. It is
// stored as JSON, so field names are part of the schema.
type AuthParams struct {
	Scopes       []string `json:"scopes"`
	ResponseType string   `json:"response_type"`
	ResponseMode string   `json:"response_mode,omitempty"`
	RedirectURI  string   `json:"redirect_uri"`
	State        string   `json:"state,omitempty"`
	Nonce        string   `json:"nonce,omitempty"`
	Prompt       []string `json:"prompt,omitempty"`
	// MaxAgeSeconds is max_age, nil when absent; prompt=login sets it to 0.
	MaxAgeSeconds *int64   `json:"max_age,omitempty"`
	UILocales     []string `json:"ui_locales,omitempty"`
	LoginHint     string   `json:"login_hint,omitempty"`
	DomainHint    string   `json:"domain_hint,omitempty"`
	ACRValues     []string `json:"acr_values,omitempty"`
	// IDTokenHintSubject is the sub of a valid id_token_hint.
	IDTokenHintSubject string `json:"id_token_hint_sub,omitempty"`
}

// LoginRoute is where the hosted page sent a login.
type LoginRoute struct {
	TenantID             string
	ConnectionID         string
	SAMLRequestID        string
	SAMLRequestExpiresAt time.Time
}

// LoginCompletion is the outcome of a successful SAML login.
type LoginCompletion struct {
	TenantID     string
	ConnectionID string
	Subject      string
	AuthTime     time.Time
	Claims       Claims
	// Freshness the application asked for, checked in the same statement:
	// with max_age 0 (prompt=login) the login must have been created at or
	// before AuthTimeLatest (AuthTime plus the tolerated skew); with
	// max_age > 0 it must be at least AuthAgeSeconds (now minus AuthTime
	// minus the skew, rounded up).
	AuthTimeLatest time.Time
	AuthAgeSeconds int64
}

// CodeRedemption is a token request for a code, with everything the grant
// needs that does not come from the login row. Expiries are given for both
// outcomes because whether the grant is offline (has refresh tokens) is
// read from the login's scopes in the same statement.
type CodeRedemption struct {
	CodeHash      string
	ClientID      string
	CodeChallenge string
	RedirectURI   string

	GrantID       string
	AccessTokenID string
	// Without offline_access the grant ends with its access token.
	AccessExpiresAt time.Time
	// With offline_access the grant ends at RefreshExpiresAt, and the
	// access token at OfflineAccessExpiresAt (the earlier of the two).
	OfflineAccessExpiresAt time.Time
	RefreshTokenID         string
	RefreshTokenHash       string
	RefreshExpiresAt       time.Time
}

// Claims is the snapshot of an identity that ID tokens are built from at the
// code exchange, so that the exchange needs no identity read. It is stored
// as JSON, so field names are part of the schema.
type Claims struct {
	Subject       string   `json:"sub"`
	TenantID      string   `json:"org_id"`
	ConnectionID  string   `json:"connection_id"`
	IdP           string   `json:"idp"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name,omitempty"`
	GivenName     string   `json:"given_name,omitempty"`
	FamilyName    string   `json:"family_name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

// Grant is one family of tokens issued from one login.
type Grant struct {
	ID           string
	LoginID      string
	ClientID     string
	Subject      string
	TenantID     string
	ConnectionID string
	IdP          string
	Scopes       []string
	AuthTime     time.Time
	CreatedAt    time.Time
	// ExpiresAt bounds every token of the grant.
	ExpiresAt     time.Time
	RevokedAt     time.Time
	RevokedReason string
}

// AccessToken is an opaque access token as stored: the token itself is op's
// encryption of ID+":"+subject and is never stored.
type AccessToken struct {
	ID        string
	GrantID   string
	Scopes    []string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time
}

// RefreshToken is a refresh token as stored: only its hash.
type RefreshToken struct {
	ID        string
	Hash      string
	GrantID   string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// TokenState is a token with its grant and the grant's identity, read in one
// query. Exactly one of Access and Refresh is set.
type TokenState struct {
	Access   *AccessToken
	Refresh  *RefreshToken
	Grant    Grant
	Identity tenants.Identity
}

// SigningKey is a key pair that signs ID tokens. PrivateKey is PKCS #8 DER
// and PublicKey PKIX DER.
type SigningKey struct {
	ID         string
	Generation int64
	Algorithm  string
	PrivateKey []byte
	PublicKey  []byte
	CreatedAt  time.Time
	// ActiveFrom is when the key starts signing; it is published before.
	ActiveFrom time.Time
	// RetireAt is when it stops signing (its successor's ActiveFrom) and
	// ExpiresAt when it leaves the JWKS; both zero while it has no
	// successor.
	RetireAt  time.Time
	ExpiresAt time.Time
}
