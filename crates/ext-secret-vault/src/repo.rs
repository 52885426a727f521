//! The vault's three tables. Every query is written once with `$n`
//! placeholders and runs on either database through the store's Any pool.
//!
//! The binary columns (`encrypted_value`, `nonce`, `tag`) are stored as
//! standard base64 TEXT: the core keeps every column TEXT-compatible, and
//! this avoids BYTEA/BLOB differences in the Any driver.

use attest_ext::store::sqlx::any::AnyRow;
use attest_ext::store::sqlx::{self, AnyConnection, Row};
use attest_ext::store::StoreError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::crypto::Sealed;

type Result<T> = std::result::Result<T, StoreError>;

/// A machine secret row (sealed value included; never serialised as is).
#[derive(Debug, Clone)]
pub struct MachineSecretRow {
    pub secret_id: String,
    pub machine_id: String,
    pub name: String,
    pub sealed: Sealed,
    pub created_at: String,
    pub created_by: String,
    pub last_accessed_at: Option<String>,
    pub access_count: i64,
}

/// A shared secret row.
#[derive(Debug, Clone)]
pub struct SharedSecretRow {
    pub shared_secret_id: String,
    pub name: String,
    pub sealed: Sealed,
    pub encryption_key_id: String,
    pub created_at: String,
    pub created_by: String,
    pub last_rotated_at: Option<String>,
    pub description: Option<String>,
}

/// One machine on a shared secret's access list.
#[derive(Debug, Clone)]
pub struct AccessRow {
    pub machine_id: String,
    pub granted_at: String,
    pub granted_by: String,
    pub last_accessed_at: Option<String>,
    pub access_count: i64,
}

/// Whether `err` is a UNIQUE / primary-key violation (a concurrent
/// duplicate), on either backend.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(row: &AnyRow, column: &str) -> Result<Vec<u8>> {
    let text: String = row.try_get(column)?;
    STANDARD
        .decode(text.as_bytes())
        .map_err(|_| StoreError::Corrupt(format!("secret_vault: {column} is not base64")))
}

fn sealed_of(row: &AnyRow) -> Result<Sealed> {
    Ok(Sealed {
        ciphertext: unb64(row, "encrypted_value")?,
        nonce: unb64(row, "nonce")?,
        tag: unb64(row, "tag")?,
    })
}

// ---- machine secrets --------------------------------------------------

const SECRET_COLUMNS: &str = "secret_id, machine_id, name, encrypted_value, nonce, tag, \
                              created_at, created_by, last_accessed_at, access_count";

fn machine_secret(row: &AnyRow) -> Result<MachineSecretRow> {
    Ok(MachineSecretRow {
        secret_id: row.try_get("secret_id")?,
        machine_id: row.try_get("machine_id")?,
        name: row.try_get("name")?,
        sealed: sealed_of(row)?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        last_accessed_at: row.try_get("last_accessed_at")?,
        access_count: row.try_get("access_count")?,
    })
}

/// Inserts a machine secret.
pub async fn insert_machine_secret(
    conn: &mut AnyConnection,
    s: &MachineSecretRow,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO extension_secrets (secret_id, machine_id, name, encrypted_value, nonce, \
         tag, created_at, created_by, last_accessed_at, access_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0)",
    )
    .bind(&s.secret_id)
    .bind(&s.machine_id)
    .bind(&s.name)
    .bind(b64(&s.sealed.ciphertext))
    .bind(b64(&s.sealed.nonce))
    .bind(b64(&s.sealed.tag))
    .bind(&s.created_at)
    .bind(&s.created_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// A machine's secrets, by name.
pub async fn list_machine_secrets(
    conn: &mut AnyConnection,
    machine_id: &str,
) -> Result<Vec<MachineSecretRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {SECRET_COLUMNS} FROM extension_secrets WHERE machine_id = $1 ORDER BY name"
    ))
    .bind(machine_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(machine_secret).collect()
}

/// One machine secret by machine and name.
pub async fn machine_secret_by_name(
    conn: &mut AnyConnection,
    machine_id: &str,
    name: &str,
) -> Result<Option<MachineSecretRow>> {
    let row = sqlx::query(&format!(
        "SELECT {SECRET_COLUMNS} FROM extension_secrets WHERE machine_id = $1 AND name = $2"
    ))
    .bind(machine_id)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(machine_secret).transpose()
}

