-- OIDC provider state: logins (authorization requests in flight), token
-- grants with their access and refresh tokens, and signing keys.

-- A login lives from /authorize until its code is redeemed (and a little
-- longer, so that a replayed code can still find and revoke what it issued).
CREATE TABLE logins (
    id                      TEXT PRIMARY KEY,
    client_id               TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    request                 TEXT NOT NULL,
    tenant_id               TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id           TEXT REFERENCES connections (id) ON DELETE CASCADE,
    saml_request_id         TEXT UNIQUE,
    saml_request_expires_at INTEGER,
    subject                 TEXT NOT NULL DEFAULT '',
    auth_time               INTEGER,
    done                    INTEGER NOT NULL DEFAULT 0,
    code_hash               TEXT UNIQUE,
    code_expires_at         INTEGER,
    code_used_at            INTEGER,
    created_at              INTEGER NOT NULL,
    expires_at              INTEGER NOT NULL
);
CREATE INDEX logins_expires_idx ON logins (expires_at);

-- A grant is one family of tokens from one login: revoking it (code replay,
-- refresh-token reuse, deactivation, logout) kills every token in it.
CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    login_id        TEXT NOT NULL,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL REFERENCES identities (sub) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scopes          TEXT NOT NULL,
    audience        TEXT NOT NULL,
    auth_time       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX grants_login_idx ON grants (login_id);
CREATE INDEX grants_subject_idx ON grants (subject);
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

-- Only a hash of each refresh token is stored. used_at marks rotation: a
-- second use of the same token is reuse and revokes the grant.
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    grant_id    TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_grant_idx ON refresh_tokens (grant_id);

-- generation is unique so that replicas racing to create the next key
-- agree on one winner.
CREATE TABLE signing_keys (
    id                  TEXT PRIMARY KEY,
    generation          INTEGER NOT NULL UNIQUE,
    algorithm           TEXT NOT NULL,
    private_key_sealed  TEXT NOT NULL,
    public_key          TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    active_from         INTEGER NOT NULL,
    retire_at           INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL
);
