//! SQL for the extension's tables, written once for both databases
//! (`$N` placeholders on sqlx's Any driver).

use attest_ext::store::sqlx::any::AnyRow;
use attest_ext::store::sqlx::{self, Any, Executor, Row};
use attest_ext::store::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

const STACK_COLUMNS: &str = "stack_id, org_name, project_name, stack_name, tags, version, \
     checkpoint, secrets_key, secrets_key_id, active_update, created_by, created_at, updated_at";

/// One row of `extension_pulumi_state_stacks`.
#[derive(Clone)]
pub struct StackRow {
    pub stack_id: String,
    pub org: String,
    pub project: String,
    pub stack: String,
    /// JSON object text.
    pub tags: String,
    pub version: i64,
    /// The current `UntypedDeployment`, byte for byte as last saved.
    pub checkpoint: Option<String>,
    /// The sealed per-stack key; never logged.
    pub secrets_key: Option<String>,
    pub secrets_key_id: Option<String>,
    pub active_update: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for StackRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackRow")
            .field("stack_id", &self.stack_id)
            .field("org", &self.org)
            .field("project", &self.project)
            .field("stack", &self.stack)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn stack_from(row: &AnyRow) -> Result<StackRow> {
    Ok(StackRow {
        stack_id: row.try_get(0)?,
        org: row.try_get(1)?,
        project: row.try_get(2)?,
        stack: row.try_get(3)?,
        tags: row.try_get(4)?,
        version: row.try_get(5)?,
        checkpoint: row.try_get(6)?,
        secrets_key: row.try_get(7)?,
        secrets_key_id: row.try_get(8)?,
        active_update: row.try_get(9)?,
        created_by: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    })
}

/// A stack by its three names.
pub async fn stack_get<'c, E: Executor<'c, Database = Any>>(
    db: E,
    org: &str,
    project: &str,
    stack: &str,
) -> Result<Option<StackRow>> {
    let sql = format!(
        "SELECT {STACK_COLUMNS} FROM extension_pulumi_state_stacks \
         WHERE org_name = $1 AND project_name = $2 AND stack_name = $3"
    );
    sqlx::query(&sql)
        .bind(org)
        .bind(project)
        .bind(stack)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(stack_from)
        .transpose()
}

/// Takes the stack row's write lock for the rest of the transaction (on
/// PostgreSQL the first `UPDATE` of a row serialises concurrent writers;
/// SQLite's write transaction already holds the database lock).
pub async fn stack_lock<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
    now: &str,
) -> Result<bool> {
    let done =
        sqlx::query("UPDATE extension_pulumi_state_stacks SET updated_at = $1 WHERE stack_id = $2")
            .bind(now)
            .bind(stack_id)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts a new stack.
pub async fn stack_insert<'c, E: Executor<'c, Database = Any>>(db: E, s: &StackRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO extension_pulumi_state_stacks (stack_id, org_name, project_name, stack_name, \
         tags, version, checkpoint, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&s.stack_id)
    .bind(&s.org)
    .bind(&s.project)
    .bind(&s.stack)
    .bind(&s.tags)
    .bind(s.version)
    .bind(&s.checkpoint)
    .bind(&s.created_by)
    .bind(&s.created_at)
    .bind(&s.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes a stack with its updates, events and deployments.
pub async fn stack_delete<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM extension_pulumi_state_stacks WHERE stack_id = $1")
        .bind(stack_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Moves a stack to a new project and name.
pub async fn stack_rename<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
    project: &str,
    stack: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE extension_pulumi_state_stacks SET project_name = $1, stack_name = $2, \
         updated_at = $3 WHERE stack_id = $4",
    )
    .bind(project)
    .bind(stack)
    .bind(now)
    .bind(stack_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Replaces a stack's tags (JSON object text).
pub async fn stack_set_tags<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
    tags: &str,
) -> Result<()> {
    sqlx::query("UPDATE extension_pulumi_state_stacks SET tags = $1 WHERE stack_id = $2")
        .bind(tags)
        .bind(stack_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Stores the current checkpoint text.
pub async fn stack_set_checkpoint<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
    checkpoint: &str,
) -> Result<()> {
    sqlx::query("UPDATE extension_pulumi_state_stacks SET checkpoint = $1 WHERE stack_id = $2")
        .bind(checkpoint)
        .bind(stack_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records a started update: the stack's new version and active update.
pub async fn stack_set_active<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
    version: i64,
    update_id: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE extension_pulumi_state_stacks SET version = $1, active_update = $2 \
         WHERE stack_id = $3",
    )
    .bind(version)
    .bind(update_id)
    .bind(stack_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Stores the sealed secrets key, unless one was stored meanwhile.
pub async fn stack_set_key<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
    sealed: &str,
    key_id: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE extension_pulumi_state_stacks SET secrets_key = $1, secrets_key_id = $2 \
         WHERE stack_id = $3 AND secrets_key IS NULL",
    )
    .bind(sealed)
    .bind(key_id)
    .bind(stack_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Filters of `GET /api/user/stacks`.
#[derive(Debug, Default)]
pub struct StackFilter {
    pub org: Option<String>,
    pub project: Option<String>,
}

/// Every stack matching `filter`, ordered by name.
pub async fn stack_list<'c, E: Executor<'c, Database = Any>>(
    db: E,
    filter: &StackFilter,
) -> Result<Vec<StackRow>> {
    let sql = format!(
        "SELECT {STACK_COLUMNS} FROM extension_pulumi_state_stacks \
         WHERE ($1 IS NULL OR org_name = $1) AND ($2 IS NULL OR project_name = $2) \
         ORDER BY org_name, project_name, stack_name"
    );
    sqlx::query(&sql)
        .bind(&filter.org)
        .bind(&filter.project)
        .fetch_all(db)
        .await?
        .iter()
        .map(stack_from)
        .collect()
}

/// Whether any stack exists in `org/project`.
pub async fn project_exists<'c, E: Executor<'c, Database = Any>>(
    db: E,
    org: &str,
    project: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM extension_pulumi_state_stacks WHERE org_name = $1 AND project_name = $2",
    )
    .bind(org)
    .bind(project)
    .fetch_one(db)
    .await?;
    Ok(n > 0)
}

const UPDATE_COLUMNS: &str = "update_id, stack_id, kind, status, version, program, token_hash, \
     lease_expires_ms, sequence, checkpoint, resource_changes, created_by, created_at, \
     start_time, end_time";

/// One row of `extension_pulumi_state_updates`.
#[derive(Clone)]
pub struct UpdateRow {
    pub update_id: String,
    pub stack_id: String,
    pub kind: String,
    pub status: String,
    pub version: i64,
    /// The `UpdateProgramRequest` JSON (config, message, environment).
    pub program: String,
    /// SHA-256 (hex) of the lease token; the token itself is never stored.
    pub token_hash: Option<String>,
    pub lease_expires_ms: Option<i64>,
    /// Last accepted checkpoint sequence number.
    pub sequence: i64,
    /// The stack's checkpoint when this update completed.
    pub checkpoint: Option<String>,
    pub resource_changes: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
}

impl std::fmt::Debug for UpdateRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateRow")
            .field("update_id", &self.update_id)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn update_from(row: &AnyRow) -> Result<UpdateRow> {
    Ok(UpdateRow {
        update_id: row.try_get(0)?,
        stack_id: row.try_get(1)?,
        kind: row.try_get(2)?,
        status: row.try_get(3)?,
        version: row.try_get(4)?,
        program: row.try_get(5)?,
        token_hash: row.try_get(6)?,
        lease_expires_ms: row.try_get(7)?,
        sequence: row.try_get(8)?,
        checkpoint: row.try_get(9)?,
        resource_changes: row.try_get(10)?,
        created_by: row.try_get(11)?,
        created_at: row.try_get(12)?,
        start_time: row.try_get(13)?,
        end_time: row.try_get(14)?,
    })
}

/// Inserts an update.
pub async fn update_insert<'c, E: Executor<'c, Database = Any>>(
    db: E,
    u: &UpdateRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO extension_pulumi_state_updates (update_id, stack_id, kind, status, version, \
         program, token_hash, lease_expires_ms, sequence, checkpoint, resource_changes, created_by, \
         created_at, start_time, end_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&u.update_id)
    .bind(&u.stack_id)
    .bind(&u.kind)
    .bind(&u.status)
    .bind(u.version)
    .bind(&u.program)
    .bind(&u.token_hash)
    .bind(u.lease_expires_ms)
    .bind(u.sequence)
    .bind(&u.checkpoint)
    .bind(&u.resource_changes)
    .bind(&u.created_by)
    .bind(&u.created_at)
    .bind(u.start_time)
    .bind(u.end_time)
    .execute(db)
    .await?;
    Ok(())
}

/// Writes back an update's mutable fields.
pub async fn update_save<'c, E: Executor<'c, Database = Any>>(db: E, u: &UpdateRow) -> Result<()> {
    sqlx::query(
        "UPDATE extension_pulumi_state_updates SET status = $1, version = $2, token_hash = $3, \
         lease_expires_ms = $4, sequence = $5, checkpoint = $6, resource_changes = $7, \
         start_time = $8, end_time = $9 WHERE update_id = $10",
    )
    .bind(&u.status)
    .bind(u.version)
    .bind(&u.token_hash)
    .bind(u.lease_expires_ms)
    .bind(u.sequence)
    .bind(&u.checkpoint)
    .bind(&u.resource_changes)
    .bind(u.start_time)
    .bind(u.end_time)
    .bind(&u.update_id)
    .execute(db)
    .await?;
    Ok(())
}

/// An update of `stack_id` by id.
pub async fn update_get<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
    update_id: &str,
) -> Result<Option<UpdateRow>> {
    let sql = format!(
        "SELECT {UPDATE_COLUMNS} FROM extension_pulumi_state_updates \
         WHERE stack_id = $1 AND update_id = $2"
    );
    sqlx::query(&sql)
        .bind(stack_id)
        .bind(update_id)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(update_from)
        .transpose()
}

/// Running updates of a stack that hold (or held) its lock: every kind but
/// previews.
pub async fn updates_running<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
) -> Result<Vec<UpdateRow>> {
    let sql = format!(
        "SELECT {UPDATE_COLUMNS} FROM extension_pulumi_state_updates \
         WHERE stack_id = $1 AND status = 'running' AND kind <> 'preview'"
    );
    sqlx::query(&sql)
        .bind(stack_id)
        .fetch_all(db)
        .await?
        .iter()
        .map(update_from)
        .collect()
}

/// The history: non-preview updates that started, newest first.
pub async fn update_history<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<UpdateRow>> {
    let sql = format!(
        "SELECT {UPDATE_COLUMNS} FROM extension_pulumi_state_updates \
         WHERE stack_id = $1 AND kind <> 'preview' AND status <> 'not started' \
         ORDER BY version DESC, created_at DESC LIMIT $2 OFFSET $3"
    );
    sqlx::query(&sql)
        .bind(stack_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await?
        .iter()
        .map(update_from)
        .collect()
}

/// The completed update that produced `version`.
pub async fn update_by_version<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
    version: i64,
) -> Result<Option<UpdateRow>> {
    let sql = format!(
        "SELECT {UPDATE_COLUMNS} FROM extension_pulumi_state_updates \
         WHERE stack_id = $1 AND version = $2 AND kind <> 'preview' AND checkpoint IS NOT NULL"
    );
    sqlx::query(&sql)
        .bind(stack_id)
        .bind(version)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(update_from)
        .transpose()
}

/// Records one engine event; a retried batch inserts nothing twice.
pub async fn event_insert<'c, E: Executor<'c, Database = Any>>(
    db: E,
    update_id: &str,
    sequence: i64,
    timestamp: i64,
    event: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO extension_pulumi_state_update_events (update_id, sequence, timestamp, event) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (update_id, sequence) DO NOTHING",
    )
    .bind(update_id)
    .bind(sequence)
    .bind(timestamp)
    .bind(event)
    .execute(db)
    .await?;
    Ok(())
}

/// An update's engine events in sequence order.
pub async fn events<'c, E: Executor<'c, Database = Any>>(
    db: E,
    update_id: &str,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT event FROM extension_pulumi_state_update_events WHERE update_id = $1 \
         ORDER BY sequence",
    )
    .bind(update_id)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
        .collect()
}

const DEPLOYMENT_COLUMNS: &str = "deployment_id, stack_id, version, operation, source, status, \
     exit_code, logs, transitions, created_by, created_at, started_at, finished_at";

/// One row of `extension_pulumi_state_deployments`.
#[derive(Debug, Clone)]
pub struct DeploymentRow {
    pub deployment_id: String,
    pub stack_id: String,
    pub version: i64,
    pub operation: String,
    /// JSON object text.
    pub source: String,
    pub status: String,
    pub exit_code: Option<i64>,
    /// JSON array of `{"timestamp","line"}`.
    pub logs: String,
    /// JSON array of `{"status","at"}`.
    pub transitions: String,
    pub created_by: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

fn deployment_from(row: &AnyRow) -> Result<DeploymentRow> {
    Ok(DeploymentRow {
        deployment_id: row.try_get(0)?,
        stack_id: row.try_get(1)?,
        version: row.try_get(2)?,
        operation: row.try_get(3)?,
        source: row.try_get(4)?,
        status: row.try_get(5)?,
        exit_code: row.try_get(6)?,
        logs: row.try_get(7)?,
        transitions: row.try_get(8)?,
        created_by: row.try_get(9)?,
        created_at: row.try_get(10)?,
        started_at: row.try_get(11)?,
        finished_at: row.try_get(12)?,
    })
}

/// Inserts a deployment, numbered after the stack's last one.
pub async fn deployment_insert<'c, E: Executor<'c, Database = Any>>(
    db: E,
    d: &DeploymentRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO extension_pulumi_state_deployments (deployment_id, stack_id, version, \
         operation, source, status, exit_code, logs, transitions, created_by, created_at, \
         started_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&d.deployment_id)
    .bind(&d.stack_id)
    .bind(d.version)
    .bind(&d.operation)
    .bind(&d.source)
    .bind(&d.status)
    .bind(d.exit_code)
    .bind(&d.logs)
    .bind(&d.transitions)
    .bind(&d.created_by)
    .bind(&d.created_at)
    .bind(&d.started_at)
    .bind(&d.finished_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Writes back a deployment's mutable fields.
pub async fn deployment_save<'c, E: Executor<'c, Database = Any>>(
    db: E,
    d: &DeploymentRow,
) -> Result<()> {
    sqlx::query(
        "UPDATE extension_pulumi_state_deployments SET status = $1, exit_code = $2, logs = $3, \
         transitions = $4, started_at = $5, finished_at = $6 WHERE deployment_id = $7",
    )
    .bind(&d.status)
    .bind(d.exit_code)
    .bind(&d.logs)
    .bind(&d.transitions)
    .bind(&d.started_at)
    .bind(&d.finished_at)
    .bind(&d.deployment_id)
    .execute(db)
    .await?;
    Ok(())
}

/// The next deployment number of a stack.
pub async fn deployment_next_version<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
) -> Result<i64> {
    let max: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(version) FROM extension_pulumi_state_deployments WHERE stack_id = $1",
    )
    .bind(stack_id)
    .fetch_one(db)
    .await?;
    Ok(max.unwrap_or(0) + 1)
}

/// A deployment by id (any stack).
pub async fn deployment_get<'c, E: Executor<'c, Database = Any>>(
    db: E,
    deployment_id: &str,
) -> Result<Option<DeploymentRow>> {
    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM extension_pulumi_state_deployments WHERE deployment_id = $1"
    );
    sqlx::query(&sql)
        .bind(deployment_id)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(deployment_from)
        .transpose()
}

/// A stack's deployments, newest first.
pub async fn deployment_list<'c, E: Executor<'c, Database = Any>>(
    db: E,
    stack_id: &str,
) -> Result<Vec<DeploymentRow>> {
    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM extension_pulumi_state_deployments WHERE stack_id = $1 \
         ORDER BY version DESC"
    );
    sqlx::query(&sql)
        .bind(stack_id)
        .fetch_all(db)
        .await?
        .iter()
        .map(deployment_from)
        .collect()
}

/// Deployments left queued or running by a previous process.
pub async fn deployments_unfinished<'c, E: Executor<'c, Database = Any>>(
    db: E,
) -> Result<Vec<DeploymentRow>> {
    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM extension_pulumi_state_deployments \
         WHERE status IN ('queued', 'running')"
    );
    sqlx::query(&sql)
        .fetch_all(db)
        .await?
        .iter()
        .map(deployment_from)
        .collect()
}
