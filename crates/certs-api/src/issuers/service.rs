//! `/api/v1/issuers`: create (a GenericCA generates or imports its root
//! here), read, update, delete, test.

use attest_certs_domain::names::is_resource_id;
use attest_certs_domain::permissions as p;
use attest_certs_store::authorities::{CaRecord, IssuerRecord, CA_ACTIVE};
use attest_certs_store::records;
use attest_certs_store::timestamp;
use attest_pki::authority::{Authority, CaRequest, KeyAlgorithm};
use attest_proto::certs::common::Page;
use attest_proto::certs::issuers::{Issuer, IssuerInput, ISSUER_TYPES};
use serde_json::{json, Map, Value};

use super::signing::{seal_key, signing_ca};
use super::{algorithm_name, parse_algorithm, parse_name_constraints, pki_error, GENERIC_CA};
use crate::audit::{record, Change};
use crate::auth::Caller;
use crate::error::{CertsError, CertsResult};
use crate::extract::page;
use crate::rbac::new_id;
use crate::state::CertsState;

/// Config keys that hold secrets: used, never stored or returned.
const SECRET_KEYS: &[&str] = &["ca_key_pem", "key_pem", "private_key", "password", "secret"];

/// Config keys the server reports (not accepted from clients).
const DERIVED_KEYS: &[&str] = &[
    "root_ca_id",
    "ca_cert_pem",
    "subject",
    "not_after",
    "ca_key_algorithm",
];

fn config_object(value: Option<&Value>) -> CertsResult<Map<String, Value>> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(CertsError::Invalid("config must be an object".into())),
    }
}

fn str_field<'a>(config: &'a Map<String, Value>, key: &str) -> CertsResult<Option<&'a str>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(CertsError::Invalid(format!(
            "config.{key} must be a string"
        ))),
    }
}

fn int_field(config: &Map<String, Value>, key: &str) -> CertsResult<Option<i64>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| CertsError::Invalid(format!("config.{key} must be an integer"))),
    }
}

/// The stored config: the client's, secrets and derived keys removed.
fn public_config(mut config: Map<String, Value>) -> Value {
    for k in SECRET_KEYS.iter().chain(DERIVED_KEYS) {
        config.remove(*k);
    }
    Value::Object(config)
}

/// The root CA of a new GenericCA issuer: imported when the config
/// carries `ca_cert_pem` and `ca_key_pem`, generated otherwise.
fn root_for(
    name: &str,
    config: &Map<String, Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> CertsResult<Authority> {
    if let Some(cert_pem) = str_field(config, "ca_cert_pem")? {
        let key_pem = str_field(config, "ca_key_pem")?.ok_or_else(|| {
            CertsError::Invalid("config.ca_key_pem is required with config.ca_cert_pem".into())
        })?;
        return Authority::import(cert_pem, key_pem).map_err(pki_error);
    }
    let key_algorithm = match str_field(config, "key_algorithm")? {
        Some(a) => parse_algorithm(a)?,
        None => KeyAlgorithm::EcP384,
    };
    let days = int_field(config, "validity_days")?.unwrap_or(3650);
    if !(1..=36500).contains(&days) {
        return Err(CertsError::Invalid(
            "config.validity_days must be 1-36500".into(),
        ));
    }
    let path_len = match int_field(config, "path_len")? {
        None => None,
        Some(n) => Some(
            u8::try_from(n)
                .map_err(|_| CertsError::Invalid("config.path_len must be 0-255".into()))?,
        ),
    };
    let constraints = json!([{
        "permitted": config.get("permitted_dns").cloned().unwrap_or(json!([])),
        "excluded": config.get("excluded_dns").cloned().unwrap_or(json!([])),
    }]);
    let request = CaRequest {
        common_name: str_field(config, "common_name")?.unwrap_or(name).to_owned(),
        organization: str_field(config, "organization")?.map(str::to_owned),
        key_algorithm,
        validity: chrono::Duration::days(days),
        path_len,
        name_constraints: parse_name_constraints(Some(&constraints))?,
    };
    Authority::generate_root(&request, now).map_err(pki_error)
}

/// Where a new CA sits in its issuer's hierarchy, and what the operator
/// said about it.
pub(crate) struct Placement<'a> {
    pub issuer_id: &'a str,
    pub parent: Option<String>,
    pub name: &'a str,
    pub ocsp_responder_url: String,
    pub metadata: Value,
}

