//! Managed certificates: the inventory (create, read, update, archive,
//! list with the seed's filters, versions), issuance ([`issuance`]:
//! renew, bulk renew), revocation ([`revocation`]: revoke, bulk revoke)
//! and export ([`export`]: PEM, PKCS#12).
//!
//! Permissions are checked against the certificate's profile and issuer,
//! so a role granted `cert.renew` on one profile renews only those.

pub mod export;
pub mod issuance;
pub mod revocation;

use attest_certs_domain::names::is_resource_id;
use attest_certs_domain::permissions::{self as p, Permission};
use attest_certs_domain::rbac::{self, ScopeType, Target};
use attest_certs_store::certificates::{self as repo, CertificateFilter, VersionRecord};
use attest_certs_store::records;
use attest_certs_store::timestamp;
use attest_proto::certs::certificates::{
    BulkError, BulkReassignRequest, BulkReassignResult, CertificateInput, CertificateQuery,
    CertificateVersion, ManagedCertificate, CERTIFICATE_STATUSES,
};
use attest_proto::certs::common::Page;
use attest_store::WriteTx;
use serde_json::json;

use crate::audit::{record, Change};
use crate::auth::Caller;
use crate::error::{CertsError, CertsResult};
use crate::extract::page;
use crate::state::CertsState;

/// Statuses.
pub const PENDING: &str = "Pending";
/// Issued and current.
pub const ACTIVE: &str = "Active";
/// Past its notAfter.
pub const EXPIRED: &str = "Expired";
/// Revoked.
pub const REVOKED: &str = "Revoked";
/// Archived (the seed's DELETE).
pub const ARCHIVED: &str = "Archived";

/// What a certificate is bound to, for scoped grants.
pub(crate) fn target(cert: &ManagedCertificate) -> Target<'_> {
    Target {
        profile_id: cert.certificate_profile_id.as_deref(),
        issuer_id: Some(&cert.issuer_id),
    }
}

/// Refuses unless the caller holds `perm` somewhere (before anything is
/// read, so an unauthorised caller learns nothing about what exists).
pub(crate) fn require_somewhere(caller: &Caller, perm: &Permission) -> CertsResult<()> {
    if rbac::holds_anywhere(&caller.grants, perm.id) {
        Ok(())
    } else {
        Err(CertsError::Forbidden(format!(
            "permission {} required",
            perm.id
        )))
    }
}

/// The certificate `id`, if the caller holds `perm` on it.
pub(crate) async fn load(
    state: &CertsState,
    caller: &Caller,
    perm: &Permission,
    id: &str,
) -> CertsResult<ManagedCertificate> {
    require_somewhere(caller, perm)?;
    let cert = records::get::<ManagedCertificate>(&state.store, id)
        .await?
        .ok_or_else(|| CertsError::not_found("certificate"))?;
    caller.require_on(perm, target(&cert))?;
    Ok(displayed(cert, state.clock.now()))
}

/// The status as of `now`: an active certificate past its notAfter reads
/// as `Expired`.
fn displayed(
    mut cert: ManagedCertificate,
    now: chrono::DateTime<chrono::Utc>,
) -> ManagedCertificate {
    if cert.status == ACTIVE
        && cert
            .expires_at
            .as_deref()
            .is_some_and(|e| e <= timestamp(now).as_str())
    {
        cert.status = EXPIRED.into();
    }
    cert
}

/// One page of certificates matching the seed's filters (scoped callers
/// see those under their profiles and issuers).
pub async fn list(
    state: &CertsState,
    caller: &Caller,
    q: &CertificateQuery,
) -> CertsResult<Page<ManagedCertificate>> {
    require_somewhere(caller, &p::CERT_LIST)?;
    let pg = page(q.page, q.per_page)?;
    if let Some(s) = &q.status {
        if !CERTIFICATE_STATUSES.contains(&s.as_str()) {
            return Err(CertsError::Invalid(format!(
                "status must be one of {}",
                CERTIFICATE_STATUSES.join(", ")
            )));
        }
    }
    let scope = if rbac::allows(&caller.grants, p::CERT_LIST.id, Target::default()) {
        None
    } else {
        let of = |kind: ScopeType| {
            caller
                .grants
                .iter()
                .filter(|g| g.permission == p::CERT_LIST.id && g.scope_type == kind)
                .filter_map(|g| g.scope_id.clone())
                .collect::<Vec<_>>()
        };
        Some((of(ScopeType::Profile), of(ScopeType::Issuer)))
    };
    let filter = CertificateFilter {
        status: q.status.clone(),
        environment: q.environment.clone(),
        owner_id: q.owner_id.clone(),
        team_id: q.team_id.clone(),
        issuer_id: q.issuer_id.clone(),
        scope,
        ..CertificateFilter::default()
    };
    let (data, total) = repo::list(&state.store, &filter, pg.limit(), pg.offset()).await?;
    let now = state.clock.now();
    Ok(Page {
        data: data.into_iter().map(|c| displayed(c, now)).collect(),
        total,
        page: pg.page,
        per_page: pg.per_page,
    })
}

