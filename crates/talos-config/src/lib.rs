//! Talos MachineConfig delivery: the per-role base configs operators keep on
//! disk, the per-machine patch applied on top of them, and the secret-free
//! config handed to machines that are not approved yet.
//!
//! Configs are edited as parsed YAML values, never as text, so a hostname or
//! address can never inject YAML and comments or odd formatting in the base
//! cannot confuse the patching.

mod base;
mod error;
mod pending;
mod render;
mod role_configs;
mod yaml;

pub use base::BaseConfig;
pub use error::{ConfigProblem, MachineType, TalosConfigError};
pub use pending::{pending_config, PENDING_LABEL, PENDING_LABEL_VALUE};
pub use render::MachinePatch;
pub use role_configs::{RoleConfigs, MAX_CONFIG_BYTES};
