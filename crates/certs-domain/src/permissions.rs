//! The canonical permission catalogue and the default roles seeded with
//! it.
//!
//! A permission is `<namespace>.<verb>` (`cert.bulk_revoke`); every
//! operation of the API names the one it requires (the routes cite these
//! constants, and the authorisation matrix test walks them). The
//! catalogue is data, so the store seeds the default roles from
//! [`DEFAULT_ROLES`] at start and `GET /api/v1/auth/permissions` lists
//! [`CATALOGUE`].

/// One permission of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// `namespace.verb`, what grants and checks name.
    pub id: &'static str,
    /// What the permission allows, for role editors.
    pub description: &'static str,
}

impl Permission {
    /// The part before the first dot (`cert`, `auth`).
    pub fn namespace(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }

    /// Whether the permission only reads (`*.list`, `*.read`), which is
    /// what the viewer and auditor roles hold.
    pub fn is_read(&self) -> bool {
        self.id.ends_with(".list") || self.id.ends_with(".read")
    }
}

macro_rules! catalogue {
    ($($name:ident = $id:literal : $doc:literal;)*) => {
        $(
            #[doc = $doc]
            pub const $name: Permission = Permission { id: $id, description: $doc };
        )*
        /// Every permission, in catalogue order.
        pub const CATALOGUE: &[Permission] = &[$($name),*];
    };
}

catalogue! {
    CERT_LIST = "cert.list": "List managed certificates.";
    CERT_READ = "cert.read": "Read a managed certificate, its versions and deployments.";
    CERT_CREATE = "cert.create": "Create a managed certificate.";
    CERT_EDIT = "cert.edit": "Update or archive a managed certificate.";
    CERT_RENEW = "cert.renew": "Renew a certificate (issue a new version).";
    CERT_REVOKE = "cert.revoke": "Revoke a certificate.";
    CERT_BULK_REVOKE = "cert.bulk_revoke": "Revoke certificates in bulk.";
    CERT_BULK_RENEW = "cert.bulk_renew": "Renew certificates in bulk.";
    CERT_BULK_REASSIGN = "cert.bulk_reassign": "Reassign the owner and team of certificates in bulk.";
    CERT_EXPORT = "cert.export": "Export a certificate chain (PEM, PKCS#12).";
    ISSUER_LIST = "issuer.list": "List issuers and intermediates.";
    ISSUER_READ = "issuer.read": "Read an issuer or intermediate.";
    ISSUER_CREATE = "issuer.create": "Create an issuer or intermediate CA.";
    ISSUER_EDIT = "issuer.edit": "Update an issuer, test it, retire an intermediate.";
    ISSUER_DELETE = "issuer.delete": "Delete an issuer.";
    PROFILE_LIST = "profile.list": "List and read certificate profiles.";
    PROFILE_CREATE = "profile.create": "Create a certificate profile.";
    PROFILE_EDIT = "profile.edit": "Update a certificate profile.";
    PROFILE_DELETE = "profile.delete": "Delete a certificate profile.";
    OWNER_LIST = "owner.list": "List and read owners.";
    OWNER_CREATE = "owner.create": "Create an owner.";
    OWNER_EDIT = "owner.edit": "Update an owner.";
    OWNER_DELETE = "owner.delete": "Delete an owner.";
    TEAM_LIST = "team.list": "List and read teams.";
    TEAM_CREATE = "team.create": "Create a team.";
    TEAM_EDIT = "team.edit": "Update a team.";
    TEAM_DELETE = "team.delete": "Delete a team.";
    RENEWAL_POLICY_LIST = "renewal_policy.list": "List and read renewal policies.";
    RENEWAL_POLICY_CREATE = "renewal_policy.create": "Create a renewal policy.";
    RENEWAL_POLICY_EDIT = "renewal_policy.edit": "Update a renewal policy.";
    RENEWAL_POLICY_DELETE = "renewal_policy.delete": "Delete a renewal policy.";
    AUDIT_LIST = "audit.list": "Read the audit trail.";
    AUTH_ROLE_LIST = "auth.role.list": "List roles, permissions and actors with grants.";
    AUTH_ROLE_CREATE = "auth.role.create": "Create a custom role.";
    AUTH_ROLE_EDIT = "auth.role.edit": "Rename a custom role; grant and revoke its permissions.";
    AUTH_ROLE_DELETE = "auth.role.delete": "Delete a custom role.";
    AUTH_ROLE_ASSIGN = "auth.role.assign": "Grant roles to actors and revoke them.";
    AUTH_KEY_CREATE = "auth.key.create": "Mint an API key.";
    AUTH_KEY_REVOKE = "auth.key.revoke": "Revoke an API key.";
}

