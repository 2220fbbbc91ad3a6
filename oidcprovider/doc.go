// Package oidcprovider is the broker's OpenID Provider: zitadel's op
// (github.com/zitadel/oidc/v3) as the protocol engine, over a small Store
// that package store implements, plus the login API that the broker's
// hosted page and SAML ACS drive.
//
// Flow of one login, and who calls what:
//
//	app      GET  /authorize              op validates; CreateAuthRequest stores a login   -> 302 LoginURL(id)
//	broker   Login(id)                    hosted page reads hints (login_hint, organization, ...)
//	broker   StartSAML(id, tenant, conn, AuthnRequest ID)                                   -> IdP
//	broker   PeekSAMLRequest(conn, InResponseTo), then, once the response is valid,
//	         CheckAuthTime (before upserting the identity) and
//	         LoginBySAMLRequest(conn, InResponseTo)  ACS consumes the request once
//	broker   CompleteLogin(id, identity, conn, authTime)                                    -> 302 callback URL
//	         (or FailLogin(id, code, description)                                           -> 302 redirect_uri?error)
//	browser  GET  /authorize/callback?id= code issued once, to the browser that started   -> 302 redirect_uri?code&state
//	app      POST /oauth/token            client authenticated; code redeemed and grant created in one statement; one signature
//	app      GET  /userinfo               token, grant and identity checked, claims by scope
//
// Routes (Handler, mounted at "/"; everything else is 404):
//
//	GET       /.well-known/openid-configuration   discovery (what we really support)
//	GET, POST /authorize                          bounded; organization, connection, domain_hint captured
//	GET       /authorize/callback                 ours, not zitadel's (see Provider.callback)
//	POST      /oauth/token                        authorization_code, refresh_token
//	POST      /oauth/introspect                   client_secret_basic
//	GET, POST /userinfo
//	POST      /revoke
//	GET, POST /end_session
//	GET       /keys                               JWKS: current, next and recently retired keys
//	GET       /logged-out                         default post-logout page
//
// State: every piece of a login and its tokens lives in the Store, so any
// replica serves any step. Codes and refresh tokens are stored as SHA-256
// hashes; opaque access tokens are op's AES-GCM encryption of "id:subject"
// under a key shared through the Store (sealed with the master key). What
// this package keeps in memory is derived and short-lived: signing keys
// (re-read every KeyCacheTTL) and, within one request, the client.
//
// Each zitadel trap (see docs/libraries.md §3) is answered where it bites;
// the comments there name it.
package oidcprovider
