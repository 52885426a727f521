-- certs 2: the catalogue around certificates: teams, owners, certificate
-- profiles and renewal policies. Lists (JSON arrays) are stored as JSON
-- text; booleans as 0/1 on both backends.
CREATE TABLE certs_teams (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    description  TEXT    NOT NULL DEFAULT '',
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);

CREATE TABLE certs_owners (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    team_id      TEXT    NULL REFERENCES certs_teams (id) ON DELETE RESTRICT,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);
CREATE INDEX certs_owners_team ON certs_owners (team_id);

CREATE TABLE certs_profiles (
    id                      TEXT    PRIMARY KEY,
    name                    TEXT    NOT NULL UNIQUE,
    description             TEXT    NOT NULL DEFAULT '',
    -- [{"algorithm": "ECDSA", "min_size": 256}, ...]
    allowed_key_algorithms  TEXT    NOT NULL,
    max_ttl_seconds         BIGINT  NOT NULL,
    allowed_ekus            TEXT    NOT NULL,
    required_san_patterns   TEXT    NOT NULL,
    spiffe_uri_pattern      TEXT    NOT NULL DEFAULT '',
    allow_short_lived       INTEGER NOT NULL DEFAULT 0,
    enabled                 INTEGER NOT NULL DEFAULT 1,
    created_at              TEXT    NOT NULL,
    updated_at              TEXT    NOT NULL
);

CREATE TABLE certs_renewal_policies (
    id                      TEXT    PRIMARY KEY,
    name                    TEXT    NOT NULL UNIQUE,
    renewal_window_days     BIGINT  NOT NULL,
    auto_renew              INTEGER NOT NULL,
    max_retries             BIGINT  NOT NULL,
    retry_interval_seconds  BIGINT  NOT NULL,
    alert_thresholds_days   TEXT    NOT NULL,
    certificate_profile_id  TEXT    NULL REFERENCES certs_profiles (id) ON DELETE SET NULL,
    created_at              TEXT    NOT NULL,
    updated_at              TEXT    NOT NULL
);
