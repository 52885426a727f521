//! Syntax of the names a certificate carries (DNS names, e-mail addresses,
//! URIs) and RFC 5280 dNSName name-constraint matching.
//!
//! Constraint bases are read as OpenSSL and Go read them: `example.com`
//! covers `example.com` and every name below it, `.example.com` only the
//! names below it; comparison ignores ASCII case.

use std::net::IpAddr;

use super::request::NameConstraints;
use crate::PkiError;

/// RFC 1035 limits.
const MAX_DNS_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;
/// Generous caps so a request cannot make a certificate of megabytes.
const MAX_EMAIL_LEN: usize = 320;
const MAX_URI_LEN: usize = 2048;
/// Most subtrees one CA may carry in each list.
const MAX_SUBTREES: usize = 256;

/// Checks a dNSName SAN: letters, digits and `-` in dot-separated labels,
/// with `*` allowed as the whole leftmost label (`*.example.com`).
pub(crate) fn check_dns_name(name: &str) -> Result<(), PkiError> {
    let host = name.strip_prefix("*.").unwrap_or(name);
    hostname_problem(host).map_or(Ok(()), |why| {
        Err(PkiError::InvalidName(format!("DNS name {name:?}: {why}")))
    })
}

/// Checks an rfc822Name SAN: `local@domain`, the domain a host name.
pub(crate) fn check_email(email: &str) -> Result<(), PkiError> {
    let bad = |why: &str| PkiError::InvalidName(format!("e-mail address {email:?}: {why}"));
    if email.len() > MAX_EMAIL_LEN {
        return Err(bad("too long"));
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(|| bad("no '@'"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(bad("the local part must be 1..=64 characters"));
    }
    // RFC 5321 atoms and dots; quoted local parts are not worth the risk.
    let atom = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b);
    if !local.bytes().all(atom) || local.starts_with('.') || local.ends_with('.') {
        return Err(bad("invalid local part"));
    }
    if let Some(why) = hostname_problem(domain) {
        return Err(bad(&format!("domain: {why}")));
    }
    Ok(())
}

/// Checks a URI (a SAN, or a CRL/OCSP/CA-issuers location): an RFC 3986
/// scheme, `:`, and a non-empty rest of printable ASCII without spaces.
pub(crate) fn check_uri(uri: &str, what: &str) -> Result<(), PkiError> {
    let bad = |why: &str| PkiError::InvalidName(format!("{what} {uri:?}: {why}"));
    if uri.len() > MAX_URI_LEN {
        return Err(bad("too long"));
    }
    let (scheme, rest) = uri.split_once(':').ok_or_else(|| bad("no scheme"))?;
    let mut chars = scheme.bytes();
    let scheme_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic())
        && chars.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(bad("invalid scheme"));
    }
    if rest.is_empty() {
        return Err(bad("nothing after the scheme"));
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("only printable ASCII without spaces is allowed"));
    }
    Ok(())
}

/// Checks a location URL of a CRL distribution point or an AIA entry:
/// `http`, `https` or `ldap` with a host.
pub(crate) fn check_location_url(url: &str, what: &str) -> Result<(), PkiError> {
    check_uri(url, what)?;
    let lower = url.to_ascii_lowercase();
    let host_part = ["http://", "https://", "ldap://"]
        .iter()
        .find_map(|prefix| lower.strip_prefix(prefix))
        .ok_or_else(|| {
            PkiError::InvalidName(format!(
                "{what} {url:?}: must be an http, https or ldap URL"
            ))
        })?;
    if host_part.is_empty() || host_part.starts_with('/') {
        return Err(PkiError::InvalidName(format!("{what} {url:?}: no host")));
    }
    Ok(())
}

