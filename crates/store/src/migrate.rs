//! A small migration runner with named sets per component.
//!
//! Not `sqlx::migrate!`: each component (core, every extension) owns its
//! own version line, DDL may differ per backend, and a database migrated by
//! a newer binary is refused rather than silently used.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use attest_domain::audit::format_timestamp;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection, Executor, Row};

use crate::error::{Result, StoreError};
use crate::{Backend, Store};

/// One schema change, with its DDL for each backend.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Strictly increasing within its set, starting anywhere above 0.
    pub version: i64,
    /// Short snake_case description, recorded in `schema_migrations`.
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Migration {
    /// The SQL for `backend`.
    pub fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }

    /// Lowercase hex SHA-256 of the SQL for `backend`.
    pub fn checksum(&self, backend: Backend) -> String {
        hex::encode(Sha256::digest(self.sql(backend).as_bytes()))
    }
}

/// The migrations of one component: `"core"` or `"extension_<name>"`.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub component: Cow<'static, str>,
    pub migrations: &'static [Migration],
}

/// The store's own schema.
pub const CORE_MIGRATIONS: MigrationSet = MigrationSet {
    component: Cow::Borrowed("core"),
    migrations: &[
        Migration {
            version: 1,
            name: "audit_log",
            sqlite: include_str!("../migrations/sqlite/0001_audit_log.sql"),
            postgres: include_str!("../migrations/postgres/0001_audit_log.sql"),
        },
        Migration {
            version: 2,
            name: "machines",
            sqlite: include_str!("../migrations/sqlite/0002_machines.sql"),
            postgres: include_str!("../migrations/postgres/0002_machines.sql"),
        },
        Migration {
            version: 3,
            name: "enrollment",
            sqlite: include_str!("../migrations/sqlite/0003_enrollment.sql"),
            postgres: include_str!("../migrations/postgres/0003_enrollment.sql"),
        },
        Migration {
            version: 4,
            name: "scale_indexes",
            sqlite: include_str!("../migrations/sqlite/0004_scale_indexes.sql"),
            postgres: include_str!("../migrations/postgres/0004_scale_indexes.sql"),
        },
        Migration {
            version: 5,
            name: "outstanding_nonces",
            sqlite: include_str!("../migrations/sqlite/0005_outstanding_nonces.sql"),
            postgres: include_str!("../migrations/postgres/0005_outstanding_nonces.sql"),
        },
        Migration {
            version: 6,
            name: "security_review",
            sqlite: include_str!("../migrations/sqlite/0006_security_review.sql"),
            postgres: include_str!("../migrations/postgres/0006_security_review.sql"),
        },
        Migration {
            version: 7,
            name: "audit_checkpoints",
            sqlite: include_str!("../migrations/sqlite/0007_audit_checkpoints.sql"),
            postgres: include_str!("../migrations/postgres/0007_audit_checkpoints.sql"),
        },
        Migration {
            version: 8,
            name: "host_enrollments",
            sqlite: include_str!("../migrations/sqlite/0008_host_enrollments.sql"),
            postgres: include_str!("../migrations/postgres/0008_host_enrollments.sql"),
        },
        Migration {
            version: 9,
            name: "activity_outbox",
            sqlite: include_str!("../migrations/sqlite/0009_activity_outbox.sql"),
            postgres: include_str!("../migrations/postgres/0009_activity_outbox.sql"),
        },
    ],
};

/// A migration applied by this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub component: String,
    pub version: i64,
    pub name: String,
}

/// What [`Store::migrate`] did: log as "applied {applied} migrations ({total} total)".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations applied by this call.
    pub applied: usize,
    /// Migrations the given sets contain (applied now or earlier).
    pub total: usize,
    /// The ones applied by this call, in order.
    pub applied_migrations: Vec<AppliedMigration>,
}

/// Key of the PostgreSQL advisory lock held while migrating ("attestmg").
const PG_MIGRATION_LOCK: i64 = 0x6174_7465_7374_6d67;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    component  TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    checksum   TEXT   NOT NULL,
    applied_at TEXT   NOT NULL,
    PRIMARY KEY (component, version)
)";

struct AppliedRow {
    version: i64,
    name: String,
    checksum: String,
}

