//! Who a request comes from, for rate limiting.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address block, `10.0.0.0/8` or `2001:db8::/32` (a bare address is
/// a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// True if `ip` is in the block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| format!("`{s}` is not an address or CIDR block"))?,
        );
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix must be 0-{max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// How the source of a request is found.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Clients never limited (monitoring, a provisioning network).
    pub exempt: Vec<Cidr>,
}

impl Sources {
    /// The rate-limit key of a request from `peer`, `None` for an exempt
    /// client. Behind a trusted proxy the client is the right-most
    /// `X-Forwarded-For` address that is not itself a trusted proxy (what
    /// the nearest untrusted hop said cannot be forged by the client). An
    /// IPv6 client counts per /64, which one host can freely pick from.
    pub fn key(&self, peer: IpAddr, headers: &HeaderMap) -> Option<String> {
        let mut client = canonical(peer);
        if self.trusted(client) {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect::<Vec<_>>();
            for hop in forwarded.iter().rev() {
                let Ok(ip) = hop.parse::<IpAddr>() else {
                    break;
                };
                client = canonical(ip);
                if !self.trusted(client) {
                    break;
                }
            }
        }
        if self.exempt.iter().any(|c| c.contains(client)) {
            return None;
        }
        Some(match client {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & (u128::MAX << 64);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        })
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn cidr_blocks() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let one: Cidr = "2001:db8::1".parse().unwrap();
        assert!(one.contains("2001:db8::1".parse().unwrap()));
        assert!(!one.contains("2001:db8::2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_behind_trusted_proxies_and_exemptions() {
        let s = Sources {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            exempt: vec!["192.0.2.0/24".parse().unwrap()],
        };
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        // The right-most untrusted hop, whatever the client prepended.
        assert_eq!(
            s.key(peer, &headers("1.1.1.1, 203.0.113.9, 10.0.0.7")),
            Some("203.0.113.9".into())
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            s.key("203.0.113.1".parse().unwrap(), &headers("1.1.1.1")),
            Some("203.0.113.1".into())
        );
        assert_eq!(s.key(peer, &headers("192.0.2.8")), None, "exempt");
        assert_eq!(s.key(peer, &HeaderMap::new()), Some("10.0.0.5".into()));
        // IPv6 clients count per /64.
        assert_eq!(
            s.key("2001:db8:1:2:3:4:5:6".parse().unwrap(), &HeaderMap::new()),
            Some("2001:db8:1:2::/64".into())
        );
    }
}
