//! Issuers and their CAs.

use attest_proto::certs::issuers::Issuer;
use attest_store::{Result, Store, WriteTx};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{from_json, json_text, Param, Record};

/// A stored issuer: the wire fields plus the CA that signs for it.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerRecord {
    /// The wire shape (its `config` holds the operator's configuration,
    /// without secrets).
    pub issuer: Issuer,
    /// The CA signing certificates, for GenericCA issuers.
    pub issuing_ca_id: Option<String>,
}

fn text(v: &str) -> Param {
    Param::Text(Some(v.to_owned()))
}

impl Record for IssuerRecord {
    const TABLE: &'static str = "certs_issuers";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "issuer_type",
        "config",
        "enabled",
        "issuing_ca_id",
        "created_at",
        "updated_at",
    ];
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            issuer: Issuer {
                id: row.try_get(0)?,
                name: row.try_get(1)?,
                issuer_type: row.try_get(2)?,
                config: from_json(row, 3)?,
                enabled: row.try_get::<i64, _>(4)? != 0,
                created_at: row.try_get(6)?,
                updated_at: row.try_get(7)?,
            },
            issuing_ca_id: row.try_get(5)?,
        })
    }
    fn params(&self) -> Vec<Param> {
        let i = &self.issuer;
        vec![
            text(&i.id),
            text(&i.name),
            text(&i.issuer_type),
            json_text(&i.config),
            Param::Int(i64::from(i.enabled)),
            Param::Text(self.issuing_ca_id.clone()),
            text(&i.created_at),
            text(&i.updated_at),
        ]
    }
    fn id(&self) -> &str {
        &self.issuer.id
    }
}

/// A stored CA of a hierarchy, its key sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct CaRecord {
    pub id: String,
    pub issuer_id: String,
    pub parent_ca_id: Option<String>,
    pub name: String,
    /// `active`, `retiring` or `retired`.
    pub state: String,
    pub subject: String,
    pub serial_number: String,
    pub not_before: String,
    pub not_after: String,
    pub path_len_constraint: Option<i64>,
    /// JSON: `[{"permitted": [...], "excluded": [...]}]`.
    pub name_constraints: serde_json::Value,
    pub key_algorithm: String,
    pub cert_pem: String,
    /// Sealed PKCS#8 key, base64 parts.
    pub key_ciphertext: String,
    pub key_nonce: String,
    pub key_tag: String,
    /// Which master key sealed it.
    pub key_sealed_by: String,
    pub ocsp_responder_url: String,
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

/// CA states.
pub const CA_ACTIVE: &str = "active";
/// Issues nothing new; existing certificates and children stay valid.
pub const CA_RETIRING: &str = "retiring";
/// Terminal.
pub const CA_RETIRED: &str = "retired";

impl Record for CaRecord {
    const TABLE: &'static str = "certs_cas";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "issuer_id",
        "parent_ca_id",
        "name",
        "state",
        "subject",
        "serial_number",
        "not_before",
        "not_after",
        "path_len_constraint",
        "name_constraints",
        "key_algorithm",
        "cert_pem",
        "key_ciphertext",
        "key_nonce",
        "key_tag",
        "key_sealed_by",
        "ocsp_responder_url",
        "metadata",
        "created_at",
        "updated_at",
    ];
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            issuer_id: row.try_get(1)?,
            parent_ca_id: row.try_get(2)?,
            name: row.try_get(3)?,
            state: row.try_get(4)?,
            subject: row.try_get(5)?,
            serial_number: row.try_get(6)?,
            not_before: row.try_get(7)?,
            not_after: row.try_get(8)?,
            path_len_constraint: row.try_get(9)?,
            name_constraints: from_json(row, 10)?,
            key_algorithm: row.try_get(11)?,
            cert_pem: row.try_get(12)?,
            key_ciphertext: row.try_get(13)?,
            key_nonce: row.try_get(14)?,
            key_tag: row.try_get(15)?,
            key_sealed_by: row.try_get(16)?,
            ocsp_responder_url: row.try_get(17)?,
            metadata: from_json(row, 18)?,
            created_at: row.try_get(19)?,
            updated_at: row.try_get(20)?,
        })
    }
    fn params(&self) -> Vec<Param> {
        vec![
            text(&self.id),
            text(&self.issuer_id),
            Param::Text(self.parent_ca_id.clone()),
            text(&self.name),
            text(&self.state),
            text(&self.subject),
            text(&self.serial_number),
            text(&self.not_before),
            text(&self.not_after),
            Param::OptInt(self.path_len_constraint),
            json_text(&self.name_constraints),
            text(&self.key_algorithm),
            text(&self.cert_pem),
            text(&self.key_ciphertext),
            text(&self.key_nonce),
            text(&self.key_tag),
            text(&self.key_sealed_by),
            text(&self.ocsp_responder_url),
            json_text(&self.metadata),
            text(&self.created_at),
            text(&self.updated_at),
        ]
    }
    fn id(&self) -> &str {
        &self.id
    }
}

const CA_SELECT: &str = "SELECT id, issuer_id, parent_ca_id, name, state, subject, serial_number, \
    not_before, not_after, path_len_constraint, name_constraints, key_algorithm, cert_pem, \
    key_ciphertext, key_nonce, key_tag, key_sealed_by, ocsp_responder_url, metadata, created_at, \
    updated_at FROM certs_cas";

/// Every CA of `issuer_id`, parents before their children (then in
/// creation order), so the list reads as the tree from its roots.
pub async fn cas_of(store: &Store, issuer_id: &str) -> Result<Vec<CaRecord>> {
    let rows = sqlx::query(&format!(
        "{CA_SELECT} WHERE issuer_id = $1 ORDER BY created_at, id"
    ))
    .bind(issuer_id)
    .fetch_all(store.pool())
    .await?;
    let cas: Vec<CaRecord> = rows.iter().map(CaRecord::from_row).collect::<Result<_>>()?;
    let depth = |ca: &CaRecord| {
        let mut d = 0usize;
        let mut parent = ca.parent_ca_id.as_deref();
        while let Some(p) = parent {
            d += 1;
            if d > cas.len() {
                break;
            }
            parent = cas
                .iter()
                .find(|c| c.id == p)
                .and_then(|c| c.parent_ca_id.as_deref());
        }
        d
    };
    let mut keyed: Vec<(usize, CaRecord)> = cas.iter().map(|c| (depth(c), c.clone())).collect();
    keyed.sort_by_key(|k| k.0);
    Ok(keyed.into_iter().map(|(_, c)| c).collect())
}

/// How many CAs signed by `ca_id` are not retired.
pub async fn live_children(tx: &mut WriteTx, ca_id: &str) -> Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM certs_cas WHERE parent_ca_id = $1 AND state <> 'retired'",
    )
    .bind(ca_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get(0)?)
}

/// Moves `ca_id` from `from` to `to`; `false` when it was not in `from`.
pub async fn set_state(
    tx: &mut WriteTx,
    ca_id: &str,
    from: &str,
    to: &str,
    now: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE certs_cas SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
    )
    .bind(to)
    .bind(now)
    .bind(ca_id)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The state of CA `ca_id` (`None`: no such CA).
pub async fn state_of(store: &Store, ca_id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT state FROM certs_cas WHERE id = $1")
        .bind(ca_id)
        .fetch_optional(store.pool())
        .await?;
    row.map(|r| r.try_get(0)).transpose().map_err(Into::into)
}
