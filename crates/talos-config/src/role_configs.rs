//! The directory of per-role base configs, `<dir>/<role>.yaml`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use attest_proto::machine::Role;

use crate::base::{require_talos_role, BaseConfig};
use crate::error::{ConfigProblem, TalosConfigError};
use crate::render::MachinePatch;

/// Largest role config accepted. Real ones are tens of KiB; the cap keeps a
/// misplaced file (an image, a log) from being read into memory per request.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Where operators keep one base Talos config per role. Files are read on
/// every call, so edits take effect without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleConfigs {
    dir: PathBuf,
}

impl RoleConfigs {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<role>.yaml`, e.g. `worker-app.yaml`.
    pub fn path(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.yaml", role.as_str()))
    }

    /// The role's base config, `None` when its file does not exist. Errors
    /// for roles that take no Talos config, unreadable or oversized files,
    /// and content that is not a Talos v1alpha1 config fitting the role.
    /// Blocking file I/O: async callers should use `spawn_blocking`.
    pub fn load(&self, role: Role) -> Result<Option<BaseConfig>, TalosConfigError> {
        require_talos_role(role)?;
        let path = self.path(role);
        let Some(bytes) = read_capped(&path)? else {
            return Ok(None);
        };
        let invalid = |problem| TalosConfigError::Invalid {
            path: path.clone(),
            problem,
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid(ConfigProblem::NotUtf8))?;
        let base = BaseConfig::parse(text).map_err(invalid)?;
        base.check_role(role).map_err(|e| match e {
            TalosConfigError::Config(problem) => invalid(problem),
            other => other,
        })?;
        Ok(Some(base))
    }

    /// For approval time: the role's config must exist, fit the role and
    /// render, so that a broken file is reported to the operator approving
    /// the machine rather than to the machine fetching its config later.
    pub fn validate(&self, role: Role) -> Result<BaseConfig, TalosConfigError> {
        let path = self.path(role);
        let base = self
            .load(role)?
            .ok_or_else(|| TalosConfigError::Missing { path: path.clone() })?;
        // A patch touching everything render touches (documentation
        // addresses, RFC 5737 / locally administered MAC).
        let probe = MachinePatch {
            machine_id: String::new(),
            hostname: Some("validate".to_owned()),
            assigned_ip: Some("192.0.2.1/24".to_owned()),
            hw_mac: Some("02:00:00:00:00:01".to_owned()),
        };
        match base.render(&probe) {
            Ok(_) => Ok(base),
            Err(TalosConfigError::Render { problem, .. }) => {
                Err(TalosConfigError::Invalid { path, problem })
            }
            Err(other) => Err(other),
        }
    }
}

/// The file's bytes, `None` if it does not exist. Checks the type first so a
/// FIFO cannot block the caller, and caps the read itself since the file can
/// grow after the size check.
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, TalosConfigError> {
    let read_err = |source| TalosConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let too_large = || TalosConfigError::TooLarge {
        path: path.to_owned(),
        limit: MAX_CONFIG_BYTES,
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    if !meta.is_file() {
        return Err(read_err(io::Error::other("not a regular file")));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_large());
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large());
    }
    Ok(Some(bytes))
}
