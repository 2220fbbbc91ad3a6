package tenants

import (
	"context"
	"time"
)

// Store is what the Directory needs from persistence. The store package
// implements it for PostgreSQL and SQLite; both must pass store/storetest.
//
// Every method wraps ErrNotFound or ErrAlreadyExists (or returns a
// *DomainTakenError) where those apply. Update methods run the callback
// inside one transaction with the row locked, so a read-modify-write cannot
// lose a concurrent update; if the callback returns an error nothing is
// written and the error is returned unchanged.
type Store interface {
	TenantStore
	ConnectionStore
	ClientStore
	IdentityStore
}

// TenantStore persists tenants and their domains.
type TenantStore interface {
	// CreateTenant inserts t and all of t.Domains atomically: if one domain
	// is taken, nothing is written.
	CreateTenant(ctx context.Context, t Tenant) error
	Tenant(ctx context.Context, id string) (Tenant, error)
	ListTenants(ctx context.Context, p Page) (items []Tenant, next string, err error)
	UpdateTenant(ctx context.Context, id string, update func(*Tenant) error) (Tenant, error)
	// DeleteTenant removes the tenant with its domains, connections,
	// identities, logins and tokens.
	DeleteTenant(ctx context.Context, id string) error
	AddDomain(ctx context.Context, d Domain) error
	// Domain returns the owner record of a normalized domain.
	Domain(ctx context.Context, name string) (Domain, error)
	DeleteDomain(ctx context.Context, tenantID, domain string) error
	// RouteDomain answers the hosted page in one round trip: the domain, its
	// tenant and the tenant's active connections. ErrNotFound if no tenant
	// owns the domain.
	RouteDomain(ctx context.Context, domain string) (Route, error)
	// RouteTenant is RouteDomain for a tenant named directly (the
	// organization= hint); Route.Domain is empty.
	RouteTenant(ctx context.Context, tenantID string) (Route, error)
}

// ConnectionStore persists SAML connections.
type ConnectionStore interface {
	CreateConnection(ctx context.Context, c Connection) error
	Connection(ctx context.Context, id string) (Connection, error)
	// ListConnections lists a tenant's connections, or every connection
	// when tenantID is empty.
	ListConnections(ctx context.Context, tenantID string, p Page) (items []Connection, next string, err error)
	UpdateConnection(ctx context.Context, id string, update func(*Connection) error) (Connection, error)
	DeleteConnection(ctx context.Context, id string) error
	// ConnectionsDueForRefresh returns connections with a metadata URL whose
	// NextRefreshAt is at or before now, oldest first.
	ConnectionsDueForRefresh(ctx context.Context, now time.Time, limit int) ([]Connection, error)
}

// ClientStore persists OIDC clients.
type ClientStore interface {
	CreateClient(ctx context.Context, c Client) error
	Client(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context, p Page) (items []Client, next string, err error)
	UpdateClient(ctx context.Context, id string, update func(*Client) error) (Client, error)
	DeleteClient(ctx context.Context, id string) error
}

// IdentityStore persists identities seen through connections.
type IdentityStore interface {
	// UpsertIdentity inserts id, or, when (ConnectionID, IdPSubject) exists,
	// updates its email, profile, UpdatedAt and LastLoginAt and keeps its
	// Subject, CreatedAt and Status. It returns the stored identity.
	UpsertIdentity(ctx context.Context, id Identity) (Identity, error)
	Identity(ctx context.Context, sub string) (Identity, error)
	ListIdentities(ctx context.Context, tenantID string, p Page) (items []Identity, next string, err error)
	// SetIdentityStatus changes an identity's status; deactivating also
	// revokes every token grant of that subject in the same transaction.
	SetIdentityStatus(ctx context.Context, sub string, status IdentityStatus, now time.Time) (Identity, error)
}

// Route is where an email domain leads.
type Route struct {
	Tenant      Tenant // without Domains
	Domain      Domain
	Connections []ConnectionRef // active only, oldest first
}

// ConnectionRef is the part of a connection the hosted page needs to route
// and to validate a cached SAML service provider (by UpdatedAt).
type ConnectionRef struct {
	ID        string
	TenantID  string
	Name      string
	Preset    Preset
	Status    ConnectionStatus
	UpdatedAt time.Time
}

// DomainTakenError reports that a domain is already owned. It matches both
// ErrDomainTaken and ErrAlreadyExists.
type DomainTakenError struct {
	Domain string
}

func (e *DomainTakenError) Error() string {
	return "domain " + e.Domain + " is already claimed"
}

// Is lets errors.Is match the two sentinels this error stands for.
func (e *DomainTakenError) Is(target error) bool {
	return target == ErrDomainTaken || target == ErrAlreadyExists
}