/// Validates the constraint lists: each base a host name, optionally with
/// a leading dot, no wildcards.
pub(crate) fn check_constraints(nc: &NameConstraints) -> Result<(), PkiError> {
    for (list, what) in [
        (&nc.permitted_dns, "permitted"),
        (&nc.excluded_dns, "excluded"),
    ] {
        if list.len() > MAX_SUBTREES {
            return Err(PkiError::InvalidName(format!(
                "more than {MAX_SUBTREES} {what} DNS subtrees"
            )));
        }
        for base in list {
            let host = base.strip_prefix('.').unwrap_or(base);
            if let Some(why) = hostname_problem(host) {
                return Err(PkiError::InvalidName(format!(
                    "{what} DNS subtree {base:?}: {why}"
                )));
            }
        }
    }
    Ok(())
}

/// Refuses `name` (a checked dNSName, maybe a wildcard) unless the CA's
/// constraints allow every name it can stand for.
pub(crate) fn check_against(name: &str, nc: &NameConstraints) -> Result<(), PkiError> {
    if !nc.permitted_dns.is_empty() && !nc.permitted_dns.iter().any(|b| covered(name, b)) {
        return Err(PkiError::NameConstraintViolation(format!(
            "DNS name {name:?} is outside the issuing CA's permitted subtrees ({})",
            nc.permitted_dns.join(", ")
        )));
    }
    if let Some(base) = nc.excluded_dns.iter().find(|b| overlaps(name, b)) {
        return Err(PkiError::NameConstraintViolation(format!(
            "DNS name {name:?} falls in the issuing CA's excluded subtree {base:?}"
        )));
    }
    Ok(())
}

/// The constraints a child CA gets: its own permitted subtrees, which must
/// each lie within one of the parent's (the parent's when it names none);
/// its own excluded subtrees plus the parent's. Copying the parent's keeps
/// every CA's certificate enough on its own to decide what it may sign.
pub(crate) fn child_constraints(
    parent: Option<&NameConstraints>,
    requested: Option<&NameConstraints>,
) -> Result<Option<NameConstraints>, PkiError> {
    let empty = NameConstraints::default();
    let parent = parent.unwrap_or(&empty);
    let requested = requested.unwrap_or(&empty);
    check_constraints(requested)?;
    for base in &requested.permitted_dns {
        if !parent.permitted_dns.is_empty()
            && !parent.permitted_dns.iter().any(|p| subtree_within(base, p))
        {
            return Err(PkiError::NameConstraintViolation(format!(
                "permitted subtree {base:?} is not within the parent CA's permitted subtrees ({})",
                parent.permitted_dns.join(", ")
            )));
        }
        if let Some(excluded) = parent.excluded_dns.iter().find(|e| subtree_within(base, e)) {
            return Err(PkiError::NameConstraintViolation(format!(
                "permitted subtree {base:?} lies in the parent CA's excluded subtree {excluded:?}"
            )));
        }
    }
    let permitted_dns = if requested.permitted_dns.is_empty() {
        parent.permitted_dns.clone()
    } else {
        requested.permitted_dns.clone()
    };
    let mut excluded_dns = requested.excluded_dns.clone();
    for base in &parent.excluded_dns {
        if !excluded_dns.iter().any(|e| e.eq_ignore_ascii_case(base)) {
            excluded_dns.push(base.clone());
        }
    }
    let merged = NameConstraints {
        permitted_dns,
        excluded_dns,
    };
    check_constraints(&merged)?;
    Ok((!merged.is_empty()).then_some(merged))
}

/// A CN that reads as a host name (it has a dot and only LDH labels, or is
/// a wildcard); such CNs are held to the DNS constraints too, since
/// OpenSSL checks them when a certificate has no DNS SAN.
pub(crate) fn cn_as_hostname(cn: &str) -> Option<&str> {
    (cn.contains('.') && check_dns_name(cn).is_ok() && cn.parse::<IpAddr>().is_err()).then_some(cn)
}

