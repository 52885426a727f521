//! What the host says about itself in `POST /api/v1/enroll`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use attest_proto::host_enroll::OsDetails;

use super::EnrollError;
use crate::config::AgentConfig;
use crate::packages::os_release::OsRelease;

/// Values given on the command line instead of detected ones.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub fqdn: Option<String>,
    pub ip_address: Option<IpAddr>,
    pub machine_id_file: Option<PathBuf>,
}

/// The detected identity.
#[derive(Debug, Clone)]
pub struct Facts {
    pub machine_id: String,
    pub fqdn: String,
    pub ip_address: IpAddr,
    pub os_details: OsDetails,
}

fn read(path: &std::path::Path) -> Result<String, EnrollError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| EnrollError::Usage(format!("{}: {e}", path.display())))
}

/// A host name as DNS allows it.
pub fn valid_fqdn(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The address this host uses to reach the manager: a UDP socket
/// "connected" to it (no packet is sent) shows the source address the
/// kernel picks. That is the address the manager will see.
async fn route_address(manager: &reqwest::Url) -> Option<IpAddr> {
    let host = manager
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = manager.port_or_known_default().unwrap_or(443);
    let target: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .ok()?
        .next()?;
    let bind: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(bind).await.ok()?;
    sock.connect(target).await.ok()?;
    sock.local_addr().ok().map(|a| a.ip())
}

/// Detects the identity, applying the overrides.
pub async fn detect(
    config: &AgentConfig,
    overrides: &Overrides,
    manager: &reqwest::Url,
) -> Result<Facts, EnrollError> {
    let machine_id_file = overrides
        .machine_id_file
        .clone()
        .or_else(|| config.enroll.machine_id_file.clone())
        .unwrap_or_else(|| PathBuf::from("/etc/machine-id"));
    let machine_id = read(&machine_id_file)?;
    if machine_id.len() != 32 || !machine_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EnrollError::Usage(format!(
            "{}: not a machine id (32 hex digits)",
            machine_id_file.display()
        )));
    }
    let fqdn = match &overrides.fqdn {
        Some(f) => f.clone(),
        None => {
            let host = read(std::path::Path::new("/proc/sys/kernel/hostname"))?;
            let domain =
                read(std::path::Path::new("/proc/sys/kernel/domainname")).unwrap_or_default();
            if host.contains('.') || domain.is_empty() || domain == "(none)" {
                host
            } else {
                format!("{host}.{domain}")
            }
        }
    };
    if !valid_fqdn(&fqdn) {
        return Err(EnrollError::Usage(format!(
            "{fqdn:?} is not a valid host name (use --fqdn)"
        )));
    }
    let ip_address = match overrides.ip_address {
        Some(ip) => ip,
        None => route_address(manager).await.ok_or_else(|| {
            EnrollError::Usage(
                "cannot find the address used to reach the manager (use --ip-address)".into(),
            )
        })?,
    };
    let os = OsRelease::parse(
        &std::fs::read_to_string(&config.roles.patch_api.os_release_file).unwrap_or_default(),
    );
    let kernel = read(std::path::Path::new("/proc/sys/kernel/osrelease")).ok();
    let some = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    Ok(Facts {
        machine_id,
        fqdn,
        ip_address,
        os_details: OsDetails {
            name: some(&os.name),
            version_id: some(&os.version_id),
            kernel,
            id_like: some(&os.id_like).or_else(|| some(&os.id)),
            extra: Default::default(),
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::valid_fqdn;

    #[test]
    fn host_names() {
        assert!(valid_fqdn("host-01.example.com"));
        assert!(valid_fqdn("localhost"));
        assert!(!valid_fqdn("-bad.example"));
        assert!(!valid_fqdn("a..b"));
        assert!(!valid_fqdn("CN=x,O=y"));
        assert!(!valid_fqdn(""));
    }
}