impl Store {
    /// Applies every pending migration of `sets`, each in its own
    /// transaction, after checking the recorded history: a component at a
    /// higher version than the binary knows, an applied migration the
    /// binary lacks, or a changed checksum is refused. Concurrent callers
    /// (other processes included) are serialised: an advisory lock on
    /// PostgreSQL, the write lock plus a re-check inside each transaction on
    /// SQLite.
    pub async fn migrate(&self, sets: &[MigrationSet]) -> Result<MigrationReport> {
        validate_sets(sets)?;
        match self.backend {
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?;
                // If this future is dropped mid-way, closing the session is
                // what releases the advisory lock.
                conn.close_on_drop();
                sqlx::query("SELECT 1 FROM (SELECT pg_advisory_lock($1)) AS l")
                    .bind(PG_MIGRATION_LOCK)
                    .execute(&mut *conn)
                    .await?;
                let result = self.migrate_on(&mut conn, sets).await;
                let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_MIGRATION_LOCK)
                    .execute(&mut *conn)
                    .await;
                if unlocked.is_ok() {
                    drop(conn);
                } else {
                    // Closing the session releases the lock too.
                    let _ = conn.close().await;
                }
                result
            }
            Backend::Sqlite => {
                let _guard = match &self.write_lock {
                    Some(lock) => Some(lock.clone().lock_owned().await),
                    None => None,
                };
                let mut conn = self.pool.acquire().await?;
                self.migrate_on(&mut conn, sets).await
            }
        }
    }

    async fn migrate_on(
        &self,
        conn: &mut AnyConnection,
        sets: &[MigrationSet],
    ) -> Result<MigrationReport> {
        sqlx::query(CREATE_TABLE).execute(&mut *conn).await?;
        let mut applied = read_applied(conn).await?;

        let mut report = MigrationReport::default();
        for set in sets {
            report.total += set.migrations.len();
            let done = applied.remove(&*set.component).unwrap_or_default();
            let pending = self.check_history(set, &done)?;
            for migration in pending {
                if self.apply(conn, &set.component, migration).await? {
                    report.applied += 1;
                    report.applied_migrations.push(AppliedMigration {
                        component: set.component.to_string(),
                        version: migration.version,
                        name: migration.name.to_string(),
                    });
                }
            }
        }
        for component in applied.keys() {
            tracing::debug!(
                component,
                "database has migrations of a component not given"
            );
        }
        Ok(report)
    }

    /// Compares the database's migration history with `sets` without
    /// changing anything: for each component, the version the database is
    /// at, the newest the binary knows, and what is wrong, if anything
    /// (the same checks [`Store::migrate`] refuses on, plus components the
    /// binary does not know at all). For `attestation verify-backup`.
    pub async fn schema_status(&self, sets: &[MigrationSet]) -> Result<Vec<ComponentSchema>> {
        validate_sets(sets)?;
        let mut conn = self.pool.acquire().await?;
        let mut applied = read_applied(&mut conn).await?;
        let mut status = Vec::new();
        for set in sets {
            let done = applied.remove(&*set.component).unwrap_or_default();
            let (problem, pending_only) = match self.check_history(set, &done) {
                Ok(pending) if pending.is_empty() => (None, false),
                Ok(pending) => (
                    Some(format!(
                        "{} migration(s) not applied yet (the server applies them at start)",
                        pending.len()
                    )),
                    true,
                ),
                Err(e) => (Some(e.to_string()), false),
            };
            status.push(ComponentSchema {
                component: set.component.to_string(),
                db_version: done.iter().map(|r| r.version).max().unwrap_or(0),
                binary_version: set.migrations.last().map_or(0, |m| m.version),
                known: true,
                pending_only,
                problem,
            });
        }
        for (component, rows) in applied {
            status.push(ComponentSchema {
                component,
                db_version: rows.iter().map(|r| r.version).max().unwrap_or(0),
                binary_version: 0,
                known: false,
                pending_only: false,
                problem: Some("component not known to this binary".into()),
            });
        }
        Ok(status)
    }

    /// Checks the recorded history of one set; returns its pending migrations.
    fn check_history(&self, set: &MigrationSet, done: &[AppliedRow]) -> Result<Vec<Migration>> {
        let known_max = set.migrations.last().map_or(0, |m| m.version);
        if let Some(db_max) = done.iter().map(|r| r.version).max() {
            if db_max > known_max {
                return Err(StoreError::SchemaTooNew {
                    component: set.component.to_string(),
                    db_version: db_max,
                    binary_version: known_max,
                });
            }
        }
        for row in done {
            let Some(m) = set.migrations.iter().find(|m| m.version == row.version) else {
                return Err(StoreError::Migration {
                    component: set.component.to_string(),
                    message: format!(
                        "database has version {} '{}' which this binary does not have",
                        row.version, row.name
                    ),
                });
            };
            let binary_checksum = m.checksum(self.backend);
            if binary_checksum != row.checksum {
                return Err(StoreError::ChecksumMismatch {
                    component: set.component.to_string(),
                    version: m.version,
                    name: m.name.to_string(),
                    db_checksum: row.checksum.clone(),
                    binary_checksum,
                });
            }
        }
        let done_max = done.iter().map(|r| r.version).max().unwrap_or(0);
        let pending: Vec<Migration> = set
            .migrations
            .iter()
            .filter(|m| !done.iter().any(|r| r.version == m.version))
            .copied()
            .collect();
        if let Some(old) = pending.iter().find(|m| m.version < done_max) {
            return Err(StoreError::Migration {
                component: set.component.to_string(),
                message: format!(
                    "version {} '{}' is missing but the database is already at version {done_max}",
                    old.version, old.name
                ),
            });
        }
        Ok(pending)
    }

    /// Applies one migration in its own transaction; false if another
    /// process applied it meanwhile.
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        component: &str,
        migration: Migration,
    ) -> Result<bool> {
        let checksum = migration.checksum(self.backend);
        let mut tx = match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT checksum FROM schema_migrations WHERE component = $1 AND version = $2",
        )
        .bind(component)
        .bind(migration.version)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(db_checksum) = existing {
            tx.rollback().await?;
            if db_checksum != checksum {
                return Err(StoreError::ChecksumMismatch {
                    component: component.to_string(),
                    version: migration.version,
                    name: migration.name.to_string(),
                    db_checksum,
                    binary_checksum: checksum,
                });
            }
            return Ok(false);
        }
        let failed = |source| StoreError::MigrationFailed {
            component: component.to_string(),
            version: migration.version,
            name: migration.name.to_string(),
            source,
        };
        // A plain `&str` runs unprepared (simple query protocol on
        // PostgreSQL), so a migration may hold several statements.
        (&mut *tx)
            .execute(migration.sql(self.backend))
            .await
            .map_err(failed)?;
        sqlx::query(
            "INSERT INTO schema_migrations (component, version, name, checksum, applied_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(component)
        .bind(migration.version)
        .bind(migration.name)
        .bind(&checksum)
        .bind(format_timestamp(self.clock.now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await.map_err(failed)?;
        tracing::info!(
            component,
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
        Ok(true)
    }
}

/// One component's schema as [`Store::schema_status`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSchema {
    /// `core` or `extension_<name>`.
    pub component: String,
    /// Newest applied version (0: none).
    pub db_version: i64,
    /// Newest version the binary has (0 for an unknown component).
    pub binary_version: i64,
    /// Whether the binary knows the component.
    pub known: bool,
    /// The only problem is migrations not applied yet: the server would
    /// bring the schema up to date at start.
    pub pending_only: bool,
    /// What is wrong; `None` when the database matches the binary.
    pub problem: Option<String>,
}

impl ComponentSchema {
    /// A database a server of this binary would refuse to start on.
    pub fn refused(&self) -> bool {
        self.problem.is_some() && !self.pending_only
    }
}

/// The recorded migration history, by component, in version order.
async fn read_applied(conn: &mut AnyConnection) -> Result<BTreeMap<String, Vec<AppliedRow>>> {
    let rows = sqlx::query(
        "SELECT component, version, name, checksum FROM schema_migrations \
         ORDER BY component, version",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut applied: BTreeMap<String, Vec<AppliedRow>> = BTreeMap::new();
    for row in rows {
        applied
            .entry(row.try_get("component")?)
            .or_default()
            .push(AppliedRow {
                version: row.try_get("version")?,
                name: row.try_get("name")?,
                checksum: row.try_get("checksum")?,
            });
    }
    Ok(applied)
}

fn validate_sets(sets: &[MigrationSet]) -> Result<()> {
    let mut components = HashSet::new();
    for set in sets {
        let invalid = |message: String| StoreError::Migration {
            component: set.component.to_string(),
            message,
        };
        if set.component.is_empty() {
            return Err(invalid("component name is empty".into()));
        }
        if !components.insert(&*set.component) {
            return Err(invalid("component given twice".into()));
        }
        let mut previous = 0;
        for m in set.migrations {
            if m.version <= previous {
                return Err(invalid(format!(
                    "version {} '{}' must be above {previous} (versions start at 1 and increase)",
                    m.version, m.name
                )));
            }
            previous = m.version;
        }
    }
    Ok(())
}