/// A stored CA row for `authority` (its key sealed).
pub(crate) fn ca_record(
    state: &CertsState,
    authority: &Authority,
    placement: Placement<'_>,
    now: &str,
) -> CertsResult<CaRecord> {
    let Placement {
        issuer_id,
        parent,
        name,
        ocsp_responder_url,
        metadata,
    } = placement;
    let key = authority.key_pkcs8_der().map_err(pki_error)?;
    let sealed = seal_key(&state.master_key, &key)?;
    Ok(CaRecord {
        id: new_id("ica"),
        issuer_id: issuer_id.to_owned(),
        parent_ca_id: parent,
        name: name.to_owned(),
        state: CA_ACTIVE.into(),
        subject: authority.subject(),
        serial_number: authority.serial_hex(),
        not_before: timestamp(authority.not_before()),
        not_after: timestamp(authority.not_after()),
        path_len_constraint: authority.path_len().map(i64::from),
        name_constraints: super::name_constraints_value(authority.name_constraints()),
        key_algorithm: algorithm_name(authority.key_algorithm()).into(),
        cert_pem: authority.cert_pem(),
        key_ciphertext: sealed.ciphertext,
        key_nonce: sealed.nonce,
        key_tag: sealed.tag,
        key_sealed_by: state.master_key.key_id.into(),
        ocsp_responder_url,
        metadata,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    })
}

/// The wire issuer: stored config plus, for a GenericCA, the CA it signs
/// with.
async fn present(state: &CertsState, rec: IssuerRecord) -> CertsResult<Issuer> {
    let mut issuer = rec.issuer;
    if issuer.issuer_type == GENERIC_CA {
        let mut config = config_object(Some(&issuer.config))?;
        config.insert("issuing_ca_id".into(), json!(rec.issuing_ca_id));
        if let Some(ca_id) = &rec.issuing_ca_id {
            if let Some(ca) = records::get::<CaRecord>(&state.store, ca_id).await? {
                config.insert("ca_cert_pem".into(), json!(ca.cert_pem));
                config.insert("subject".into(), json!(ca.subject));
                config.insert("not_after".into(), json!(ca.not_after));
                config.insert("ca_key_algorithm".into(), json!(ca.key_algorithm));
            }
        }
        issuer.config = Value::Object(config);
    }
    Ok(issuer)
}

/// One page of issuers.
pub async fn list(
    state: &CertsState,
    caller: &Caller,
    page_no: Option<i64>,
    per_page: Option<i64>,
) -> CertsResult<Page<Issuer>> {
    caller.require(&p::ISSUER_LIST)?;
    let pg = page(page_no, per_page)?;
    let (rows, total) =
        records::list::<IssuerRecord>(&state.store, pg.limit(), pg.offset()).await?;
    let mut data = Vec::with_capacity(rows.len());
    for r in rows {
        data.push(present(state, r).await?);
    }
    Ok(Page {
        data,
        total,
        page: pg.page,
        per_page: pg.per_page,
    })
}