/// Why `host` is not a host name, if it is not.
fn hostname_problem(host: &str) -> Option<&'static str> {
    if host.is_empty() {
        return Some("empty");
    }
    if host.len() > MAX_DNS_LEN {
        return Some("longer than 253 characters");
    }
    if host.parse::<IpAddr>().is_ok() {
        return Some("an IP address is not a DNS name");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Some("empty label");
        }
        if label.len() > MAX_LABEL_LEN {
            return Some("label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Some("only letters, digits and '-' are allowed in labels ('*' only as the whole leftmost label)");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label starts or ends with '-'");
        }
    }
    None
}

/// `s` ends with `suffix`, ignoring ASCII case.
fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Whether the concrete name `name` lies in the subtree `base`.
fn in_subtree(name: &str, base: &str) -> bool {
    if base.starts_with('.') {
        return name.len() > base.len() && ends_with_ci(name, base);
    }
    if name.eq_ignore_ascii_case(base) {
        return true;
    }
    name.len() > base.len()
        && ends_with_ci(name, base)
        && name.as_bytes()[name.len() - base.len() - 1] == b'.'
}

/// Whether every name `name` stands for lies in `base`: for `*.S`, every
/// `x.S` does exactly when `S` lies in the base read without its dot.
fn covered(name: &str, base: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => in_subtree(parent, base.strip_prefix('.').unwrap_or(base)),
        None => in_subtree(name, base),
    }
}

/// Whether some name `name` stands for lies in `base`. A wildcard `*.S`
/// also reaches an excluded `l.S` (one label more) itself.
fn overlaps(name: &str, base: &str) -> bool {
    if covered(name, base) {
        return true;
    }
    let Some(parent) = name.strip_prefix("*.") else {
        return false;
    };
    if base.starts_with('.') || !ends_with_ci(base, parent) || base.len() <= parent.len() + 1 {
        return false;
    }
    let label = &base[..base.len() - parent.len()];
    label.ends_with('.') && !label[..label.len() - 1].contains('.')
}

