//! Stored machine statuses, and the one status that is only ever reported.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

/// The status kept in the `machines` table (the seed's six values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MachineStatus {
    /// Known by EK, not yet approved by an operator (self-registered or
    /// created by an unknown machine's attest).
    PendingApproval,
    /// Approved (or registered through the USB agent / import); the next
    /// successful attestation hands out the config.
    Registered,
    /// Attested at least once and in service.
    Attested,
    /// Temporarily frozen by an operator; reversible with unlock.
    Locked,
    /// Permanently withdrawn; may carry a pending remote wipe.
    Revoked,
    /// Refused; attestation answers 403.
    Rejected,
}

impl MachineStatus {
    /// Every stored status, in lifecycle order.
    pub const ALL: [MachineStatus; 6] = [
        MachineStatus::PendingApproval,
        MachineStatus::Registered,
        MachineStatus::Attested,
        MachineStatus::Locked,
        MachineStatus::Revoked,
        MachineStatus::Rejected,
    ];

    /// The wire and database spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            MachineStatus::PendingApproval => "pending_approval",
            MachineStatus::Registered => "registered",
            MachineStatus::Attested => "attested",
            MachineStatus::Locked => "locked",
            MachineStatus::Revoked => "revoked",
            MachineStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for MachineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the six stored statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown machine status {0:?} (expected one of: pending_approval, registered, attested, locked, revoked, rejected)")]
pub struct UnknownStatus(pub String);

impl FromStr for MachineStatus {
    type Err = UnknownStatus;

    /// Exact match only: the database never holds another spelling, so a
    /// mismatch is corruption, not something to guess around.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MachineStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// Status text of the approve endpoint's 202 answer. Never stored: the
/// machine stays in its current status until quorum is reached.
pub const PENDING_SECOND_APPROVAL: &str = "pending_second_approval";

/// A status as shown in responses: a stored one, or the reported-only
/// `pending_second_approval`. Serialises as the plain string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportedStatus {
    Stored(MachineStatus),
    PendingSecondApproval,
}

impl ReportedStatus {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReportedStatus::Stored(s) => s.as_str(),
            ReportedStatus::PendingSecondApproval => PENDING_SECOND_APPROVAL,
        }
    }
}

impl From<MachineStatus> for ReportedStatus {
    fn from(s: MachineStatus) -> Self {
        ReportedStatus::Stored(s)
    }
}

impl fmt::Display for ReportedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReportedStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_and_serde() {
        for st in MachineStatus::ALL {
            assert_eq!(st.as_str().parse::<MachineStatus>().unwrap(), st);
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
            assert_eq!(serde_json::from_str::<MachineStatus>(&json).unwrap(), st);
        }
    }

    #[test]
    fn rejects_unknown_and_reported_only_status() {
        let err = "pending_second_approval"
            .parse::<MachineStatus>()
            .unwrap_err();
        assert!(err.to_string().contains("pending_second_approval"));
        assert!("Attested".parse::<MachineStatus>().is_err());
        assert!(serde_json::from_str::<MachineStatus>("\"pending_second_approval\"").is_err());
    }

    #[test]
    fn reported_status_serialises_as_string() {
        let s = serde_json::to_string(&ReportedStatus::PendingSecondApproval).unwrap();
        assert_eq!(s, "\"pending_second_approval\"");
        let s = serde_json::to_string(&ReportedStatus::from(MachineStatus::Registered)).unwrap();
        assert_eq!(s, "\"registered\"");
    }
}
