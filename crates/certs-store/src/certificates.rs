//! Managed certificates and their versions.

use attest_proto::certs::certificates::{CertificateVersion, ManagedCertificate};
use attest_store::{Result, Store, WriteTx};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{from_json, json_text, Param, Record};

fn text(v: &str) -> Param {
    Param::Text(Some(v.to_owned()))
}

impl Record for ManagedCertificate {
    const TABLE: &'static str = "certs_certificates";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "common_name",
        "sans",
        "environment",
        "owner_id",
        "team_id",
        "issuer_id",
        "target_ids",
        "renewal_policy_id",
        "certificate_profile_id",
        "status",
        "expires_at",
        "tags",
        "last_renewal_at",
        "last_deployment_at",
        "revoked_at",
        "revocation_reason",
        "created_at",
        "updated_at",
    ];
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            common_name: row.try_get(2)?,
            sans: from_json(row, 3)?,
            environment: row.try_get(4)?,
            owner_id: row.try_get(5)?,
            team_id: row.try_get(6)?,
            issuer_id: row.try_get(7)?,
            target_ids: from_json(row, 8)?,
            renewal_policy_id: row.try_get(9)?,
            certificate_profile_id: row.try_get(10)?,
            status: row.try_get(11)?,
            expires_at: row.try_get(12)?,
            tags: from_json(row, 13)?,
            last_renewal_at: row.try_get(14)?,
            last_deployment_at: row.try_get(15)?,
            revoked_at: row.try_get(16)?,
            revocation_reason: row.try_get(17)?,
            created_at: row.try_get(18)?,
            updated_at: row.try_get(19)?,
        })
    }
    fn params(&self) -> Vec<Param> {
        vec![
            text(&self.id),
            text(&self.name),
            text(&self.common_name),
            json_text(&self.sans),
            text(&self.environment),
            text(&self.owner_id),
            text(&self.team_id),
            text(&self.issuer_id),
            json_text(&self.target_ids),
            text(&self.renewal_policy_id),
            Param::Text(self.certificate_profile_id.clone()),
            text(&self.status),
            Param::Text(self.expires_at.clone()),
            json_text(&self.tags),
            Param::Text(self.last_renewal_at.clone()),
            Param::Text(self.last_deployment_at.clone()),
            Param::Text(self.revoked_at.clone()),
            Param::Text(self.revocation_reason.clone()),
            text(&self.created_at),
            text(&self.updated_at),
        ]
    }
    fn id(&self) -> &str {
        &self.id
    }
}

/// A stored version: the wire fields plus the CA that signed it and its
/// revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub version: CertificateVersion,
    pub issuing_ca_id: String,
    pub revoked_at: Option<String>,
    pub revocation_reason: Option<String>,
}

impl Record for VersionRecord {
    const TABLE: &'static str = "certs_certificate_versions";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "certificate_id",
        "issuing_ca_id",
        "serial_number",
        "not_before",
        "not_after",
        "fingerprint_sha256",
        "pem_chain",
        "csr_pem",
        "key_algorithm",
        "key_size",
        "revoked_at",
        "revocation_reason",
        "created_at",
    ];
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            version: CertificateVersion {
                id: row.try_get(0)?,
                certificate_id: row.try_get(1)?,
                serial_number: row.try_get(3)?,
                not_before: row.try_get(4)?,
                not_after: row.try_get(5)?,
                fingerprint_sha256: row.try_get(6)?,
                pem_chain: row.try_get(7)?,
                csr_pem: row.try_get(8)?,
                key_algorithm: row.try_get(9)?,
                key_size: row.try_get(10)?,
                created_at: row.try_get(13)?,
            },
            issuing_ca_id: row.try_get(2)?,
            revoked_at: row.try_get(11)?,
            revocation_reason: row.try_get(12)?,
        })
    }
    fn params(&self) -> Vec<Param> {
        let v = &self.version;
        vec![
            text(&v.id),
            text(&v.certificate_id),
            text(&self.issuing_ca_id),
            text(&v.serial_number),
            text(&v.not_before),
            text(&v.not_after),
            text(&v.fingerprint_sha256),
            text(&v.pem_chain),
            Param::Text(v.csr_pem.clone()),
            text(&v.key_algorithm),
            Param::Int(v.key_size),
            Param::Text(self.revoked_at.clone()),
            Param::Text(self.revocation_reason.clone()),
            text(&v.created_at),
        ]
    }
    fn id(&self) -> &str {
        &self.version.id
    }
}

/// Filters of the certificate list (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    pub status: Option<String>,
    pub environment: Option<String>,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub issuer_id: Option<String>,
    pub profile_id: Option<String>,
    pub ids: Option<Vec<String>>,
    /// Scoped callers: only certificates under one of these profiles or
    /// issuers (`None`: no restriction).
    pub scope: Option<(Vec<String>, Vec<String>)>,
}