/// Whether every name of subtree `child` lies in subtree `parent`.
fn subtree_within(child: &str, parent: &str) -> bool {
    match child.strip_prefix('.') {
        Some(domain) => in_subtree(domain, parent.strip_prefix('.').unwrap_or(parent)),
        None => in_subtree(child, parent),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn nc(permitted: &[&str], excluded: &[&str]) -> NameConstraints {
        NameConstraints {
            permitted_dns: permitted.iter().map(|s| s.to_string()).collect(),
            excluded_dns: excluded.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn dns_name_syntax() {
        for ok in [
            "example.com",
            "a-b.example.com",
            "*.example.com",
            "localhost",
            "X1.Example.COM",
        ] {
            check_dns_name(ok).unwrap();
        }
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", ["a"; 127].join("."));
        for bad in [
            "",
            ".",
            "example..com",
            ".example.com",
            "example.com.",
            "-a.com",
            "a-.com",
            "a_b.com",
            "*",
            "*.",
            "a.*.com",
            "**.com",
            "*a.com",
            "exa mple.com",
            "é.com",
            "10.0.0.1",
            "::1",
            &long_label,
            &long_name,
        ] {
            assert!(
                matches!(check_dns_name(bad), Err(PkiError::InvalidName(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn email_and_uri_syntax() {
        check_email("ops@example.com").unwrap();
        check_email("first.last+tag@sub.example.com").unwrap();
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "a b@example.com",
            "ops@exa_mple.com",
            ".a@x.com",
            "ops@*.example.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?} accepted");
        }
        check_uri("spiffe://cluster.local/ns/default/sa/web", "URI").unwrap();
        check_uri("urn:uuid:2f6e9b1c-0000-4000-8000-000000000000", "URI").unwrap();
        for bad in [
            "",
            "no-scheme",
            "1http://x",
            "http:",
            "http://a b",
            "http://é",
        ] {
            assert!(check_uri(bad, "URI").is_err(), "{bad:?} accepted");
        }
        check_location_url("http://crl.example.com/ca.crl", "CRL URL").unwrap();
        check_location_url("ldap://dir.example.com/cn=CA", "CRL URL").unwrap();
        for bad in [
            "ftp://x/ca.crl",
            "http:///ca.crl",
            "http://",
            "mailto:a@b.c",
        ] {
            assert!(
                check_location_url(bad, "CRL URL").is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn permitted_subtrees_read_like_openssl() {
        let c = nc(&["example.com", ".corp.test"], &[]);
        for ok in [
            "example.com",
            "a.example.com",
            "A.B.EXAMPLE.COM",
            "*.example.com",
            "x.corp.test",
            "*.corp.test",
            "*.a.corp.test",
        ] {
            check_against(ok, &c).unwrap();
        }
        for bad in [
            "badexample.com",
            "example.org",
            "corp.test",
            "*.test",
            "*.com",
            "com",
        ] {
            assert!(
                matches!(
                    check_against(bad, &c),
                    Err(PkiError::NameConstraintViolation(_))
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn excluded_subtrees_catch_wildcards_that_could_match_them() {
        let c = nc(
            &["example.com"],
            &["secret.example.com", ".internal.example.com"],
        );
        check_against("www.example.com", &c).unwrap();
        check_against("internal.example.com", &c).unwrap();
        // `*.internal.example.com` stands only for names below the excluded base's domain.
        for bad in [
            "secret.example.com",
            "a.secret.example.com",
            "*.secret.example.com",
            "*.example.com",
            "x.internal.example.com",
            "*.internal.example.com",
        ] {
            assert!(
                matches!(
                    check_against(bad, &c),
                    Err(PkiError::NameConstraintViolation(_))
                ),
                "{bad:?} accepted"
            );
        }
        // A wildcard one level up cannot stand for a two-label-deeper excluded name.
        let c = nc(&[], &["a.b.example.com"]);
        check_against("*.example.com", &c).unwrap();
        assert!(check_against("*.b.example.com", &c).is_err());
    }

    #[test]
    fn child_subtrees_must_lie_within_the_parents() {
        let parent = nc(&["example.com", ".corp.test"], &["secret.example.com"]);
        let ok = nc(
            &[
                "dev.example.com",
                ".example.com",
                "a.corp.test",
                ".b.corp.test",
            ],
            &["x.dev.example.com"],
        );
        let child = child_constraints(Some(&parent), Some(&ok))
            .unwrap()
            .unwrap();
        assert_eq!(child.permitted_dns, ok.permitted_dns);
        assert_eq!(
            child.excluded_dns,
            vec!["x.dev.example.com", "secret.example.com"]
        );
        for bad in [
            &["example.org"][..],
            &["corp.test"],
            &["com"],
            &["secret.example.com"],
            &["a.secret.example.com"],
        ] {
            assert!(
                matches!(
                    child_constraints(Some(&parent), Some(&nc(bad, &[]))),
                    Err(PkiError::NameConstraintViolation(_))
                ),
                "{bad:?} accepted"
            );
        }
        // No request: the parent's constraints are carried down.
        assert_eq!(
            child_constraints(Some(&parent), None).unwrap().unwrap(),
            parent
        );
        // Unconstrained parent: anything valid goes, nothing is empty.
        assert_eq!(child_constraints(None, None).unwrap(), None);
        assert_eq!(child_constraints(None, Some(&nc(&[], &[]))).unwrap(), None);
        assert!(child_constraints(None, Some(&nc(&["*.example.com"], &[]))).is_err());
    }

    #[test]
    fn cn_is_a_hostname_only_when_it_looks_like_one() {
        assert_eq!(cn_as_hostname("web.example.com"), Some("web.example.com"));
        assert_eq!(cn_as_hostname("*.example.com"), Some("*.example.com"));
        assert_eq!(cn_as_hostname("My Service"), None);
        assert_eq!(cn_as_hostname("localhost"), None);
        assert_eq!(cn_as_hostname("10.0.0.1"), None);
    }
}