/// A role seeded by migration: immutable through the API.
#[derive(Debug, Clone, Copy)]
pub struct DefaultRole {
    /// `r-` id.
    pub id: &'static str,
    /// Short name.
    pub name: &'static str,
    /// What the role is for.
    pub description: &'static str,
    /// Which catalogue entries it holds (all at global scope).
    pub grants: fn(&Permission) -> bool,
}

/// The id of the role whose holders are administrators.
pub const ADMIN_ROLE: &str = "r-admin";

fn all(_: &Permission) -> bool {
    true
}

fn reads(p: &Permission) -> bool {
    p.is_read() && p.namespace() != "auth"
}

fn operates(p: &Permission) -> bool {
    p.namespace() != "auth" && !p.id.ends_with(".delete")
}

fn audits(p: &Permission) -> bool {
    reads(p) || p.id == AUTH_ROLE_LIST.id
}

fn nothing(_: &Permission) -> bool {
    false
}

/// The seed's default roles (`r-admin`, `r-operator`, `r-viewer`,
/// `r-agent`, `r-mcp`, `r-cli`, `r-auditor`).
pub const DEFAULT_ROLES: &[DefaultRole] = &[
    DefaultRole {
        id: ADMIN_ROLE,
        name: "admin",
        description: "Every permission, including roles and keys.",
        grants: all,
    },
    DefaultRole {
        id: "r-operator",
        name: "operator",
        description: "Day-to-day certificate, issuer and profile work; no deletes, no RBAC.",
        grants: operates,
    },
    DefaultRole {
        id: "r-viewer",
        name: "viewer",
        description: "Read everything except RBAC.",
        grants: reads,
    },
    DefaultRole {
        id: "r-agent",
        name: "agent",
        description: "Certificate agents (their permissions come with the agents API).",
        grants: nothing,
    },
    DefaultRole {
        id: "r-mcp",
        name: "mcp",
        description: "Read-only access for tooling.",
        grants: reads,
    },
    DefaultRole {
        id: "r-cli",
        name: "cli",
        description: "The operator CLI: as operator.",
        grants: operates,
    },
    DefaultRole {
        id: "r-auditor",
        name: "auditor",
        description: "Read everything, the audit trail and the role catalogue.",
        grants: audits,
    },
];

/// The catalogue entry named `id`.
pub fn find(id: &str) -> Option<&'static Permission> {
    CATALOGUE.iter().find(|p| p.id == id)
}

/// The default role `id`, if it is one.
pub fn default_role(id: &str) -> Option<&'static DefaultRole> {
    DEFAULT_ROLES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_namespaced() {
        let mut ids: Vec<_> = CATALOGUE.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len());
        assert!(CATALOGUE.iter().all(|p| p.id.contains('.')));
        assert_eq!(CERT_BULK_REVOKE.namespace(), "cert");
        assert_eq!(AUTH_ROLE_LIST.namespace(), "auth");
    }

    #[test]
    fn default_roles_hold_what_they_say() {
        let holds = |role: &str, p: &Permission| default_role(role).is_some_and(|r| (r.grants)(p));
        assert!(CATALOGUE.iter().all(|p| holds("r-admin", p)));
        assert!(holds("r-operator", &CERT_RENEW));
        assert!(!holds("r-operator", &ISSUER_DELETE));
        assert!(!holds("r-operator", &AUTH_ROLE_ASSIGN));
        assert!(holds("r-viewer", &CERT_LIST));
        assert!(!holds("r-viewer", &CERT_RENEW));
        assert!(!holds("r-viewer", &AUTH_ROLE_LIST));
        assert!(holds("r-auditor", &AUDIT_LIST));
        assert!(holds("r-auditor", &AUTH_ROLE_LIST));
        assert!(CATALOGUE.iter().all(|p| !holds("r-agent", p)));
    }
}
