-- Directory: tenants, domains, SAML connections, OIDC clients, identities,
-- plus the audit trail, the SAML replay cache and job leases.
-- Times are timestamptz; the SQLite twin stores UTC unix microseconds.

CREATE TABLE tenants (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- The primary key makes a domain unique across all tenants, so two
-- concurrent claims cannot both win, and routing an email is one index probe.
CREATE TABLE domains (
    domain      text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    verified    boolean NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX domains_tenant_idx ON domains (tenant_id);

CREATE TABLE connections (
    id                      text PRIMARY KEY,
    tenant_id               text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                    text NOT NULL,
    status                  text NOT NULL CHECK (status IN ('active', 'inactive')),
    preset                  text NOT NULL,
    idp_entity_id           text NOT NULL,
    idp_sso_redirect_url    text NOT NULL DEFAULT '',
    idp_sso_post_url        text NOT NULL DEFAULT '',
    idp_certificates        jsonb NOT NULL,
    idp_metadata_xml        text NOT NULL DEFAULT '',
    metadata_url            text NOT NULL DEFAULT '',
    metadata_refreshed_at   timestamptz,
    metadata_next_refresh_at timestamptz,
    metadata_last_error     text NOT NULL DEFAULT '',
    attribute_mapping       jsonb NOT NULL,
    policy                  jsonb NOT NULL,
    -- Sealed with the master key (AES-GCM, key id inside the blob).
    sp_key_sealed           text NOT NULL,
    sp_certificate          text NOT NULL,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    -- Lists a tenant's connections in id order, and lets identities
    -- reference (tenant_id, id) so that an identity can never name a
    -- connection of another tenant.
    UNIQUE (tenant_id, id)
);
CREATE INDEX connections_refresh_idx ON connections (metadata_next_refresh_at)
    WHERE metadata_url <> '';

CREATE TABLE clients (
    id                          text PRIMARY KEY,
    name                        text NOT NULL,
    public                      boolean NOT NULL,
    secret_hash                 text NOT NULL DEFAULT '',
    previous_secret_hash        text NOT NULL DEFAULT '',
    previous_secret_expires_at  timestamptz,
    redirect_uris               jsonb NOT NULL,
    post_logout_redirect_uris   jsonb NOT NULL,
    initiate_login_uri          text NOT NULL DEFAULT '',
    allowed_tenants             jsonb NOT NULL,
    access_token_ttl_seconds    bigint NOT NULL DEFAULT 0,
    id_token_ttl_seconds        bigint NOT NULL DEFAULT 0,
    refresh_token_ttl_seconds   bigint NOT NULL DEFAULT 0,
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL
);

-- sub is random and opaque; (connection_id, idp_subject) is the natural key
-- that keeps it stable across logins and separate across tenants.
CREATE TABLE identities (
    sub             text PRIMARY KEY,
    tenant_id       text NOT NULL,
    connection_id   text NOT NULL,
    idp_subject     text NOT NULL,
    email           text NOT NULL DEFAULT '',
    email_verified  boolean NOT NULL DEFAULT false,
    profile         jsonb NOT NULL,
    status          text NOT NULL CHECK (status IN ('active', 'deactivated')),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    last_login_at   timestamptz NOT NULL,
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
    connection_id   text NOT NULL,
    assertion_id    text NOT NULL,
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (connection_id, assertion_id)
);
CREATE INDEX saml_assertions_expires_idx ON saml_assertions (expires_at);

-- Audit events outlive the tenants they mention: no foreign keys.
CREATE TABLE audit_events (
    id              text PRIMARY KEY,
    time            timestamptz NOT NULL,
    type            text NOT NULL,
    tenant_id       text NOT NULL DEFAULT '',
    connection_id   text NOT NULL DEFAULT '',
    client_id       text NOT NULL DEFAULT '',
    subject         text NOT NULL DEFAULT '',
    email           text NOT NULL DEFAULT '',
    actor           text NOT NULL DEFAULT '',
    ip              text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT '',
    request_id      text NOT NULL DEFAULT '',
    reason          text NOT NULL DEFAULT '',
    detail          text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, id);
CREATE INDEX audit_events_type_idx ON audit_events (type, id);
CREATE INDEX audit_events_time_idx ON audit_events (time);

-- One-time links for a tenant's IT admin, and the sessions they open.
CREATE TABLE portal_links (
    token_hash  text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    opened_at   timestamptz
);
CREATE TABLE portal_sessions (
    token_hash  text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
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
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL
);
