//! Dual-control approval: counting votes, no storage.
//!
//! The server loads the machine's votes (`GET .../approvals` rows), calls
//! [`decide_approval`], then stores what the [`Decision`] says: a new vote,
//! consumed votes plus the approve transition, or nothing.

use chrono::{DateTime, Duration, Utc};

use attest_proto::machine::Role;

/// Distinct operators needed for a dual-controlled role.
pub const QUORUM: u32 = 2;

/// Identity recorded for the shared break-glass token (seed). It names no
/// person, so it cannot be one of two *different* operators.
pub const BREAK_GLASS_OPERATOR: &str = "SYSTEM";

/// What an operator asks for when approving; a vote only counts towards
/// the same request. Values are already validated and normalised
/// (see [`super::validate`]) so that equal intent compares equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApprovalRequest {
    pub role: Role,
    pub hostname: Option<String>,
    pub assigned_ip: Option<String>,
}

/// Who is approving: the display identity the audit log records, and the
/// principal (the identity as proven by its original authentication
/// source) that dual control counts. Display names can be chosen (a
/// certificate CN, a renamed account); principals cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub identity: String,
    /// `None` for the break-glass token and for credentials issued before
    /// principals were recorded: such operators never vote.
    pub principal: Option<String>,
}

/// One stored vote (a row of `GET /machines/{id}/approvals`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub id: i64,
    /// Operator identity as shown in the audit log.
    pub operator: String,
    /// The voter's principal; votes without one never count.
    pub principal: Option<String>,
    pub request: ApprovalRequest,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed: bool,
}

impl Vote {
    /// Open: not consumed and `now` strictly before `expires_at`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        !self.consumed && now < self.expires_at
    }
}

/// What the approve endpoint does with this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Role not dual-controlled: apply `Event::Approve` now (200).
    Approve,
    /// Store a new vote expiring at `expires_at`; answer 202
    /// `pending_second_approval`.
    VoteRecorded {
        approvals_received: u32,
        approvals_required: u32,
        expires_at: DateTime<Utc>,
    },
    /// This operator already has an open vote for the same request: store
    /// nothing, repeat the 202 (window not extended).
    DuplicateVote {
        approvals_received: u32,
        approvals_required: u32,
        expires_at: DateTime<Utc>,
    },
    /// A different operator agreed to the same request within the window:
    /// mark `consume` votes consumed and apply `Event::Approve` (200).
    QuorumReached {
        /// The distinct operators, first voter first, current caller last.
        voters: Vec<String>,
        /// Ids of the votes to mark consumed.
        consume: Vec<i64>,
    },
    /// The caller cannot vote on a dual-controlled role (empty identity or
    /// the break-glass identity); server: 403.
    IneligibleVoter,
}

/// Decides an approve call by `voter` asking for `request`.
///
/// `votes` are the machine's stored votes (any state; expired and consumed
/// ones are ignored, which is how "the first vote is discarded and a new
/// window starts"). `dual_controlled`: `request.role` is in
/// `ITL_DUAL_CONTROL_ROLES`. `window`: `ITL_DUAL_CONTROL_WINDOW_SECONDS`.
/// Two votes are by the same operator when their principals are equal,
/// whatever names they show.
pub fn decide_approval(
    votes: &[Vote],
    voter: &Voter,
    request: &ApprovalRequest,
    dual_controlled: bool,
    now: DateTime<Utc>,
    window: Duration,
) -> Decision {
    if !dual_controlled {
        return Decision::Approve;
    }
    let Some(principal) = principal_of(voter.principal.as_deref()) else {
        return Decision::IneligibleVoter;
    };
    if voter.identity.is_empty() || voter.identity == BREAK_GLASS_OPERATOR {
        return Decision::IneligibleVoter;
    }
    // Only open votes for exactly this request, by someone who can vote,
    // count; a vote for another role/hostname/IP is a different approval.
    let matching: Vec<(&Vote, &str)> = votes
        .iter()
        .filter(|v| v.is_open(now) && v.request == *request)
        .filter(|v| v.operator != BREAK_GLASS_OPERATOR)
        .filter_map(|v| principal_of(v.principal.as_deref()).map(|p| (v, p)))
        .collect();

    // Checked before quorum: a repeat never counts, whoever else voted.
    if let Some((own, _)) = matching.iter().find(|(_, p)| *p == principal) {
        return Decision::DuplicateVote {
            approvals_received: 1,
            approvals_required: QUORUM,
            expires_at: own.expires_at,
        };
    }

    // Earliest open matching vote by another principal: its window is the
    // one the caller joins.
    let first = matching.iter().min_by_key(|(v, _)| (v.created_at, v.id));
    match first {
        Some((first, first_principal)) => {
            let consume = matching
                .iter()
                .filter(|(_, p)| p == first_principal)
                .map(|(v, _)| v.id)
                .collect();
            Decision::QuorumReached {
                voters: vec![first.operator.clone(), voter.identity.clone()],
                consume,
            }
        }
        None => Decision::VoteRecorded {
            approvals_received: 1,
            approvals_required: QUORUM,
            expires_at: now + window,
        },
    }
}

