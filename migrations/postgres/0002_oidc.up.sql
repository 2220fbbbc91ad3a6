-- OIDC provider state: logins (authorization requests in flight), token
-- grants with their access and refresh tokens, and signing keys.

-- A login lives from /authorize until its code is redeemed (and a little
-- longer, so that a replayed code can still find and revoke what it issued).
CREATE TABLE logins (
    id                      text PRIMARY KEY,
    client_id               text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    request                 jsonb NOT NULL,
    tenant_id               text REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id           text REFERENCES connections (id) ON DELETE CASCADE,
    saml_request_id         text UNIQUE,
    saml_request_expires_at timestamptz,
    subject                 text NOT NULL DEFAULT '',
    auth_time               timestamptz,
    done                    boolean NOT NULL DEFAULT false,
    code_hash               text UNIQUE,
    code_expires_at         timestamptz,
    code_used_at            timestamptz,
    created_at              timestamptz NOT NULL,
    expires_at              timestamptz NOT NULL
);
CREATE INDEX logins_expires_idx ON logins (expires_at);

-- A grant is one family of tokens from one login: revoking it (code replay,
-- refresh-token reuse, deactivation, logout) kills every token in it.
CREATE TABLE grants (
    id              text PRIMARY KEY,
    login_id        text NOT NULL,
    client_id       text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject         text NOT NULL REFERENCES identities (sub) ON DELETE CASCADE,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scopes          jsonb NOT NULL,
    audience        jsonb NOT NULL,
    auth_time       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text NOT NULL DEFAULT ''
);
CREATE INDEX grants_login_idx ON grants (login_id);
CREATE INDEX grants_subject_idx ON grants (subject);
CREATE INDEX grants_expires_idx ON grants (expires_at);

CREATE TABLE access_tokens (
    id          text PRIMARY KEY,
    grant_id    text NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    scopes      jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX access_tokens_grant_idx ON access_tokens (grant_id);

-- Only a hash of each refresh token is stored. used_at marks rotation: a
-- second use of the same token is reuse and revokes the grant.
CREATE TABLE refresh_tokens (
    token_hash  text PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    grant_id    text NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    scopes      jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_grant_idx ON refresh_tokens (grant_id);

-- generation is unique so that replicas racing to create the next key
-- agree on one winner.
CREATE TABLE signing_keys (
    id                  text PRIMARY KEY,
    generation          bigint NOT NULL UNIQUE,
    algorithm           text NOT NULL,
    private_key_sealed  text NOT NULL,
    public_key          text NOT NULL,
    created_at          timestamptz NOT NULL,
    active_from         timestamptz NOT NULL,
    retire_at           timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL
);
