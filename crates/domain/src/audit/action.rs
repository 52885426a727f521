//! The actions the core records in the audit log. Extensions record their
//! own, dotted by area (`secret.create`, `webhook.update`).

use std::fmt;

/// A core audit action; its spelling is what `GET /api/v1/audit` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// An approval that took effect.
    Approve,
    /// A first dual-control vote.
    ApproveVote,
    /// The same operator voting again (not counted).
    ApproveVoteRepeat,
    /// A machine revoked (and possibly wiped).
    Revoke,
    /// A machine locked, by an operator or automatically.
    Lock,
    /// A machine unlocked.
    Unlock,
    /// A machine imported from an offline receipt.
    Import,
    /// An offline bundle built (config token rotated, certificate issued).
    OfflineBundle,
    /// A machine certificate issued through request-cert.
    RequestCert,
    /// An operator client certificate issued.
    IssueOperatorCert,
    /// An operator client certificate revoked.
    RevokeOperatorCert,
    /// A signed checkpoint of the audit chain taken on request.
    AuditCheckpoint,
    /// A host enrollment request approved.
    HostApprove,
    /// A host enrollment request denied.
    HostDeny,
    /// A host's certificate issued when it fetched its approved bundle.
    HostIssueCert,
    /// An enrolled host removed (its certificate revoked).
    HostRemove,
}

impl AuditAction {
    /// Every action, for documentation and tests.
    pub const ALL: [AuditAction; 16] = [
        Self::Approve,
        Self::ApproveVote,
        Self::ApproveVoteRepeat,
        Self::Revoke,
        Self::Lock,
        Self::Unlock,
        Self::Import,
        Self::OfflineBundle,
        Self::RequestCert,
        Self::IssueOperatorCert,
        Self::RevokeOperatorCert,
        Self::AuditCheckpoint,
        Self::HostApprove,
        Self::HostDeny,
        Self::HostIssueCert,
        Self::HostRemove,
    ];

    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::ApproveVote => "approve_vote",
            Self::ApproveVoteRepeat => "approve_vote_repeat",
            Self::Revoke => "revoke",
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::Import => "import",
            Self::OfflineBundle => "offline_bundle",
            Self::RequestCert => "request_cert",
            Self::IssueOperatorCert => "issue_operator_cert",
            Self::RevokeOperatorCert => "revoke_operator_cert",
            Self::AuditCheckpoint => "audit.checkpoint",
            Self::HostApprove => "host.approve",
            Self::HostDeny => "host.deny",
            Self::HostIssueCert => "host.issue_cert",
            Self::HostRemove => "host.remove",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<AuditAction> for String {
    fn from(action: AuditAction) -> Self {
        action.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::ALL {
            assert!(seen.insert(a.as_str()), "{a}");
        }
    }
}
