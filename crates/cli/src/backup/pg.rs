//! PostgreSQL backups through the PostgreSQL client tools, as documented
//! in `docs/reliability.md` ("Backups"):
//!
//! ```text
//! pg_dump    --format=custom --no-owner --no-privileges --file=database.pgdump --dbname=URL
//! pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname=URL database.pgdump
//! ```
//!
//! `pg_dump` takes its copy inside one repeatable-read transaction, so the
//! dump is consistent while the server keeps writing. The password never
//! appears on a command line (which other local users can read): it is
//! removed from the URL and passed in `PGPASSWORD`.

use std::path::Path;
use std::process::Command;

use attest_store::backup::pg_tool_target;
use attest_store::Store;

use super::BackupError;

/// `pg_dump` of the database at `url` into `file` (mode 0600).
pub fn dump(url: &str, file: &Path) -> Result<(), BackupError> {
    let target = pg_tool_target(url)?;
    let mut command = Command::new("pg_dump");
    command
        .args(["--format=custom", "--no-owner", "--no-privileges"])
        .arg(format!("--file={}", file.display()))
        .arg(format!("--dbname={}", target.url));
    run(command, target.password.as_deref(), "pg_dump")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| BackupError::io(file, e))?;
    }
    Ok(())
}

/// `pg_restore` of `file` into the database at `url`, which must hold no
/// tables unless `force` (then the dump's objects replace existing ones).
pub async fn restore(url: &str, file: &Path, force: bool) -> Result<(), BackupError> {
    let tables = table_count(url).await?;
    if tables > 0 && !force {
        return Err(BackupError::NotEmpty(format!(
            "the database {} already holds {tables} tables",
            attest_store::redacted_url(url)
        )));
    }
    let target = pg_tool_target(url)?;
    let mut command = Command::new("pg_restore");
    command.args([
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
    ]);
    if force {
        command.args(["--clean", "--if-exists"]);
    }
    command.arg(format!("--dbname={}", target.url)).arg(file);
    run(command, target.password.as_deref(), "pg_restore")
}

/// Tables in the database's `public` schema.
async fn table_count(url: &str) -> Result<i64, BackupError> {
    let store = Store::connect(url).await?;
    let count: i64 = attest_store::sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(store.pool())
    .await
    .map_err(attest_store::StoreError::from)?;
    store.close().await;
    Ok(count)
}

fn run(mut command: Command, password: Option<&str>, tool: &str) -> Result<(), BackupError> {
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command.output().map_err(|e| {
        BackupError::Tool(format!(
            "cannot run {tool} ({e}); install the PostgreSQL client tools of the server's major version"
        ))
    })?;
    if !output.status.success() {
        return Err(BackupError::Tool(format!(
            "{tool} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}
