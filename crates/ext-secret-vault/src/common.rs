//! Pieces both route sets share: router state, input validation, the
//! redacted secret-value type, timestamps and operation counting.

use std::sync::Arc;

use attest_ext::http::ApiError;
use attest_ext::store::sqlx;
use attest_ext::store::StoreError;
use attest_ext::telemetry::families;
use attest_ext::{ExtensionContext, HasContext};
use attest_proto::error::LocItem;
pub use attest_proto::secret_vault::SecretValue;

use attest_ext::MasterKey;

/// Longest secret name, in characters (the seed's `VARCHAR(128)`).
pub const MAX_NAME_CHARS: usize = 128;
/// Longest shared-secret description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 512;
/// Largest secret value, in characters: secrets are keys and tokens, not
/// files. Counted in characters, as the OpenAPI `maxLength` counts.
pub const MAX_VALUE_CHARS: usize = 64 * 1024;

/// Router state: the host context and the server's master key (a copy of
/// `ctx.master_key`, named for the handlers).
#[derive(Debug)]
pub struct VaultState {
    pub ctx: ExtensionContext,
    pub master: MasterKey,
}

impl HasContext for VaultState {
    fn context(&self) -> &ExtensionContext {
        &self.ctx
    }
}

/// Shared router state.
pub type State = Arc<VaultState>;

fn invalid(field: &str, msg: String) -> ApiError {
    ApiError::invalid(
        "value_error",
        vec![LocItem::from("body"), LocItem::from(field)],
        msg,
    )
}

/// A secret name: 1–128 characters, no control characters, not
/// surrounded by whitespace (names appear in URLs and CLI arguments).
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
        || name.trim() != name
    {
        return Err(invalid(
            "name",
            format!(
                "name must be 1 to {MAX_NAME_CHARS} characters, without control characters \
                 or surrounding whitespace"
            ),
        ));
    }
    Ok(())
}

/// A secret value: non-empty and at most [`MAX_VALUE_CHARS`].
pub fn validate_value(value: &SecretValue) -> Result<(), ApiError> {
    let len = value.expose().chars().count();
    if len == 0 || len > MAX_VALUE_CHARS {
        return Err(invalid(
            "value",
            format!("value must be 1 to {MAX_VALUE_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A description: at most 512 characters, no control characters except
/// newlines and tabs.
pub fn validate_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS
        || description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

/// The host clock's now, in the core's fixed-width UTC text form.
pub fn now(ctx: &ExtensionContext) -> String {
    attest_domain::audit::format_timestamp(ctx.clock.now())
}

/// A fresh id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A raw sqlx error as an API error (store errors convert already).
pub fn db(err: sqlx::Error) -> ApiError {
    ApiError::from(StoreError::from(err))
}

/// Counts `operation` as success or error, then passes `result` through.
pub fn counted<T>(
    ctx: &ExtensionContext,
    operation: &str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let status = if result.is_ok() { "success" } else { "error" };
    ctx.telemetry
        .incr(&families::SECRET_OPERATIONS, &[operation, status]);
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["disk-key", "prod k8s token", &"x".repeat(128), "ключ"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", " lead", "trail ", "a\nb", "a\u{7f}", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_are_redacted() {
        let v: SecretValue = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(format!("{v:?}"), "[redacted]");
        assert_eq!(v.expose(), "hunter2");
        assert!(validate_value(&v).is_ok());
        let empty: SecretValue = serde_json::from_str("\"\"").unwrap();
        assert!(validate_value(&empty).is_err());
    }
}