fn where_clause(f: &CertificateFilter) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    let mut eq = |col: &str, v: &Option<String>, clauses: &mut Vec<String>| {
        if let Some(v) = v {
            values.push(v.clone());
            clauses.push(format!("{col} = ${}", values.len()));
        }
    };
    eq("status", &f.status, &mut clauses);
    eq("environment", &f.environment, &mut clauses);
    eq("owner_id", &f.owner_id, &mut clauses);
    eq("team_id", &f.team_id, &mut clauses);
    eq("issuer_id", &f.issuer_id, &mut clauses);
    eq("certificate_profile_id", &f.profile_id, &mut clauses);
    let any_of = |col: &str, ids: &[String], values: &mut Vec<String>| -> String {
        if ids.is_empty() {
            return "1 = 0".into();
        }
        let ph: Vec<String> = ids
            .iter()
            .map(|id| {
                values.push(id.clone());
                format!("${}", values.len())
            })
            .collect();
        format!("{col} IN ({})", ph.join(", "))
    };
    if let Some(ids) = &f.ids {
        let c = any_of("id", ids, &mut values);
        clauses.push(c);
    }
    if let Some((profiles, issuers)) = &f.scope {
        let a = any_of("certificate_profile_id", profiles, &mut values);
        let b = any_of("issuer_id", issuers, &mut values);
        clauses.push(format!("({a} OR {b})"));
    }
    if clauses.is_empty() {
        (String::new(), values)
    } else {
        (format!("WHERE {}", clauses.join(" AND ")), values)
    }
}

const SELECT: &str = "SELECT id, name, common_name, sans, environment, owner_id, team_id, \
    issuer_id, target_ids, renewal_policy_id, certificate_profile_id, status, expires_at, tags, \
    last_renewal_at, last_deployment_at, revoked_at, revocation_reason, created_at, updated_at \
    FROM certs_certificates";

/// One page of certificates matching `f`, in creation order, and how many
/// match.
pub async fn list(
    store: &Store,
    f: &CertificateFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ManagedCertificate>, i64)> {
    let (clause, values) = where_clause(f);
    let n = values.len();
    let sql = format!(
        "{SELECT} {clause} ORDER BY created_at, id LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut q = sqlx::query(&sql);
    for v in &values {
        q = q.bind(v);
    }
    let rows = q.bind(limit).bind(offset).fetch_all(store.pool()).await?;
    let count_sql = format!("SELECT COUNT(*) FROM certs_certificates {clause}");
    let mut c = sqlx::query(&count_sql);
    for v in &values {
        c = c.bind(v);
    }
    let total: i64 = c.fetch_one(store.pool()).await?.try_get(0)?;
    Ok((
        rows.iter()
            .map(ManagedCertificate::from_row)
            .collect::<Result<_>>()?,
        total,
    ))
}

/// Ids of every certificate matching `f` (bulk operations; at most
/// `cap`).
pub async fn matching_ids(store: &Store, f: &CertificateFilter, cap: i64) -> Result<Vec<String>> {
    let (clause, values) = where_clause(f);
    let sql = format!(
        "SELECT id FROM certs_certificates {clause} ORDER BY created_at, id LIMIT ${}",
        values.len() + 1
    );
    let mut q = sqlx::query(&sql);
    for v in &values {
        q = q.bind(v);
    }
    let rows = q.bind(cap).fetch_all(store.pool()).await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

const VERSION_SELECT: &str = "SELECT id, certificate_id, issuing_ca_id, serial_number, \
    not_before, not_after, fingerprint_sha256, pem_chain, csr_pem, key_algorithm, key_size, \
    revoked_at, revocation_reason, created_at FROM certs_certificate_versions";

/// One page of a certificate's versions, newest first, and how many.
pub async fn versions(
    store: &Store,
    certificate_id: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<VersionRecord>, i64)> {
    let rows = sqlx::query(&format!(
        "{VERSION_SELECT} WHERE certificate_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(certificate_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await?;
    let total: i64 =
        sqlx::query("SELECT COUNT(*) FROM certs_certificate_versions WHERE certificate_id = $1")
            .bind(certificate_id)
            .fetch_one(store.pool())
            .await?
            .try_get(0)?;
    Ok((
        rows.iter()
            .map(VersionRecord::from_row)
            .collect::<Result<_>>()?,
        total,
    ))
}

/// The newest version of a certificate.
pub async fn latest_version(store: &Store, certificate_id: &str) -> Result<Option<VersionRecord>> {
    let row = sqlx::query(&format!(
        "{VERSION_SELECT} WHERE certificate_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(certificate_id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(VersionRecord::from_row).transpose()
}

/// Marks every unrevoked version of a certificate revoked; how many.
pub async fn revoke_versions(
    tx: &mut WriteTx,
    certificate_id: &str,
    reason: &str,
    at: &str,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE certs_certificate_versions SET revoked_at = $1, revocation_reason = $2 \
         WHERE certificate_id = $3 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(reason)
    .bind(certificate_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// How many certificates `ca_id` signed that are neither revoked nor
/// expired at `now` (RFC 3339, the stored format).
pub async fn valid_issued_by(tx: &mut WriteTx, ca_id: &str, now: &str) -> Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM certs_certificate_versions \
         WHERE issuing_ca_id = $1 AND revoked_at IS NULL AND not_after > $2",
    )
    .bind(ca_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get(0)?)
}

/// Records a new issuance on the certificate: `Active`, its expiry and
/// renewal time; `false` (nothing changed) when it is revoked or
/// archived meanwhile. One statement, so a renewal's transaction stays
/// short.
pub async fn mark_issued(tx: &mut WriteTx, id: &str, expires_at: &str, at: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE certs_certificates SET status = 'Active', expires_at = $1, last_renewal_at = $2, \
         updated_at = $2 WHERE id = $3 AND status NOT IN ('Revoked', 'Archived')",
    )
    .bind(expires_at)
    .bind(at)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
