-- Directory: tenants, domains, SAML connections, OIDC clients, identities,
-- plus the audit trail, the SAML replay cache and job leases.
-- Times are UTC unix microseconds (INTEGER); the PostgreSQL twin uses
-- timestamptz. JSON columns are TEXT. Booleans are 0/1.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- The primary key makes a domain unique across all tenants, so two
-- concurrent claims cannot both win, and routing an email is one index probe.
CREATE TABLE domains (
    domain      TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    verified    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX domains_tenant_idx ON domains (tenant_id);

CREATE TABLE connections (
    id                      TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    status                  TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    preset                  TEXT NOT NULL,
    idp_entity_id           TEXT NOT NULL,
    idp_sso_redirect_url    TEXT NOT NULL DEFAULT '',
    idp_sso_post_url        TEXT NOT NULL DEFAULT '',
    idp_certificates        TEXT NOT NULL,
    idp_metadata_xml        TEXT NOT NULL DEFAULT '',
    metadata_url            TEXT NOT NULL DEFAULT '',
    metadata_refreshed_at   INTEGER,
    metadata_next_refresh_at INTEGER,
    metadata_last_error     TEXT NOT NULL DEFAULT '',
    attribute_mapping       TEXT NOT NULL,
    policy                  TEXT NOT NULL,
    -- Sealed with the master key (AES-GCM, key id inside the blob).
    sp_key_sealed           TEXT NOT NULL,
    sp_certificate          TEXT NOT NULL,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    -- Lists a tenant's connections in id order, and lets identities
    -- reference (tenant_id, id) so that an identity can never name a
    -- connection of another tenant.
    UNIQUE (tenant_id, id)
);
CREATE INDEX connections_refresh_idx ON connections (metadata_next_refresh_at)
    WHERE metadata_url <> '';

CREATE TABLE clients (
    id                          TEXT PRIMARY KEY,
    name                        TEXT NOT NULL,
    public                      INTEGER NOT NULL,
    secret_hash                 TEXT NOT NULL DEFAULT '',
    previous_secret_hash        TEXT NOT NULL DEFAULT '',
    previous_secret_expires_at  INTEGER,
    redirect_uris               TEXT NOT NULL,
    post_logout_redirect_uris   TEXT NOT NULL,
    initiate_login_uri          TEXT NOT NULL DEFAULT '',
    allowed_tenants             TEXT NOT NULL,
    access_token_ttl_seconds    INTEGER NOT NULL DEFAULT 0,
    id_token_ttl_seconds        INTEGER NOT NULL DEFAULT 0,
    refresh_token_ttl_seconds   INTEGER NOT NULL DEFAULT 0,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL
);

-- sub is random and opaque; (connection_id, idp_subject) is the natural key
-- that keeps it stable across logins and separate across tenants.
CREATE TABLE identities (
    sub             TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    connection_id   TEXT NOT NULL,
    idp_subject     TEXT NOT NULL,
    email           TEXT NOT NULL DEFAULT '',
    email_verified  INTEGER NOT NULL DEFAULT 0,
    profile         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'deactivated')),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_login_at   INTEGER NOT NULL,
    UNIQUE (connection_id, idp_subject),
    -- One composite key instead of two single ones: the tenant is the
    -- connection's tenant by construction (cross-tenant isolation in the
    -- schema), tenant deletion still cascades through connections, and a
    -- new identity costs one foreign-key probe instead of two.
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX identities_tenant_idx ON identities (tenant_id, sub);

-- Assertion IDs accepted once, kept until the assertion expires. Shared by
-- all replicas through the primary key.
CREATE TABLE saml_assertions (
    connection_id   TEXT NOT NULL,
    assertion_id    TEXT NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (connection_id, assertion_id)
);
CREATE INDEX saml_assertions_expires_idx ON saml_assertions (expires_at);

-- Audit events outlive the tenants they mention: no foreign keys.
CREATE TABLE audit_events (
    id              TEXT PRIMARY KEY,
    time            INTEGER NOT NULL,
    type            TEXT NOT NULL,
    tenant_id       TEXT NOT NULL DEFAULT '',
    connection_id   TEXT NOT NULL DEFAULT '',
    client_id       TEXT NOT NULL DEFAULT '',
    subject         TEXT NOT NULL DEFAULT '',
    email           TEXT NOT NULL DEFAULT '',
    actor           TEXT NOT NULL DEFAULT '',
    ip              TEXT NOT NULL DEFAULT '',
    user_agent      TEXT NOT NULL DEFAULT '',
    request_id      TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, id);
CREATE INDEX audit_events_type_idx ON audit_events (type, id);
CREATE INDEX audit_events_time_idx ON audit_events (time);

-- One-time links for a tenant's IT admin, and the sessions they open.
CREATE TABLE portal_links (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    opened_at   INTEGER
);
CREATE TABLE portal_sessions (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
-- Indexes on tenant_id keep the cascade of a tenant deletion off a full
-- scan; those on expires_at serve garbage collection.
CREATE INDEX portal_links_tenant_idx ON portal_links (tenant_id);
CREATE INDEX portal_links_expires_idx ON portal_links (expires_at);
CREATE INDEX portal_sessions_tenant_idx ON portal_sessions (tenant_id);
CREATE INDEX portal_sessions_expires_idx ON portal_sessions (expires_at);

-- Leases let exactly one replica run a periodic job (metadata refresh,
-- garbage collection, key rotation) without a coordinator.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
