-- OIDC provider state: logins (authorization requests in flight), token
-- grants with their access and refresh tokens, signing keys, and the sealed
-- secrets every replica must share. Owned by package oidcprovider; the SQL
-- lives in store/oidc*.go. The SQLite twin stores times as UTC unix
-- microseconds, JSON as TEXT and booleans as INTEGER.

-- A login lives from /authorize until its code is redeemed, and then as long
-- as the grant it produced (grant_id), so that a replayed code can still find
-- and revoke what it issued (RFC 6749 §4.1.2).
CREATE TABLE logins (
    id                      text PRIMARY KEY,
    client_id               text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    -- Display name of the client when the login started (hosted page only).
    client_name             text NOT NULL DEFAULT '',
    -- The validated authorization request (oidcprovider.AuthParams), with
    -- the two fields a statement checks as columns: the code is redeemed
    -- only with the same redirect_uri, and completion honours max_age.
    request                 jsonb NOT NULL,
    redirect_uri            text NOT NULL,
    max_age_seconds         bigint,
    -- S256 PKCE challenge ('' without PKCE); a column because the code is
    -- consumed only by a request whose verifier hashes to it.
    code_challenge          text NOT NULL DEFAULT '',
    -- SHA-256 of the browser-binding cookie set at /authorize: only that
    -- browser may collect the code at /authorize/callback.
    browser_hash            text NOT NULL DEFAULT '',
    -- `organization` and `connection` authorize parameters: when set, the
    -- login may only be routed there.
    hint_tenant_id          text NOT NULL DEFAULT '',
    hint_connection_id      text NOT NULL DEFAULT '',
    -- Route chosen on the hosted page, with the SAML AuthnRequest it sent.
    tenant_id               text REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id           text REFERENCES connections (id) ON DELETE CASCADE,
    saml_request_id         text,
    saml_request_expires_at timestamptz,
    saml_request_used_at    timestamptz,
    -- Completion: the identity and the claims snapshot the ID token is built
    -- from at the code exchange.
    done                    boolean NOT NULL DEFAULT false,
    subject                 text NOT NULL DEFAULT '',
    auth_time               timestamptz,
    claims                  jsonb,
    failed_at               timestamptz,
    failure                 text NOT NULL DEFAULT '',
    -- The authorization code (hash only), single use.
    code_hash               text,
    code_expires_at         timestamptz,
    code_used_at            timestamptz,
    code_replayed_at        timestamptz,
    grant_id                text,
    created_at              timestamptz NOT NULL,
    expires_at              timestamptz NOT NULL
);
-- InResponseTo finds its login on any replica; a request ID names one login.
CREATE UNIQUE INDEX logins_saml_request_idx ON logins (saml_request_id);
CREATE UNIQUE INDEX logins_code_idx ON logins (code_hash);
CREATE INDEX logins_expires_idx ON logins (expires_at);
CREATE INDEX logins_client_idx ON logins (client_id);
CREATE INDEX logins_tenant_idx ON logins (tenant_id);
CREATE INDEX logins_connection_idx ON logins (connection_id);

-- A grant is one family of tokens from one login: revoking it (code replay,
-- refresh-token reuse, deactivation, logout, revocation) kills every token
-- in it. expires_at is the end of the family (the refresh tokens' absolute
-- lifetime, or the access token's expiry without offline_access).
CREATE TABLE grants (
    id              text PRIMARY KEY,
    login_id        text NOT NULL,
    client_id       text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject         text NOT NULL REFERENCES identities (sub) ON DELETE CASCADE,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id   text NOT NULL,
    idp             text NOT NULL,
    scopes          jsonb NOT NULL,
    auth_time       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text NOT NULL DEFAULT ''
);
CREATE INDEX grants_subject_idx ON grants (subject, client_id);
CREATE INDEX grants_client_idx ON grants (client_id);
CREATE INDEX grants_tenant_idx ON grants (tenant_id);
CREATE INDEX grants_expires_idx ON grants (expires_at);

-- Opaque access tokens are op's encryption of "id:subject"; the row says
-- whether the token is still good.
CREATE TABLE access_tokens (
    id          text PRIMARY KEY,
    grant_id    text NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    scopes      jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX access_tokens_grant_idx ON access_tokens (grant_id);
CREATE INDEX access_tokens_expires_idx ON access_tokens (expires_at);

-- Only a hash of each refresh token is stored. used_at marks rotation: a
-- second use of the same token is reuse and revokes the grant.
CREATE TABLE refresh_tokens (
    token_hash  text PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    grant_id    text NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_grant_idx ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- generation is unique so that replicas racing to create the next key agree
-- on one winner. A key signs from active_from until its successor's
-- active_from (retire_at, set when the successor is created) and stays
-- published until expires_at, when every ID token it signed has expired.
-- The private key (PKCS #8) is sealed with the master key, AAD
-- "signing_keys.private_key:" || id.
CREATE TABLE signing_keys (
    id                  text PRIMARY KEY,
    generation          bigint NOT NULL UNIQUE,
    algorithm           text NOT NULL,
    private_key_sealed  text NOT NULL,
    public_key          text NOT NULL,
    created_at          timestamptz NOT NULL,
    active_from         timestamptz NOT NULL,
    retire_at           timestamptz,
    expires_at          timestamptz
);

-- Secrets every replica must share, sealed with the master key, AAD
-- "oidc_secrets.value:" || id. Today: op_crypto_key, the AES key that
-- encrypts authorization codes and opaque access tokens.
CREATE TABLE oidc_secrets (
    id            text PRIMARY KEY,
    value_sealed  text NOT NULL,
    created_at    timestamptz NOT NULL
);
