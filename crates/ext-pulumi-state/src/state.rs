//! Router state shared by every handler.

use attest_ext::sealing::MasterKey;
use attest_ext::{ExtensionContext, HasContext};

use crate::config::PulumiSettings;
use crate::runner::Runner;

/// The host context, the settings, the master key and the deploy runner.
#[derive(Debug)]
pub struct PulumiState {
    pub ctx: ExtensionContext,
    pub settings: PulumiSettings,
    pub master: MasterKey,
    pub runner: Runner,
}

impl HasContext for PulumiState {
    fn context(&self) -> &ExtensionContext {
        &self.ctx
    }
}

impl PulumiState {
    /// Now, in Unix milliseconds, from the host clock.
    pub fn now_ms(&self) -> i64 {
        self.ctx.clock.now().timestamp_millis()
    }

    /// Now, in Unix seconds (Pulumi's `startTime`/`endTime`).
    pub fn now_secs(&self) -> i64 {
        self.ctx.clock.now().timestamp()
    }

    /// Now, in the core's fixed-width UTC text form.
    pub fn now_text(&self) -> String {
        attest_domain::audit::format_timestamp(self.ctx.clock.now())
    }
}
