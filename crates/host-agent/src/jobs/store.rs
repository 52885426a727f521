//! The job store: an embedded SQLite file (`state_dir/jobs.db`), so jobs
//! survive a restart of the agent.
//!
//! Each job is one row: the columns the API filters and sorts on, plus the
//! rest as JSON. Every status change happens in one transaction that reads
//! the row, asks the pure transition function and writes the answer, so a
//! cancel and the runner's result can never both win. Calls are short local
//! SQLite operations made inline under one connection lock.

use std::path::Path;
use std::sync::Mutex;

use attest_domain::patch_job::{self, Event, Outcome};
use attest_proto::patch::{JobLogEntry, JobOperation, JobStatus, Patch};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{JobError, JobRecord};
use crate::api::envelope::rfc3339;

/// Log lines kept per job; later lines are dropped (the count is logged).
pub const MAX_LOG_LINES: i64 = 1000;

/// Schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

/// Sort keys of `GET /api/v1/jobs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    Status,
}

/// Filters and page of a job listing.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub status: Option<JobStatus>,
    pub operation: Option<JobOperation>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: u64,
    pub offset: u64,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

fn db_err(e: impl std::fmt::Display) -> JobError {
    JobError::Store(e.to_string())
}

impl Store {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, JobError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(db_err)?;
        }
        let conn = Connection::open(path).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(db_err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_err)?;
        if version > SCHEMA_VERSION {
            return Err(JobError::Store(format!(
                "job database schema {version} is newer than this agent ({SCHEMA_VERSION})"
            )));
        }
        if version < 1 {
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE jobs (
                     id TEXT PRIMARY KEY,
                     operation TEXT NOT NULL,
                     status TEXT NOT NULL,
                     created_at TEXT NOT NULL,
                     updated_at TEXT NOT NULL,
                     seq INTEGER NOT NULL,
                     doc TEXT NOT NULL
                 );
                 CREATE INDEX jobs_status ON jobs(status, seq);
                 CREATE TABLE job_logs (
                     job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                     seq INTEGER NOT NULL,
                     timestamp TEXT NOT NULL,
                     level TEXT NOT NULL,
                     message TEXT NOT NULL,
                     PRIMARY KEY (job_id, seq)
                 );
                 CREATE TABLE applied_patches (
                     id TEXT PRIMARY KEY,
                     job_id TEXT NOT NULL,
                     applied_at TEXT NOT NULL,
                     doc TEXT NOT NULL
                 );
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(db_err)?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores a new job.
    pub fn insert(&self, job: &JobRecord) -> Result<(), JobError> {
        let doc = serde_json::to_string(job).map_err(db_err)?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO jobs (id, operation, status, created_at, updated_at, seq, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), ?6)",
            params![
                job.id,
                job.operation.as_str(),
                job.status.as_str(),
                rfc3339_nanos(job.created_at),
                rfc3339_nanos(job.updated_at),
                doc
            ],
        )
        .map_err(db_err)?;
        Ok(())
    }

    fn read(conn: &Connection, id: &str) -> Result<Option<JobRecord>, JobError> {
        let doc: Option<String> = conn
            .query_row("SELECT doc FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        doc.map(|d| serde_json::from_str(&d).map_err(db_err))
            .transpose()
    }

    fn write(conn: &Connection, job: &JobRecord) -> Result<(), JobError> {
        let doc = serde_json::to_string(job).map_err(db_err)?;
        conn.execute(
            "UPDATE jobs SET status = ?2, updated_at = ?3, doc = ?4 WHERE id = ?1",
            params![
                job.id,
                job.status.as_str(),
                rfc3339_nanos(job.updated_at),
                doc
            ],
        )
        .map_err(db_err)?;
        Ok(())
    }

    /// One job.
    pub fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        Self::read(&self.conn(), id)
    }

    /// Applies `event` to job `id` in one transaction: the pure transition
    /// decides, `edit` fills in what the caller knows (result, error), the
    /// row is written (or deleted for [`patch_job::Effect::Remove`]).
    pub fn transition(
        &self,
        id: &str,
        event: Event,
        now: DateTime<Utc>,
        edit: impl FnOnce(&mut JobRecord, &Outcome),
    ) -> Result<(JobRecord, Outcome), JobError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        let mut job = Self::read(&tx, id)?.ok_or_else(|| JobError::NotFound(id.to_owned()))?;
        let outcome = patch_job::transition(job.status, event)
            .map_err(|e| JobError::Refused(e.to_string()))?;
        if outcome.effect == patch_job::Effect::Remove {
            tx.execute("DELETE FROM jobs WHERE id = ?1", [id])
                .map_err(db_err)?;
        } else {
            job.status = outcome.status;
            job.updated_at = now;
            if outcome.status_changed() && outcome.status.is_terminal() {
                job.completed_at = Some(now);
            }
            edit(&mut job, &outcome);
            Self::write(&tx, &job)?;
        }
        tx.commit().map_err(db_err)?;
        Ok((job, outcome))
    }

    /// Changes fields that are not the status (recorded versions, result of
    /// a job already ended by a cancel).
    pub fn update(
        &self,
        id: &str,
        edit: impl FnOnce(&mut JobRecord),
    ) -> Result<Option<JobRecord>, JobError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        let Some(mut job) = Self::read(&tx, id)? else {
            return Ok(None);
        };
        edit(&mut job);
        Self::write(&tx, &job)?;
        tx.commit().map_err(db_err)?;
        Ok(Some(job))
    }

    /// A page of jobs and the total matching the filters.
    pub fn list(&self, q: &ListQuery) -> Result<(Vec<JobRecord>, u64), JobError> {
        let conn = self.conn();
        let status = q.status.map(JobStatus::as_str);
        let operation = q.operation.map(JobOperation::as_str);
        let order = match (q.sort, q.descending) {
            (SortKey::CreatedAt, false) => "seq ASC",
            (SortKey::CreatedAt, true) => "seq DESC",
            (SortKey::UpdatedAt, false) => "updated_at ASC, seq ASC",
            (SortKey::UpdatedAt, true) => "updated_at DESC, seq DESC",
            (SortKey::Status, false) => "status ASC, seq ASC",
            (SortKey::Status, true) => "status DESC, seq DESC",
        };
        let filter = "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR operation = ?2)";
        let total: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM jobs WHERE {filter}"),
                params![status, operation],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT doc FROM jobs WHERE {filter} ORDER BY {order} LIMIT ?3 OFFSET ?4"
            ))
            .map_err(db_err)?;
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let docs = stmt
            .query_map(params![status, operation, limit, offset], |r| {
                r.get::<_, String>(0)
            })
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        let jobs = docs
            .iter()
            .map(|d| serde_json::from_str(d).map_err(db_err))
            .collect::<Result<_, _>>()?;
        Ok((jobs, u64::try_from(total).unwrap_or(0)))
    }

    /// The oldest pending job.
    pub fn next_pending(&self) -> Result<Option<JobRecord>, JobError> {
        let conn = self.conn();
        let doc: Option<String> = conn
            .query_row(
                "SELECT doc FROM jobs WHERE status = 'pending' ORDER BY seq ASC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        doc.map(|d| serde_json::from_str(&d).map_err(db_err))
            .transpose()
    }

    /// Ids of jobs that were not finished (start-up recovery).
    pub fn unfinished(&self) -> Result<Vec<String>, JobError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id FROM jobs WHERE status IN ('pending', 'running') ORDER BY seq")
            .map_err(db_err)?;
        let ids = stmt
            .query_map([], |r| r.get(0))
            .map_err(db_err)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(db_err)?;
        Ok(ids)
    }

    /// Number of running jobs other than `except`.
    pub fn running_count(&self, except: Option<&str>) -> Result<u64, JobError> {
        let conn = self.conn();
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM jobs WHERE status = 'running' AND id IS NOT ?1",
                [except],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Appends a log line (dropped past [`MAX_LOG_LINES`]).
    pub fn append_log(
        &self,
        id: &str,
        at: DateTime<Utc>,
        level: &str,
        message: &str,
    ) -> Result<(), JobError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO job_logs (job_id, seq, timestamp, level, message)
             SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4 FROM job_logs WHERE job_id = ?1
             HAVING COALESCE(MAX(seq), 0) < ?5",
            params![
                id,
                rfc3339(at),
                level,
                truncate(message, 2000),
                MAX_LOG_LINES
            ],
        )
        .map_err(db_err)?;
        Ok(())
    }

    /// A job's log, oldest first.
    pub fn logs(&self, id: &str) -> Result<Vec<JobLogEntry>, JobError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT timestamp, level, message FROM job_logs WHERE job_id = ?1 ORDER BY seq",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(JobLogEntry {
                    timestamp: r.get(0)?,
                    level: r.get(1)?,
                    message: r.get(2)?,
                })
            })
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(rows)
    }

    /// Records patches a job applied.
    pub fn record_applied(
        &self,
        job_id: &str,
        at: DateTime<Utc>,
        patches: &[Patch],
    ) -> Result<(), JobError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        for p in patches {
            let doc = serde_json::to_string(p).map_err(db_err)?;
            tx.execute(
                "INSERT OR REPLACE INTO applied_patches (id, job_id, applied_at, doc) VALUES (?1, ?2, ?3, ?4)",
                params![p.id, job_id, rfc3339(at), doc],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Patches applied by this agent.
    pub fn applied(&self) -> Result<Vec<Patch>, JobError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT doc FROM applied_patches ORDER BY applied_at")
            .map_err(db_err)?;
        let docs = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        docs.iter()
            .map(|d| serde_json::from_str(d).map_err(db_err))
            .collect()
    }
}

/// Sortable timestamps (fixed width, nanoseconds).
fn rfc3339_nanos(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
