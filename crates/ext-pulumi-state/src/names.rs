//! Organization, project and stack names as the Pulumi CLI validates them:
//! 1 to 100 of `A-Z a-z 0-9 _ . -`. Checked before any storage so a name
//! can never smuggle a path separator or control character into the
//! database, the logs or the deploy command's arguments.

use crate::error::PulumiError;

/// Longest name, as the CLI's own limit.
pub const MAX_NAME_LEN: usize = 100;

/// Whether `name` is a valid org, project or stack name.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `name` as `what`, or a 400 naming the rule.
pub fn check(what: &str, name: &str) -> Result<(), PulumiError> {
    if is_valid(name) {
        Ok(())
    } else {
        Err(PulumiError::BadRequest(format!(
            "invalid {what} name: use 1 to {MAX_NAME_LEN} letters, digits, '_', '.' or '-'"
        )))
    }
}

/// A stack's full identity from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRef {
    pub org: String,
    pub project: String,
    pub stack: String,
}

impl StackRef {
    /// Validated names.
    pub fn new(org: String, project: String, stack: String) -> Result<Self, PulumiError> {
        check("organization", &org)?;
        check("project", &project)?;
        check("stack", &stack)?;
        Ok(Self {
            org,
            project,
            stack,
        })
    }

    /// `org/project/stack`.
    pub fn qualified(&self) -> String {
        format!("{}/{}/{}", self.org, self.project, self.stack)
    }

    /// The 404 for this stack.
    pub fn not_found(&self) -> PulumiError {
        PulumiError::no_stack(&self.org, &self.project, &self.stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["dev", "my-project", "a.b_c-1", &"x".repeat(100)] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", "a\n", &"x".repeat(101)] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }
}