/// A principal that can vote: present and not blank.
fn principal_of(principal: Option<&str>) -> Option<&str> {
    principal.map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-14T17:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn window() -> Duration {
        Duration::seconds(600)
    }

    /// An operator whose principal is their name under OIDC.
    fn who(name: &str) -> Voter {
        Voter {
            identity: name.into(),
            principal: Some(format!("oidc:{name}")),
        }
    }

    fn cp() -> ApprovalRequest {
        ApprovalRequest {
            role: Role::Controlplane,
            hostname: Some("cp-01".into()),
            assigned_ip: Some("10.0.0.1/24".into()),
        }
    }

    fn vote(id: i64, operator: &str, request: ApprovalRequest, at: DateTime<Utc>) -> Vote {
        Vote {
            id,
            operator: operator.into(),
            principal: Some(format!("oidc:{operator}")),
            request,
            created_at: at,
            expires_at: at + window(),
            consumed: false,
        }
    }

    #[test]
    fn role_not_dual_controlled_approves_immediately() {
        let votes = [vote(1, "alice", cp(), t0())];
        assert_eq!(
            decide_approval(&votes, &who("bob"), &cp(), false, t0(), window()),
            Decision::Approve
        );
        // Even the break-glass identity: dual control is not asked for.
        assert_eq!(
            decide_approval(&[], &who("SYSTEM"), &cp(), false, t0(), window()),
            Decision::Approve
        );
    }

    #[test]
    fn first_vote_is_recorded_with_window() {
        assert_eq!(
            decide_approval(&[], &who("alice"), &cp(), true, t0(), window()),
            Decision::VoteRecorded {
                approvals_received: 1,
                approvals_required: 2,
                expires_at: t0() + window(),
            }
        );
    }

    #[test]
    fn same_operator_twice_does_not_count_nor_extend() {
        let votes = [vote(1, "alice", cp(), t0())];
        let later = t0() + Duration::seconds(300);
        assert_eq!(
            decide_approval(&votes, &who("alice"), &cp(), true, later, window()),
            Decision::DuplicateVote {
                approvals_received: 1,
                approvals_required: 2,
                expires_at: t0() + window(),
            }
        );
    }

    #[test]
    fn second_different_operator_within_window_reaches_quorum() {
        let votes = [vote(7, "alice", cp(), t0())];
        let later = t0() + window() - Duration::seconds(1);
        assert_eq!(
            decide_approval(&votes, &who("bob"), &cp(), true, later, window()),
            Decision::QuorumReached {
                voters: vec!["alice".into(), "bob".into()],
                consume: vec![7],
            }
        );
    }

    #[test]
    fn expired_vote_is_discarded_and_new_window_starts() {
        let votes = [vote(1, "alice", cp(), t0())];
        // Exactly at expires_at the vote is no longer open.
        let at_expiry = t0() + window();
        assert_eq!(
            decide_approval(&votes, &who("bob"), &cp(), true, at_expiry, window()),
            Decision::VoteRecorded {
                approvals_received: 1,
                approvals_required: 2,
                expires_at: at_expiry + window(),
            }
        );
        // The same operator after expiry gets a fresh vote, not a duplicate.
        assert!(matches!(
            decide_approval(&votes, &who("alice"), &cp(), true, at_expiry, window()),
            Decision::VoteRecorded { .. }
        ));
    }

    #[test]
    fn consumed_votes_do_not_count() {
        let mut v = vote(1, "alice", cp(), t0());
        v.consumed = true;
        assert!(matches!(
            decide_approval(&[v], &who("bob"), &cp(), true, t0(), window()),
            Decision::VoteRecorded { .. }
        ));
    }

    #[test]
    fn different_parameters_are_a_different_approval() {
        let votes = [vote(1, "alice", cp(), t0())];
        let variants = [
            ApprovalRequest {
                role: Role::WorkerInfra,
                ..cp()
            },
            ApprovalRequest {
                hostname: Some("cp-02".into()),
                ..cp()
            },
            ApprovalRequest {
                hostname: None,
                ..cp()
            },
            ApprovalRequest {
                assigned_ip: Some("10.0.0.2/24".into()),
                ..cp()
            },
        ];
        for req in variants {
            assert!(
                matches!(
                    decide_approval(&votes, &who("bob"), &req, true, t0(), window()),
                    Decision::VoteRecorded {
                        approvals_received: 1,
                        ..
                    }
                ),
                "{req:?}"
            );
        }
        // Alice changing her mind is a new vote, not a duplicate.
        let other = ApprovalRequest {
            hostname: Some("cp-09".into()),
            ..cp()
        };
        assert!(matches!(
            decide_approval(&votes, &who("alice"), &other, true, t0(), window()),
            Decision::VoteRecorded { .. }
        ));
    }

    #[test]
    fn principals_not_names_are_counted() {
        let votes = [vote(1, "alice", cp(), t0())];
        // The same principal under another display name is the same voter.
        let renamed = Voter {
            identity: "alice-admin".into(),
            principal: Some("oidc:alice".into()),
        };
        assert!(matches!(
            decide_approval(&votes, &renamed, &cp(), true, t0(), window()),
            Decision::DuplicateVote { .. }
        ));
        // A different principal showing the same name is a different voter.
        let namesake = Voter {
            identity: "alice".into(),
            principal: Some("oidc:someone-else".into()),
        };
        assert!(matches!(
            decide_approval(&votes, &namesake, &cp(), true, t0(), window()),
            Decision::QuorumReached { .. }
        ));
    }

    #[test]
    fn voters_without_a_principal_never_count() {
        let anonymous = Voter {
            identity: "bob".into(),
            principal: None,
        };
        assert_eq!(
            decide_approval(&[], &anonymous, &cp(), true, t0(), window()),
            Decision::IneligibleVoter
        );
        // A stored vote without a principal (cast before principals were
        // recorded) never completes a quorum.
        let mut old = vote(1, "alice", cp(), t0());
        old.principal = None;
        assert!(matches!(
            decide_approval(&[old], &who("bob"), &cp(), true, t0(), window()),
            Decision::VoteRecorded { .. }
        ));
    }

    #[test]
    fn operator_identity_is_exact() {
        let votes = [vote(1, "alice", cp(), t0())];
        // Auth normalises identities; a different spelling is a different
        // identity here (and would be a bug in auth, not a bypass here).
        assert!(matches!(
            decide_approval(&votes, &who("Alice"), &cp(), true, t0(), window()),
            Decision::QuorumReached { .. }
        ));
        assert!(matches!(
            decide_approval(&votes, &who("alice"), &cp(), true, t0(), window()),
            Decision::DuplicateVote { .. }
        ));
    }

    #[test]
    fn break_glass_and_empty_identity_cannot_vote() {
        assert_eq!(
            decide_approval(&[], &who(BREAK_GLASS_OPERATOR), &cp(), true, t0(), window()),
            Decision::IneligibleVoter
        );
        assert_eq!(
            decide_approval(&[], &who(""), &cp(), true, t0(), window()),
            Decision::IneligibleVoter
        );
        // A stored SYSTEM vote (e.g. from before this rule) never completes quorum.
        let votes = [vote(1, BREAK_GLASS_OPERATOR, cp(), t0())];
        assert!(matches!(
            decide_approval(&votes, &who("bob"), &cp(), true, t0(), window()),
            Decision::VoteRecorded { .. }
        ));
    }

    #[test]
    fn quorum_joins_earliest_open_vote_and_consumes_all_of_that_operator() {
        let votes = [
            vote(3, "carol", cp(), t0() + Duration::seconds(10)),
            vote(2, "alice", cp(), t0()),
            vote(4, "alice", cp(), t0() + Duration::seconds(20)),
        ];
        assert_eq!(
            decide_approval(
                &votes,
                &who("bob"),
                &cp(),
                true,
                t0() + Duration::seconds(30),
                window()
            ),
            Decision::QuorumReached {
                voters: vec!["alice".into(), "bob".into()],
                consume: vec![2, 4],
            }
        );
    }
}
