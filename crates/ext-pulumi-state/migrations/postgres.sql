-- pulumi_state 1: stacks, their updates (with engine events) and
-- server-side deployments. Ids and timestamps are TEXT like the core's;
-- lease deadlines and Pulumi's startTime/endTime are integers (Unix
-- milliseconds / seconds) because they are compared and answered as numbers.
CREATE TABLE extension_pulumi_state_stacks (
    stack_id        TEXT    PRIMARY KEY,
    org_name        TEXT    NOT NULL CHECK (char_length(org_name) BETWEEN 1 AND 100),
    project_name    TEXT    NOT NULL CHECK (char_length(project_name) BETWEEN 1 AND 100),
    stack_name      TEXT    NOT NULL CHECK (char_length(stack_name) BETWEEN 1 AND 100),
    tags            TEXT    NOT NULL DEFAULT '{}',
    version         BIGINT NOT NULL DEFAULT 0,
    checkpoint      TEXT    NULL,
    secrets_key     TEXT    NULL,
    secrets_key_id  TEXT    NULL,
    active_update   TEXT    NULL,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (org_name, project_name, stack_name)
);

CREATE TABLE extension_pulumi_state_updates (
    update_id        TEXT    PRIMARY KEY,
    stack_id         TEXT    NOT NULL
        REFERENCES extension_pulumi_state_stacks (stack_id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    version          BIGINT NOT NULL DEFAULT 0,
    program          TEXT    NOT NULL DEFAULT '{}',
    token_hash       TEXT    NULL,
    lease_expires_ms BIGINT NULL,
    sequence         BIGINT NOT NULL DEFAULT 0,
    checkpoint       TEXT    NULL,
    resource_changes TEXT    NULL,
    created_by       TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    start_time       BIGINT NULL,
    end_time         BIGINT NULL
);

CREATE INDEX extension_pulumi_state_updates_stack
    ON extension_pulumi_state_updates (stack_id, status);

CREATE TABLE extension_pulumi_state_update_events (
    update_id  TEXT    NOT NULL
        REFERENCES extension_pulumi_state_updates (update_id) ON DELETE CASCADE,
    sequence   BIGINT NOT NULL,
    timestamp  BIGINT NOT NULL,
    event      TEXT    NOT NULL,
    PRIMARY KEY (update_id, sequence)
);

CREATE TABLE extension_pulumi_state_deployments (
    deployment_id TEXT    PRIMARY KEY,
    stack_id      TEXT    NOT NULL
        REFERENCES extension_pulumi_state_stacks (stack_id) ON DELETE CASCADE,
    version       BIGINT NOT NULL,
    operation     TEXT    NOT NULL,
    source        TEXT    NOT NULL DEFAULT '{}',
    status        TEXT    NOT NULL,
    exit_code     BIGINT NULL,
    logs          TEXT    NOT NULL DEFAULT '[]',
    transitions   TEXT    NOT NULL DEFAULT '[]',
    created_by    TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    started_at    TEXT    NULL,
    finished_at   TEXT    NULL,
    UNIQUE (stack_id, version)
);
