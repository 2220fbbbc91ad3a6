// Package tenants owns the directory of a multi-tenant SSO broker: tenants,
// the email domains they own, their SAML connections, the OIDC clients that
// sit downstream, and the identities seen through each connection.
//
// It validates and normalizes everything that enters the directory (domain
// names, redirect URIs, client secrets) and answers the one question the
// hosted login page asks on every request:
//
//	email -> verified domain -> tenant -> active connections
//
// Persistence is behind the small interfaces declared in store.go; the store
// package implements them for PostgreSQL and SQLite. Types that cross package
// boundaries (Profile, Connection) live here so that saml and oidcprovider
// never import each other.
package tenants