/// The certificate `id`.
pub async fn get(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<ManagedCertificate> {
    load(state, caller, &p::CERT_READ, id).await
}

fn required(v: &Option<String>, field: &str) -> CertsResult<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| CertsError::Invalid(format!("{field} is required")))
}

/// Every reference of `cert` exists (checked in the write transaction).
async fn check_references(tx: &mut WriteTx, cert: &ManagedCertificate) -> CertsResult<()> {
    let mut refs = vec![
        ("certs_owners", cert.owner_id.as_str(), "owner_id"),
        ("certs_teams", cert.team_id.as_str(), "team_id"),
        ("certs_issuers", cert.issuer_id.as_str(), "issuer_id"),
        (
            "certs_renewal_policies",
            cert.renewal_policy_id.as_str(),
            "renewal_policy_id",
        ),
    ];
    if let Some(profile) = &cert.certificate_profile_id {
        refs.push(("certs_profiles", profile.as_str(), "certificate_profile_id"));
    }
    for (table, id, field) in refs {
        crate::catalog::require_exists(tx, table, id, field).await?;
    }
    Ok(())
}

fn check_names(cert: &ManagedCertificate) -> CertsResult<()> {
    if cert.name.len() > 255 || cert.common_name.len() > 255 {
        return Err(CertsError::Invalid(
            "name and common_name are at most 255 characters".into(),
        ));
    }
    if cert.sans.len() > 1000
        || cert
            .sans
            .iter()
            .any(|s| s.trim().is_empty() || s.len() > 2048)
    {
        return Err(CertsError::Invalid(
            "sans: at most 1000 non-empty names".into(),
        ));
    }
    Ok(())
}

/// Records a new managed certificate (status `Pending`: `renew` issues
/// it).
pub async fn create(
    state: &CertsState,
    caller: &Caller,
    body: &CertificateInput,
) -> CertsResult<ManagedCertificate> {
    require_somewhere(caller, &p::CERT_CREATE)?;
    let name = required(&body.name, "name")?;
    let id = match body.id.as_deref() {
        Some(id) if is_resource_id(id) => id.to_owned(),
        Some(_) => {
            return Err(CertsError::Invalid(
                "id must be 1-128 characters: letters, digits, '-', '_', '.'".into(),
            ))
        }
        None => crate::rbac::new_id("mc"),
    };
    let now = state.clock.now();
    let at = timestamp(now);
    let cert = ManagedCertificate {
        id,
        name,
        common_name: required(&body.common_name, "common_name")?,
        sans: body.sans.clone().unwrap_or_default(),
        environment: body.environment.clone().unwrap_or_default(),
        owner_id: required(&body.owner_id, "owner_id")?,
        team_id: required(&body.team_id, "team_id")?,
        issuer_id: required(&body.issuer_id, "issuer_id")?,
        target_ids: body.target_ids.clone().unwrap_or_default(),
        renewal_policy_id: required(&body.renewal_policy_id, "renewal_policy_id")?,
        certificate_profile_id: body
            .certificate_profile_id
            .clone()
            .filter(|s| !s.is_empty()),
        status: PENDING.into(),
        expires_at: None,
        tags: body.tags.clone().unwrap_or_default(),
        last_renewal_at: None,
        last_deployment_at: None,
        revoked_at: None,
        revocation_reason: None,
        created_at: at.clone(),
        updated_at: at,
    };
    check_names(&cert)?;
    caller.require_on(&p::CERT_CREATE, target(&cert))?;
    state.store.write_with(async |tx| {
        check_references(tx, &cert).await?;
        records::insert(tx, &cert)
            .await
            .map_err(CertsError::conflict_on("a certificate with that id already exists"))?;
        record(
            tx,
            caller,
            Change {
                action: "cert.create",
                resource_type: "certificate",
                resource_id: &cert.id,
                details: json!({"name": cert.name, "common_name": cert.common_name, "sans": cert.sans, "issuer_id": cert.issuer_id, "certificate_profile_id": cert.certificate_profile_id}),
            },
            now,
        )
        .await
    })
    .await?;
    Ok(cert)
}

