//! Server-side request forgery guard.
//!
//! A webhook URL is operator input, but the server usually sits inside a
//! trusted network: without a guard a webhook could probe or poke internal
//! services (cloud metadata at 169.254.169.254, databases, admin ports).
//! Literal addresses are refused when a webhook is saved; host names are
//! checked on every delivery by [`GuardedResolver`], which hands reqwest
//! only addresses that passed the check, so the connection goes to exactly
//! the address that was checked (no DNS-rebinding window).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is outside the public unicast internet: loopback, private
/// (RFC 1918), link-local, unique-local, CGNAT, unspecified, multicast,
/// broadcast, documentation, benchmarking or reserved. IPv6 addresses that
/// embed an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are
/// judged by the embedded address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network" 0.0.0.0/8
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240 // reserved 240.0.0.0/4
        || ip.is_documentation()
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let seg = ip.segments();
    // Transition addresses carry an IPv4 address that a relay or gateway
    // forwards to, so they are judged by it: otherwise `2002:7f00:1::`
    // (6to4 of 127.0.0.1) or `64:ff9b::a9fe:a9fe` (NAT64 of the metadata
    // service) would pass as "public IPv6".
    let embedded = embedded_v4(seg);
    if !embedded.is_empty() {
        return embedded.into_iter().any(forbidden_v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation 2001:db8::/32
        || (seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001) // local-use NAT64 64:ff9b:1::/48
        || seg[..4] == [0x0100, 0, 0, 0] // discard-only 100::/64
}

/// The IPv4 addresses an IPv6 transition address stands for (empty for
/// any other address):
///
/// - IPv4-compatible `::a.b.c.d` (deprecated; not `::` or `::1`) and NAT64
///   `64:ff9b::a.b.c.d` (RFC 6052): the last 32 bits;
/// - 6to4 `2002:AABB:CCDD::/48` (RFC 3056): bits 16..48;
/// - Teredo `2001:0::/32` (RFC 4380): the server in bits 32..64, and the
///   client in the last 32 bits, stored inverted (XOR 0xffffffff).
fn embedded_v4(seg: [u16; 8]) -> Vec<Ipv4Addr> {
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let compatible = seg[..6] == [0; 6] && (seg[6] != 0 || seg[7] > 1);
    let nat64 = seg[..6] == [0x0064, 0xff9b, 0, 0, 0, 0];
    if compatible || nat64 {
        vec![v4(seg[6], seg[7])]
    } else if seg[0] == 0x2002 {
        vec![v4(seg[1], seg[2])]
    } else if seg[0] == 0x2001 && seg[1] == 0 {
        vec![v4(seg[2], seg[3]), v4(!seg[6], !seg[7])]
    } else {
        Vec::new()
    }
}

/// The literal IP address in a URL host (`10.0.0.1`, `[::1]`), if it is one.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Why a target was refused, worded for the delivery record.
pub fn refusal(host: &str) -> String {
    format!(
        "refused by SSRF guard: {host} is not a public address \
         (set ITL_WEBHOOK_ALLOW_PRIVATE_TARGETS=true to allow)"
    )
}

/// A resolver that drops every non-public address (unless allowed) and
/// fails when none is left.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| allow_private || !is_forbidden(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(refusal(&host).into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn classifies_addresses() {
        for bad in [
            "127.0.0.1",
            "127.5.5.5",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_forbidden(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_forbidden(ok.parse().unwrap()), "{ok}");
        }
    }

    /// 6to4, Teredo, NAT64 and IPv4-compatible addresses are judged by
    /// the IPv4 address they lead to.
    #[test]
    fn classifies_transition_addresses_by_their_ipv4() {
        for bad in [
            // 6to4 2002:AABB:CCDD::/48: bits 16..48.
            "2002:7f00:1::",          // 127.0.0.1
            "2002:a00:1::1",          // 10.0.0.1
            "2002:a9fe:a9fe:1::abcd", // 169.254.169.254
            "2002:c0a8:101::",        // 192.168.1.1
            "2002:6440:1::",          // 100.64.0.1 (CGNAT)
            // Teredo 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC, client inverted.
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // client 127.0.0.1
            "2001:0:4136:e378::f5ff:fffe",          // client 10.0.0.1
            "2001:0:4136:e378::5601:5601",          // client 169.254.169.254
            "2001:0:c0a8:101::f7f7:f7f7",           // server 192.168.1.1
            "2001:0:7f00:1::f7f7:f7f7",             // server 127.0.0.1
            // NAT64, well-known prefix and local-use prefix.
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::808:808",
            // IPv4-compatible (deprecated).
            "::a00:1",
            "::7f00:1",
            // Discard-only.
            "100::1",
        ] {
            assert!(is_forbidden(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "2002:808:808::1",                      // 6to4 of 8.8.8.8
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo: server 65.54.227.120, client 8.8.8.8
            // The client bits are inverted: raw 7f00:0001 is client
            // 128.255.255.254, a public address, not loopback.
            "2001:0:4136:e378::7f00:1",
            "64:ff9b::808:808",
            "::808:808",
            "2001:4860:4860::8888", // 2001::/16 outside Teredo's /32
        ] {
            assert!(!is_forbidden(ok.parse().unwrap()), "{ok}");
        }
    }

    #[test]
    fn literal_hosts() {
        assert_eq!(literal_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal_ip("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(literal_ip("example.com"), None);
    }

    #[tokio::test]
    async fn resolver_refuses_localhost_unless_allowed() {
        let name: Name = "localhost".parse().unwrap();
        let refused = GuardedResolver {
            allow_private: false,
        }
        .resolve(name)
        .await;
        let err = refused.err().unwrap().to_string();
        assert!(err.contains("SSRF"), "{err}");
        let name: Name = "localhost".parse().unwrap();
        let allowed = GuardedResolver {
            allow_private: true,
        }
        .resolve(name)
        .await
        .unwrap();
        assert!(allowed.count() > 0);
    }
}
