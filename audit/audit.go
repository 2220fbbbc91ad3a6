// Package audit defines the audit trail: who did what, when, from where, and
// why it failed. It holds only types so that the store can persist events
// without importing the HTTP application that records them.
package audit

import (
	"context"
	"time"
)

// Type names what happened. The set is part of the external contract
// (GET /api/v1/audit-events?type=).
type Type string

const (
	LoginSucceeded      Type = "login.succeeded"
	LoginFailed         Type = "login.failed"
	TokenRevoked        Type = "token.revoked"
	IdentityDeactivated Type = "identity.deactivated"
	IdentityReactivated Type = "identity.reactivated"

	TenantCreated Type = "tenant.created"
	TenantUpdated Type = "tenant.updated"
	TenantDeleted Type = "tenant.deleted"
	DomainAdded   Type = "domain.added"
	DomainRemoved Type = "domain.removed"

	ConnectionCreated         Type = "connection.created"
	ConnectionUpdated         Type = "connection.updated"
	ConnectionDeleted         Type = "connection.deleted"
	ConnectionMetadataRefresh Type = "connection.metadata_refreshed"
	ConnectionMetadataFailed  Type = "connection.metadata_refresh_failed"

	ClientCreated       Type = "client.created"
	ClientUpdated       Type = "client.updated"
	ClientDeleted       Type = "client.deleted"
	ClientSecretRotated Type = "client.secret_rotated"

	PortalLinkCreated Type = "portal_link.created"
	PortalLinkOpened  Type = "portal_link.opened"

	SigningKeyRotated Type = "signing_key.rotated"
)

// Types lists every type, for validating filters.
var Types = []Type{
	LoginSucceeded, LoginFailed, TokenRevoked, IdentityDeactivated, IdentityReactivated,
	TenantCreated, TenantUpdated, TenantDeleted, DomainAdded, DomainRemoved,
	ConnectionCreated, ConnectionUpdated, ConnectionDeleted, ConnectionMetadataRefresh, ConnectionMetadataFailed,
	ClientCreated, ClientUpdated, ClientDeleted, ClientSecretRotated,
	PortalLinkCreated, PortalLinkOpened, SigningKeyRotated,
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool {
	for _, k := range Types {
		if t == k {
			return true
		}
	}
	return false
}

// Event is one entry of the audit trail. Reason is a machine-readable code
// (the SAML rejection reasons, OIDC error codes); Detail is operator text.
// Neither may carry secrets, tokens, assertions or signatures.
type Event struct {
	ID           string
	Time         time.Time
	Type         Type
	TenantID     string
	ConnectionID string
	ClientID     string
	Subject      string
	Email        string
	// Actor is who caused an admin change: "admin" (API token), "portal"
	// (tenant IT admin) or "system" (background jobs).
	Actor     string
	IP        string
	UserAgent string
	RequestID string
	Reason    string
	Detail    string
}

// Filter selects events for listing, newest first.
type Filter struct {
	TenantID string
	Type     Type
	Since    time.Time
	Until    time.Time
	Limit    int
	// After is the cursor returned as next_after: the list is newest first,
	// so it selects events whose id sorts before it.
	After string
}

// Log is where events go. Append must not fail the operation that is being
// recorded for a transient reason the caller cannot fix; callers log the
// error and move on.
type Log interface {
	AppendAudit(ctx context.Context, e Event) error
}