/// Changes a certificate's management fields (omitted fields unchanged).
pub async fn update(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    body: &CertificateInput,
) -> CertsResult<ManagedCertificate> {
    let current = load(state, caller, &p::CERT_EDIT, id).await?;
    if current.status == ARCHIVED {
        return Err(CertsError::Conflict(format!(
            "certificate {id} is archived"
        )));
    }
    if body.id.as_deref().is_some_and(|new| new != id) {
        return Err(CertsError::Invalid(
            "a certificate's id cannot change".into(),
        ));
    }
    let now = state.clock.now();
    state.store.write_with(async |tx| {
        let mut cert = records::get_in::<ManagedCertificate>(tx, id)
            .await?
            .ok_or_else(|| CertsError::not_found("certificate"))?;
        let set = |field: &mut String, v: &Option<String>, name: &str| -> CertsResult<()> {
            if let Some(v) = v {
                let v = v.trim();
                if v.is_empty() {
                    return Err(CertsError::Invalid(format!("{name} cannot be empty")));
                }
                *field = v.to_owned();
            }
            Ok(())
        };
        set(&mut cert.name, &body.name, "name")?;
        set(&mut cert.common_name, &body.common_name, "common_name")?;
        set(&mut cert.owner_id, &body.owner_id, "owner_id")?;
        set(&mut cert.team_id, &body.team_id, "team_id")?;
        set(&mut cert.issuer_id, &body.issuer_id, "issuer_id")?;
        set(&mut cert.renewal_policy_id, &body.renewal_policy_id, "renewal_policy_id")?;
        if let Some(v) = &body.sans {
            cert.sans = v.clone();
        }
        if let Some(v) = &body.environment {
            cert.environment = v.clone();
        }
        if let Some(v) = &body.target_ids {
            cert.target_ids = v.clone();
        }
        if let Some(v) = &body.tags {
            cert.tags = v.clone();
        }
        if let Some(v) = &body.certificate_profile_id {
            cert.certificate_profile_id = (!v.is_empty()).then(|| v.clone());
        }
        check_names(&cert)?;
        // The new bindings must be within the caller's grants too.
        caller.require_on(&p::CERT_EDIT, target(&cert))?;
        cert.updated_at = timestamp(now);
        check_references(tx, &cert).await?;
        records::replace(tx, &cert).await?;
        record(
            tx,
            caller,
            Change {
                action: "cert.update",
                resource_type: "certificate",
                resource_id: id,
                details: json!({"name": cert.name, "owner_id": cert.owner_id, "team_id": cert.team_id, "issuer_id": cert.issuer_id, "certificate_profile_id": cert.certificate_profile_id}),
            },
            now,
        )
        .await?;
        Ok(cert)
    })
    .await
}