/// The issuer `id` (scoped `issuer.read` grants count).
pub async fn get(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<Issuer> {
    caller.require_on(
        &p::ISSUER_READ,
        attest_certs_domain::rbac::Target {
            profile_id: None,
            issuer_id: Some(id),
        },
    )?;
    let rec = records::get::<IssuerRecord>(&state.store, id)
        .await?
        .ok_or_else(|| CertsError::not_found("issuer"))?;
    present(state, rec).await
}

/// Creates an issuer; a GenericCA gets its root CA in the same
/// transaction.
pub async fn create(
    state: &CertsState,
    caller: &Caller,
    body: &IssuerInput,
) -> CertsResult<Issuer> {
    caller.require(&p::ISSUER_CREATE)?;
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.len() <= 255)
        .ok_or_else(|| CertsError::Invalid("name is required (1-255 characters)".into()))?;
    let issuer_type = body
        .issuer_type
        .as_deref()
        .ok_or_else(|| CertsError::Invalid("type is required".into()))?;
    if !ISSUER_TYPES.contains(&issuer_type) {
        return Err(CertsError::Invalid(format!(
            "type must be one of {}",
            ISSUER_TYPES.join(", ")
        )));
    }
    let id = match body.id.as_deref() {
        Some(id) if is_resource_id(id) => id.to_owned(),
        Some(_) => {
            return Err(CertsError::Invalid(
                "id must be 1-128 characters: letters, digits, '-', '_', '.'".into(),
            ))
        }
        None => new_id("iss"),
    };
    let config = config_object(body.config.as_ref())?;
    let now = state.clock.now();
    let at = timestamp(now);
    let root = if issuer_type == GENERIC_CA {
        let authority = root_for(name, &config, now)?;
        if !authority.is_self_signed() {
            return Err(CertsError::Invalid(
                "config.ca_cert_pem must be a self-signed root; add intermediates under it".into(),
            ));
        }
        let root_name = format!("{name} root");
        let placement = Placement {
            issuer_id: &id,
            parent: None,
            name: &root_name,
            ocsp_responder_url: String::new(),
            metadata: json!({}),
        };
        Some(ca_record(state, &authority, placement, &at)?)
    } else {
        None
    };
    let rec = IssuerRecord {
        issuer: Issuer {
            id: id.clone(),
            name: name.to_owned(),
            issuer_type: issuer_type.to_owned(),
            config: public_config(config),
            enabled: body.enabled.unwrap_or(true),
            created_at: at.clone(),
            updated_at: at,
        },
        issuing_ca_id: root.as_ref().map(|r| r.id.clone()),
    };
    state
        .store
        .write_with(async |tx| {
            records::insert(
                tx,
                &IssuerRecord {
                    issuing_ca_id: None,
                    ..rec.clone()
                },
            )
            .await
            .map_err(CertsError::conflict_on(
                "an issuer with that id or name already exists",
            ))?;
            if let Some(root) = &root {
                records::insert(tx, root).await?;
                records::replace(tx, &rec).await?;
            }
            record(
                tx,
                caller,
                Change {
                    action: "issuer.create",
                    resource_type: "issuer",
                    resource_id: &id,
                    details: json!({
                        "name": rec.issuer.name,
                        "type": rec.issuer.issuer_type,
                        "root_ca_id": rec.issuing_ca_id,
                        "root_subject": root.as_ref().map(|r| r.subject.clone()),
                    }),
                },
                now,
            )
            .await
        })
        .await?;
    present(state, rec).await
}

/// Renames, enables or disables an issuer, or (GenericCA) switches the
/// CA that signs for it (`config.issuing_ca_id`: an active CA of its own
/// hierarchy).
pub async fn update(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    body: &IssuerInput,
) -> CertsResult<Issuer> {
    caller.require(&p::ISSUER_EDIT)?;
    if let Some(t) = &body.issuer_type {
        if t.is_empty() {
            return Err(CertsError::Invalid("type cannot be empty".into()));
        }
    }
    let patch = config_object(body.config.as_ref())?;
    let now = state.clock.now();
    let rec = state.store.write_with(async |tx| {
        let mut rec = records::get_in::<IssuerRecord>(tx, id)
            .await?
            .ok_or_else(|| CertsError::not_found("issuer"))?;
        if body.issuer_type.as_deref().is_some_and(|t| t != rec.issuer.issuer_type) {
            return Err(CertsError::Invalid("an issuer's type cannot change".into()));
        }
        if let Some(name) = &body.name {
            let name = name.trim();
            if name.is_empty() || name.len() > 255 {
                return Err(CertsError::Invalid("name must be 1-255 characters".into()));
            }
            rec.issuer.name = name.to_owned();
        }
        if let Some(enabled) = body.enabled {
            rec.issuer.enabled = enabled;
        }
        if let Some(ca_id) = str_field(&patch, "issuing_ca_id")? {
            let ca = records::get_in::<CaRecord>(tx, ca_id)
                .await?
                .filter(|ca| ca.issuer_id == id)
                .ok_or_else(|| CertsError::Invalid(format!("issuing_ca_id {ca_id:?} is not a CA of this issuer")))?;
            if ca.state != CA_ACTIVE {
                return Err(CertsError::Conflict(format!("CA {ca_id} is {}", ca.state)));
            }
            rec.issuing_ca_id = Some(ca.id);
        }
        let mut config = config_object(Some(&rec.issuer.config))?;
        for (k, v) in patch {
            if k != "issuing_ca_id" {
                config.insert(k, v);
            }
        }
        rec.issuer.config = public_config(config);
        rec.issuer.updated_at = timestamp(now);
        records::replace(tx, &rec)
            .await
            .map_err(CertsError::conflict_on("an issuer with that name already exists"))?;
        record(
            tx,
            caller,
            Change {
                action: "issuer.update",
                resource_type: "issuer",
                resource_id: id,
                details: json!({"name": rec.issuer.name, "enabled": rec.issuer.enabled, "issuing_ca_id": rec.issuing_ca_id}),
            },
            now,
        )
        .await?;
        Ok(rec)
    })
    .await?;
    present(state, rec).await
}

