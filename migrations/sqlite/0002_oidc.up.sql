-- OIDC provider state: logins (authorization requests in flight), token
-- grants with their access and refresh tokens, signing keys, and the sealed
-- secrets every replica must share. Twin of postgres/0002_oidc.up.sql (see
-- the comments there): times are UTC unix microseconds, JSON is TEXT,
-- booleans are INTEGER.

CREATE TABLE logins (
    id                      TEXT PRIMARY KEY,
    client_id               TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    client_name             TEXT NOT NULL DEFAULT '',
    request                 TEXT NOT NULL,
    redirect_uri            TEXT NOT NULL,
    max_age_seconds         INTEGER,
    code_challenge          TEXT NOT NULL DEFAULT '',
    browser_hash            TEXT NOT NULL DEFAULT '',
    hint_tenant_id          TEXT NOT NULL DEFAULT '',
    hint_connection_id      TEXT NOT NULL DEFAULT '',
    tenant_id               TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id           TEXT REFERENCES connections (id) ON DELETE CASCADE,
    saml_request_id         TEXT,
    saml_request_expires_at INTEGER,
    saml_request_used_at    INTEGER,
    done                    INTEGER NOT NULL DEFAULT 0,
    subject                 TEXT NOT NULL DEFAULT '',
    auth_time               INTEGER,
    claims                  TEXT,
    failed_at               INTEGER,
    failure                 TEXT NOT NULL DEFAULT '',
    code_hash               TEXT,
    code_expires_at         INTEGER,
    code_used_at            INTEGER,
    code_replayed_at        INTEGER,
    grant_id                TEXT,
    created_at              INTEGER NOT NULL,
    expires_at              INTEGER NOT NULL
);
CREATE UNIQUE INDEX logins_saml_request_idx ON logins (saml_request_id);
CREATE UNIQUE INDEX logins_code_idx ON logins (code_hash);
CREATE INDEX logins_expires_idx ON logins (expires_at);
CREATE INDEX logins_client_idx ON logins (client_id);
CREATE INDEX logins_tenant_idx ON logins (tenant_id);
CREATE INDEX logins_connection_idx ON logins (connection_id);

CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    login_id        TEXT NOT NULL,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL REFERENCES identities (sub) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id   TEXT NOT NULL,
    idp             TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    auth_time       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX grants_subject_idx ON grants (subject, client_id);
CREATE INDEX grants_client_idx ON grants (client_id);
CREATE INDEX grants_tenant_idx ON grants (tenant_id);
CREATE INDEX grants_expires_idx ON grants (expires_at);

CREATE TABLE access_tokens (
    id          TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX access_tokens_grant_idx ON access_tokens (grant_id);
CREATE INDEX access_tokens_expires_idx ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    grant_id    TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_grant_idx ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    id                  TEXT PRIMARY KEY,
    generation          INTEGER NOT NULL UNIQUE,
    algorithm           TEXT NOT NULL,
    private_key_sealed  TEXT NOT NULL,
    public_key          TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    active_from         INTEGER NOT NULL,
    retire_at           INTEGER,
    expires_at          INTEGER
);

CREATE TABLE oidc_secrets (
    id            TEXT PRIMARY KEY,
    value_sealed  TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
