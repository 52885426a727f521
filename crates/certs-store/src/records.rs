//! One repository for simple resources (a row per resource, addressed by
//! its text id): insert, read, list a page, replace, delete.
//!
//! A resource describes its table once ([`Record`]); the statements are
//! built from that description, so every resource gets the same
//! behaviour: conflicts (unique names, foreign keys) as
//! [`StoreError::Conflict`](attest_store::StoreError::Conflict), pages in
//! creation order, counts for the page envelope.

use attest_store::{Result, Store, WriteTx};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::conflict_or;

/// A column value to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// TEXT (NULL when `None`).
    Text(Option<String>),
    /// INTEGER / BIGINT (booleans are 0/1).
    Int(i64),
    /// A nullable INTEGER / BIGINT (a typed NULL: PostgreSQL refuses a
    /// text NULL for a bigint column).
    OptInt(Option<i64>),
}

/// How a resource maps onto its table.
pub trait Record: Sized {
    /// The table.
    const TABLE: &'static str;
    /// Every column, `id` first, in the order of [`Record::params`] and of
    /// the row [`Record::from_row`] reads.
    const COLUMNS: &'static [&'static str];
    /// Reads a row selected with [`Record::COLUMNS`].
    fn from_row(row: &AnyRow) -> Result<Self>;
    /// The values of [`Record::COLUMNS`], in order.
    fn params(&self) -> Vec<Param>;
    /// The id.
    fn id(&self) -> &str;
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    params: Vec<Param>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for p in params {
        query = match p {
            Param::Text(v) => query.bind(v),
            Param::Int(v) => query.bind(v),
            Param::OptInt(v) => query.bind(v),
        };
    }
    query
}

fn select<R: Record>() -> String {
    format!("SELECT {} FROM {}", R::COLUMNS.join(", "), R::TABLE)
}

/// Inserts `record`; a taken id or unique value, or a missing referenced
/// row, is a conflict.
pub async fn insert<R: Record>(tx: &mut WriteTx, record: &R) -> Result<()> {
    let placeholders: Vec<String> = (1..=R::COLUMNS.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        R::TABLE,
        R::COLUMNS.join(", "),
        placeholders.join(", ")
    );
    bind(sqlx::query(&sql), record.params())
        .execute(&mut **tx)
        .await
        .map_err(conflict_or)?;
    Ok(())
}

/// Writes every column of `record` over the row with its id; `false`
/// when there is none.
pub async fn replace<R: Record>(tx: &mut WriteTx, record: &R) -> Result<bool> {
    let sets: Vec<String> = R::COLUMNS
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect();
    let sql = format!("UPDATE {} SET {} WHERE id = $1", R::TABLE, sets.join(", "));
    let done = bind(sqlx::query(&sql), record.params())
        .execute(&mut **tx)
        .await
        .map_err(conflict_or)?;
    Ok(done.rows_affected() == 1)
}

/// The resource `id`.
pub async fn get<R: Record>(store: &Store, id: &str) -> Result<Option<R>> {
    let row = sqlx::query(&format!("{} WHERE id = $1", select::<R>()))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(R::from_row).transpose()
}

/// The resource `id`, read inside `tx` (for read-modify-write).
pub async fn get_in<R: Record>(tx: &mut WriteTx, id: &str) -> Result<Option<R>> {
    let row = sqlx::query(&format!("{} WHERE id = $1", select::<R>()))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(R::from_row).transpose()
}

/// One page in creation order, and how many there are.
pub async fn list<R: Record>(store: &Store, limit: i64, offset: i64) -> Result<(Vec<R>, i64)> {
    let rows = sqlx::query(&format!(
        "{} ORDER BY created_at, id LIMIT $1 OFFSET $2",
        select::<R>()
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await?;
    let total = sqlx::query(&format!("SELECT COUNT(*) FROM {}", R::TABLE))
        .fetch_one(store.pool())
        .await?
        .try_get::<i64, _>(0)?;
    Ok((rows.iter().map(R::from_row).collect::<Result<_>>()?, total))
}

/// Deletes the resource `id`; `false` when there is none; a conflict
/// when other rows still refer to it.
pub async fn delete<R: Record>(tx: &mut WriteTx, id: &str) -> Result<bool> {
    let done = sqlx::query(&format!("DELETE FROM {} WHERE id = $1", R::TABLE))
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(conflict_or)?;
    Ok(done.rows_affected() == 1)
}

/// Whether `table` has a row `id` (a reference check inside the write,
/// so a 400 can name the missing reference rather than a constraint
/// failing).
pub async fn exists(tx: &mut WriteTx, table: &str, id: &str) -> Result<bool> {
    let row = sqlx::query(&format!("SELECT 1 FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// A JSON column's text.
pub fn json_text<T: serde::Serialize>(value: &T) -> Param {
    Param::Text(Some(
        serde_json::to_string(value).unwrap_or_else(|_| "[]".into()),
    ))
}

/// Reads a JSON column.
pub fn from_json<T: serde::de::DeserializeOwned>(row: &AnyRow, index: usize) -> Result<T> {
    let text: String = row.try_get(index)?;
    serde_json::from_str(&text)
        .map_err(|e| attest_store::StoreError::Corrupt(format!("JSON column: {e}")))
}