/// Deletes an issuer no certificate refers to, with its CA hierarchy.
pub async fn delete(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<()> {
    caller.require(&p::ISSUER_DELETE)?;
    let now = state.clock.now();
    let cas = attest_certs_store::authorities::cas_of(&state.store, id).await?;
    state
        .store
        .write_with(async |tx| {
            let in_use =
                CertsError::conflict_on(format!("issuer {id} is still in use by certificates"));
            records::get_in::<IssuerRecord>(tx, id)
                .await?
                .ok_or_else(|| CertsError::not_found("issuer"))?;
            // Children before parents (`cas_of` lists parents first).
            for ca in cas.iter().rev() {
                records::delete::<CaRecord>(tx, &ca.id)
                    .await
                    .map_err(CertsError::conflict_on(format!(
                        "issuer {id}'s CA {} still signs certificates",
                        ca.id
                    )))?;
            }
            records::delete::<IssuerRecord>(tx, id)
                .await
                .map_err(in_use)?;
            record(
                tx,
                caller,
                Change {
                    action: "issuer.delete",
                    resource_type: "issuer",
                    resource_id: id,
                    details: json!({"cas_deleted": cas.len()}),
                },
                now,
            )
            .await
        })
        .await
}

/// Checks the issuer can sign: its CA unseals with the master key and is
/// active and within its validity. Other types: no connector yet.
pub async fn test(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<String> {
    caller.require(&p::ISSUER_EDIT)?;
    let rec = records::get::<IssuerRecord>(&state.store, id)
        .await?
        .ok_or_else(|| CertsError::not_found("issuer"))?;
    connector(&rec)?;
    let ca_id = rec
        .issuing_ca_id
        .as_deref()
        .ok_or_else(|| CertsError::Invalid("the issuer has no issuing CA".into()))?;
    let ca = signing_ca(state, ca_id).await?;
    let now = state.clock.now();
    if now >= ca.authority.not_after() {
        return Err(CertsError::Invalid(format!(
            "issuing CA {ca_id} expired at {}",
            ca.authority.not_after()
        )));
    }
    Ok(format!(
        "ok: {} signs for {}",
        ca.authority.subject(),
        rec.issuer.name
    ))
}

/// Refuses issuers whose type has no connector here, and disabled ones.
pub fn connector(rec: &IssuerRecord) -> CertsResult<()> {
    if rec.issuer.issuer_type != GENERIC_CA {
        return Err(CertsError::NotAvailable(format!(
            "connector not available: issuers of type {} cannot issue in this deployment (only {GENERIC_CA})",
            rec.issuer.issuer_type
        )));
    }
    if !rec.issuer.enabled {
        return Err(CertsError::Conflict(format!(
            "issuer {} is disabled",
            rec.issuer.id
        )));
    }
    Ok(())
}
