//! Real security data for patches: CVE ids from package changelogs, and
//! severities from the distribution's own data. Nothing is guessed: where
//! no data names a severity it is `unknown`.

pub mod changelog;
pub mod debian_tracker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_proto::patch::Severity;
use tokio::sync::Mutex;

use crate::config::SecurityDataConfig;
use debian_tracker::Tracker;

/// Default reuse time of a downloaded tracker file.
const DEFAULT_CACHE: Duration = Duration::from_secs(6 * 3600);

/// Access to the configured security data.
#[derive(Debug)]
pub struct SecurityData {
    config: SecurityDataConfig,
    release: String,
    cache: Mutex<Option<(Instant, Arc<Tracker>)>>,
}

impl SecurityData {
    /// `release`: the codename to read (os-release `VERSION_CODENAME`),
    /// unless the configuration names one.
    pub fn new(config: SecurityDataConfig, release: &str) -> Self {
        let release = config.release.clone().unwrap_or_else(|| release.to_owned());
        Self {
            config,
            release,
            cache: Mutex::new(None),
        }
    }

    /// Severity of an update of source package `source` fixing `cves`: the
    /// highest urgency the tracker gives them for this release, `unknown`
    /// without tracker data.
    pub async fn debian_severity(&self, source: &str, cves: &[String]) -> Severity {
        let Some(tracker) = self.tracker().await else {
            return Severity::Unknown;
        };
        tracker.severity(source, cves, &self.release)
    }

    async fn tracker(&self) -> Option<Arc<Tracker>> {
        let location = self.config.debian_tracker.as_ref()?;
        let max_age = self
            .config
            .cache_seconds
            .map_or(DEFAULT_CACHE, Duration::from_secs);
        let mut cache = self.cache.lock().await;
        if let Some((at, tracker)) = cache.as_ref() {
            if at.elapsed() < max_age {
                return Some(tracker.clone());
            }
        }
        match load(location).await {
            Ok(tracker) => {
                let tracker = Arc::new(tracker);
                *cache = Some((Instant::now(), tracker.clone()));
                Some(tracker)
            }
            Err(e) => {
                tracing::warn!(source = %location, error = %e, "Debian security tracker data unavailable; severities are unknown");
                // Keep serving the last good copy, if any.
                cache.as_ref().map(|(_, t)| t.clone())
            }
        }
    }
}

async fn load(location: &str) -> Result<Tracker, String> {
    let bytes = if location.starts_with("https://") || location.starts_with("http://") {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client
            .get(location)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        resp.bytes().await.map_err(|e| e.to_string())?.to_vec()
    } else {
        tokio::fs::read(location).await.map_err(|e| e.to_string())?
    };
    tokio::task::spawn_blocking(move || Tracker::parse(&bytes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
