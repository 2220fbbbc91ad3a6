package oidcprovider

import (
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/ssobroker/ssobroker/tenants"
)

// Scopes beyond the standard ones. zitadel silently drops scopes a client
// does not allow (Client.IsScopeAllowed), so these must be allowed there.
const (
	ScopeGroups        = "groups"
	ScopeRawAttributes = "raw_attributes"
)

// supportedScopes are advertised in discovery; a request may ask for others,
// which are dropped.
var supportedScopes = []string{
	oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, ScopeGroups, ScopeRawAttributes, oidc.ScopeOfflineAccess,
}

// supportedClaims are advertised in discovery (api.md, "Claims").
var supportedClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "c_hash",
	"email", "email_verified", "name", "given_name", "family_name", "groups",
	"org_id", "connection_id", "idp", "raw_attributes",
}

// Claims by scope (api.md). The ID token and /userinfo carry the same
// claims, except raw_attributes, which is userinfo-only (it is every SAML
// attribute and can be large):
//
//	always (openid)  sub, org_id, connection_id, idp
//	email            email, email_verified
//	profile          name, given_name, family_name
//	groups           groups
//	raw_attributes   raw_attributes (userinfo only)
//
// zitadel would drop the profile and email claims from an ID token issued
// with an access token unless Client.IDTokenUserinfoClaimsAssertion is true.
// It is true for every client: most applications read email from the ID
// token and never call /userinfo, and the claims are the same ones the
// access token unlocks anyway.
func setUserinfo(info *oidc.UserInfo, c Claims, scopes []string, raw map[string][]string, userinfo bool) {
	info.Subject = c.Subject
	info.AppendClaims("org_id", c.TenantID)
	info.AppendClaims("connection_id", c.ConnectionID)
	info.AppendClaims("idp", c.IdP)
	for _, s := range scopes {
		switch s {
		case oidc.ScopeEmail:
			if c.Email != "" {
				info.Email = c.Email
				// Set as a claim: UserInfoEmail.EmailVerified is omitempty,
				// and an application must see an explicit false.
				info.AppendClaims("email_verified", c.EmailVerified)
			}
		case oidc.ScopeProfile:
			info.Name, info.GivenName, info.FamilyName = c.Name, c.GivenName, c.FamilyName
		case ScopeGroups:
			g := c.Groups
			if g == nil {
				g = []string{}
			}
			info.AppendClaims("groups", g)
		case ScopeRawAttributes:
			if userinfo {
				if raw == nil {
					raw = map[string][]string{}
				}
				info.AppendClaims("raw_attributes", raw)
			}
		}
	}
}

// claimsOf snapshots an identity's claims.
func claimsOf(id tenants.Identity, idp string) Claims {
	return Claims{
		Subject: id.Subject, TenantID: id.TenantID, ConnectionID: id.ConnectionID, IdP: idp,
		Email: id.Email, EmailVerified: id.EmailVerified,
		Name: id.Profile.Name, GivenName: id.Profile.GivenName, FamilyName: id.Profile.FamilyName,
		Groups: slices.Clone(id.Profile.Groups),
	}
}