/// Archives a certificate (the seed's DELETE): it stays in the inventory
/// and the audit trail; its issued versions stay valid unless revoked.
pub async fn archive(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<()> {
    let cert = load(state, caller, &p::CERT_EDIT, id).await?;
    if cert.status == ARCHIVED {
        return Ok(());
    }
    let now = state.clock.now();
    state
        .store
        .write_with(async |tx| {
            let mut cert = records::get_in::<ManagedCertificate>(tx, id)
                .await?
                .ok_or_else(|| CertsError::not_found("certificate"))?;
            let previous = std::mem::replace(&mut cert.status, ARCHIVED.into());
            cert.updated_at = timestamp(now);
            records::replace(tx, &cert).await?;
            record(
                tx,
                caller,
                Change {
                    action: "cert.archive",
                    resource_type: "certificate",
                    resource_id: id,
                    details: json!({"previous_status": previous}),
                },
                now,
            )
            .await
        })
        .await
}

/// One page of a certificate's versions, newest first.
pub async fn versions(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    page_no: Option<i64>,
    per_page: Option<i64>,
) -> CertsResult<Page<CertificateVersion>> {
    load(state, caller, &p::CERT_READ, id).await?;
    let pg = page(page_no, per_page)?;
    let (rows, total) = repo::versions(&state.store, id, pg.limit(), pg.offset()).await?;
    Ok(Page {
        data: rows.into_iter().map(|v: VersionRecord| v.version).collect(),
        total,
        page: pg.page,
        per_page: pg.per_page,
    })
}

/// The deployment targets of a certificate (none until targets exist).
pub async fn deployments(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<()> {
    load(state, caller, &p::CERT_READ, id).await.map(|_| ())
}

/// Sets the owner (and optionally the team) of listed certificates.
pub async fn bulk_reassign(
    state: &CertsState,
    caller: &Caller,
    body: &BulkReassignRequest,
) -> CertsResult<BulkReassignResult> {
    caller.require(&p::CERT_BULK_REASSIGN)?;
    if body.certificate_ids.is_empty() {
        return Err(CertsError::Invalid("certificate_ids is required".into()));
    }
    if body.certificate_ids.len() > 10_000 {
        return Err(CertsError::Invalid(
            "at most 10000 certificate_ids per request".into(),
        ));
    }
    let owner = body.owner_id.trim();
    let team = body
        .team_id
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if records::get::<attest_proto::certs::catalog::Owner>(&state.store, owner)
        .await?
        .is_none()
    {
        return Err(CertsError::Invalid(format!(
            "owner_id {owner:?} does not exist"
        )));
    }
    if let Some(team) = team {
        if records::get::<attest_proto::certs::catalog::Team>(&state.store, team)
            .await?
            .is_none()
        {
            return Err(CertsError::Invalid(format!(
                "team_id {team:?} does not exist"
            )));
        }
    }
    let mut result = BulkReassignResult::default();
    let now = state.clock.now();
    for id in &body.certificate_ids {
        result.total_matched += 1;
        let outcome: CertsResult<bool> = state
            .store
            .write_with(async |tx| {
                let mut cert = records::get_in::<ManagedCertificate>(tx, id)
                    .await?
                    .ok_or_else(|| CertsError::not_found("certificate"))?;
                if cert.owner_id == owner && team.is_none_or(|t| cert.team_id == t) {
                    return Ok(false);
                }
                cert.owner_id = owner.to_owned();
                if let Some(t) = team {
                    cert.team_id = t.to_owned();
                }
                cert.updated_at = timestamp(now);
                records::replace(tx, &cert).await?;
                record(
                    tx,
                    caller,
                    Change {
                        action: "cert.bulk_reassign",
                        resource_type: "certificate",
                        resource_id: id,
                        details: json!({"owner_id": cert.owner_id, "team_id": cert.team_id}),
                    },
                    now,
                )
                .await?;
                Ok(true)
            })
            .await;
        match outcome {
            Ok(true) => result.total_reassigned += 1,
            Ok(false) => result.total_skipped += 1,
            Err(e) => {
                result.total_failed += 1;
                result.errors.push(BulkError {
                    certificate_id: id.clone(),
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(result)
}

/// Certificates a bulk operation selects: at least one criterion (a
/// guard against acting on everything by accident).
pub(crate) async fn select(
    state: &CertsState,
    criteria: &attest_proto::certs::certificates::BulkCriteria,
) -> CertsResult<Vec<String>> {
    let c = criteria;
    let given = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let ids = c.certificate_ids.clone().filter(|ids| !ids.is_empty());
    if given(&c.profile_id).is_none()
        && given(&c.owner_id).is_none()
        && given(&c.agent_id).is_none()
        && given(&c.issuer_id).is_none()
        && given(&c.team_id).is_none()
        && ids.is_none()
    {
        return Err(CertsError::Invalid(
            "at least one criterion is required (profile_id, owner_id, agent_id, issuer_id, team_id, certificate_ids)".into(),
        ));
    }
    if given(&c.agent_id).is_some() {
        // No agents deploy certificates yet: nothing is deployed via one.
        return Ok(Vec::new());
    }
    let filter = CertificateFilter {
        owner_id: given(&c.owner_id),
        team_id: given(&c.team_id),
        issuer_id: given(&c.issuer_id),
        profile_id: given(&c.profile_id),
        ids,
        ..CertificateFilter::default()
    };
    Ok(repo::matching_ids(&state.store, &filter, BULK_CAP).await?)
}

/// Most certificates one bulk request acts on.
pub const BULK_CAP: i64 = 10_000;
