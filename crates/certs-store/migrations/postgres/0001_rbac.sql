-- certs 1: roles, their permission grants, API keys and who holds which
-- role (certctl's RBAC, docs/certificates.md). Default roles are seeded
-- by the application at start from the catalogue in attest-certs-domain.
CREATE TABLE certs_roles (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    description  TEXT    NOT NULL DEFAULT '',
    -- 1 for the seeded roles, which the API refuses to change.
    is_default   INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);

CREATE TABLE certs_role_permissions (
    role_id      TEXT    NOT NULL REFERENCES certs_roles (id) ON DELETE CASCADE,
    permission   TEXT    NOT NULL,
    -- global | profile | issuer
    scope_type   TEXT    NOT NULL,
    -- '' for global scope, the profile or issuer id otherwise.
    scope_id     TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (role_id, permission, scope_type, scope_id)
);

-- An API key is an actor (actor_type APIKey) named by actor_id; only the
-- SHA-256 of its value is stored.
CREATE TABLE certs_api_keys (
    id           TEXT    PRIMARY KEY,
    actor_id     TEXT    NOT NULL UNIQUE,
    key_sha256   TEXT    NOT NULL UNIQUE,
    created_at   TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    revoked_at   TEXT    NULL,
    revoked_by   TEXT    NULL
);

CREATE TABLE certs_actor_roles (
    actor_id     TEXT    NOT NULL,
    actor_type   TEXT    NOT NULL,
    role_id      TEXT    NOT NULL REFERENCES certs_roles (id) ON DELETE RESTRICT,
    granted_at   TEXT    NOT NULL,
    granted_by   TEXT    NOT NULL,
    PRIMARY KEY (actor_id, actor_type, role_id)
);
CREATE INDEX certs_actor_roles_role ON certs_actor_roles (role_id);

-- The day-0 bootstrap is one-shot: this row exists once it was used.
CREATE TABLE certs_bootstrap (
    singleton    INTEGER PRIMARY KEY CHECK (singleton = 1),
    consumed_at  TEXT    NOT NULL,
    actor_id     TEXT    NOT NULL
);