/// One machine secret by id.
pub async fn machine_secret_by_id(
    conn: &mut AnyConnection,
    secret_id: &str,
) -> Result<Option<MachineSecretRow>> {
    let row = sqlx::query(&format!(
        "SELECT {SECRET_COLUMNS} FROM extension_secrets WHERE secret_id = $1"
    ))
    .bind(secret_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(machine_secret).transpose()
}

/// Deletes a machine secret; whether it existed.
pub async fn delete_machine_secret(conn: &mut AnyConnection, secret_id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM extension_secrets WHERE secret_id = $1")
        .bind(secret_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Counts one retrieval.
pub async fn touch_machine_secret(
    conn: &mut AnyConnection,
    secret_id: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE extension_secrets SET access_count = access_count + 1, last_accessed_at = $1 \
         WHERE secret_id = $2",
    )
    .bind(now)
    .bind(secret_id)
    .execute(conn)
    .await?;
    Ok(())
}

// ---- shared secrets ---------------------------------------------------

const SHARED_COLUMNS: &str = "shared_secret_id, name, encrypted_value, nonce, tag, \
                              encryption_key_id, created_at, created_by, last_rotated_at, \
                              description";

fn shared_secret(row: &AnyRow) -> Result<SharedSecretRow> {
    Ok(SharedSecretRow {
        shared_secret_id: row.try_get("shared_secret_id")?,
        name: row.try_get("name")?,
        sealed: sealed_of(row)?,
        encryption_key_id: row.try_get("encryption_key_id")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        last_rotated_at: row.try_get("last_rotated_at")?,
        description: row.try_get("description")?,
    })
}

/// Inserts a shared secret.
pub async fn insert_shared_secret(
    conn: &mut AnyConnection,
    s: &SharedSecretRow,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO extension_shared_secrets (shared_secret_id, name, encrypted_value, nonce, \
         tag, encryption_key_id, created_at, created_by, last_rotated_at, description) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
    )
    .bind(&s.shared_secret_id)
    .bind(&s.name)
    .bind(b64(&s.sealed.ciphertext))
    .bind(b64(&s.sealed.nonce))
    .bind(b64(&s.sealed.tag))
    .bind(&s.encryption_key_id)
    .bind(&s.created_at)
    .bind(&s.created_by)
    .bind(&s.description)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every shared secret, by name.
pub async fn list_shared_secrets(conn: &mut AnyConnection) -> Result<Vec<SharedSecretRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {SHARED_COLUMNS} FROM extension_shared_secrets ORDER BY name"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(shared_secret).collect()
}

/// A shared secret by exact name.
pub async fn shared_secret_by_name(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<SharedSecretRow>> {
    let row = sqlx::query(&format!(
        "SELECT {SHARED_COLUMNS} FROM extension_shared_secrets WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(shared_secret).transpose()
}

/// A shared secret by id, else by name: the seed's CLI passes names where
/// the API says `{id}`.
pub async fn resolve_shared_secret(
    conn: &mut AnyConnection,
    id_or_name: &str,
) -> Result<Option<SharedSecretRow>> {
    let row = sqlx::query(&format!(
        "SELECT {SHARED_COLUMNS} FROM extension_shared_secrets WHERE shared_secret_id = $1"
    ))
    .bind(id_or_name)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => shared_secret(&row).map(Some),
        None => shared_secret_by_name(conn, id_or_name).await,
    }
}

/// Rewrites a shared secret's value, key id, rotation time and description.
pub async fn update_shared_secret(conn: &mut AnyConnection, s: &SharedSecretRow) -> Result<()> {
    sqlx::query(
        "UPDATE extension_shared_secrets SET encrypted_value = $1, nonce = $2, tag = $3, \
         encryption_key_id = $4, last_rotated_at = $5, description = $6 \
         WHERE shared_secret_id = $7",
    )
    .bind(b64(&s.sealed.ciphertext))
    .bind(b64(&s.sealed.nonce))
    .bind(b64(&s.sealed.tag))
    .bind(&s.encryption_key_id)
    .bind(&s.last_rotated_at)
    .bind(&s.description)
    .bind(&s.shared_secret_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a shared secret and its access list (explicitly, not relying
/// on the cascade, which SQLite only honours with foreign keys enabled).
pub async fn delete_shared_secret(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    sqlx::query("DELETE FROM extension_shared_secret_access WHERE shared_secret_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM extension_shared_secrets WHERE shared_secret_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

// ---- access list ------------------------------------------------------

const ACCESS_COLUMNS: &str = "machine_id, granted_at, granted_by, last_accessed_at, access_count";

fn access(row: &AnyRow) -> Result<AccessRow> {
    Ok(AccessRow {
        machine_id: row.try_get("machine_id")?,
        granted_at: row.try_get("granted_at")?,
        granted_by: row.try_get("granted_by")?,
        last_accessed_at: row.try_get("last_accessed_at")?,
        access_count: row.try_get("access_count")?,
    })
}

/// Grants `machine_id` access; `false` if it already had it.
pub async fn grant(
    conn: &mut AnyConnection,
    id: &str,
    machine_id: &str,
    now: &str,
    by: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO extension_shared_secret_access (shared_secret_id, machine_id, granted_at, \
         granted_by, last_accessed_at, access_count) VALUES ($1, $2, $3, $4, NULL, 0) \
         ON CONFLICT (shared_secret_id, machine_id) DO NOTHING",
    )
    .bind(id)
    .bind(machine_id)
    .bind(now)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Revokes `machine_id`'s access; `false` if it had none.
pub async fn revoke(conn: &mut AnyConnection, id: &str, machine_id: &str) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM extension_shared_secret_access \
         WHERE shared_secret_id = $1 AND machine_id = $2",
    )
    .bind(id)
    .bind(machine_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The access list, oldest grant first.
pub async fn list_access(conn: &mut AnyConnection, id: &str) -> Result<Vec<AccessRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {ACCESS_COLUMNS} FROM extension_shared_secret_access \
         WHERE shared_secret_id = $1 ORDER BY granted_at, machine_id"
    ))
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(access).collect()
}

/// Counts one retrieval by `machine_id`; `false` if it is not on the list.
pub async fn touch_access(
    conn: &mut AnyConnection,
    id: &str,
    machine_id: &str,
    now: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE extension_shared_secret_access \
         SET access_count = access_count + 1, last_accessed_at = $1 \
         WHERE shared_secret_id = $2 AND machine_id = $3",
    )
    .bind(now)
    .bind(id)
    .bind(machine_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
