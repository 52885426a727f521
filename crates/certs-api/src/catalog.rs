//! Services of the catalogue: teams, owners, certificate profiles and
//! renewal policies, one generic implementation over [`Managed`].
//!
//! Every resource gets the same behaviour: the permission its namespace
//! names for each verb, a client-chosen or generated id, field rules
//! checked before anything is written, references checked inside the
//! write transaction (a 400 naming the missing one), name collisions as
//! 409, deletes of something still in use as 409, and an audit entry in
//! the same transaction.

use attest_certs_domain::catalog::{
    validate_email, validate_name, validate_renewal_policy, DEFAULT_ALERT_THRESHOLDS,
};
use attest_certs_domain::names::is_resource_id;
use attest_certs_domain::permissions::{self as p, Permission};
use attest_certs_domain::profile;
use attest_certs_store::records::{self, Record};
use attest_certs_store::timestamp;
use attest_proto::certs::catalog::{
    CertificateProfile, Owner, OwnerInput, ProfileInput, RenewalPolicy, RenewalPolicyCreateRequest,
    RenewalPolicyUpdateRequest, Team, TeamCreate, TeamInput,
};
use attest_proto::certs::common::Page;
use attest_store::WriteTx;
use serde::Serialize;
use serde_json::json;

use crate::audit::{record, Change};
use crate::auth::Caller;
use crate::error::{CertsError, CertsResult};
use crate::extract::page;
use crate::state::CertsState;

/// The permissions of a resource's verbs.
pub struct Perms {
    pub list: Permission,
    pub create: Permission,
    pub edit: Permission,
    pub delete: Permission,
}

/// A catalogue resource.
pub trait Managed: Record + Serialize + Clone + Send + Sync {
    /// What `POST` takes.
    type Create: Send + Sync;
    /// What `PUT` takes.
    type Update: Send + Sync;
    /// Noun for messages and the audit's `resource_type`; also the audit
    /// action's namespace (`team.create`).
    const KIND: &'static str;
    /// Prefix of generated ids.
    const ID_PREFIX: &'static str;
    /// The permissions of its verbs.
    const PERMS: Perms;
    /// The id the client chose, if any.
    fn chosen_id(body: &Self::Create) -> Option<&str>;
    /// The name a generated id is derived from.
    fn name_of(body: &Self::Create) -> &str;
    /// A new resource from `body`, or why not (400).
    fn build(id: String, body: &Self::Create, now: &str) -> CertsResult<Self>;
    /// `self` changed by `body`.
    fn apply(&mut self, body: &Self::Update, now: &str) -> CertsResult<()>;
    /// Rows this one refers to: (table, id, field), checked to exist.
    fn references(&self) -> Vec<(&'static str, String, &'static str)> {
        Vec::new()
    }
}

/// One page of `R`.
pub async fn list<R: Managed>(
    state: &CertsState,
    caller: &Caller,
    page_no: Option<i64>,
    per_page: Option<i64>,
) -> CertsResult<Page<R>> {
    caller.require(&R::PERMS.list)?;
    let p = page(page_no, per_page)?;
    let (data, total) = records::list::<R>(&state.store, p.limit(), p.offset()).await?;
    Ok(Page {
        data,
        total,
        page: p.page,
        per_page: p.per_page,
    })
}

/// `R` with id `id`.
pub async fn get<R: Managed>(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<R> {
    caller.require(&R::PERMS.list)?;
    records::get::<R>(&state.store, id)
        .await?
        .ok_or_else(|| CertsError::not_found(R::KIND))
}

/// Creates `R` from `body`.
pub async fn create<R: Managed>(
    state: &CertsState,
    caller: &Caller,
    body: &R::Create,
) -> CertsResult<R> {
    caller.require(&R::PERMS.create)?;
    let id = match R::chosen_id(body) {
        Some(id) if is_resource_id(id) => id.to_owned(),
        Some(_) => {
            return Err(CertsError::Invalid(
                "id must be 1-128 characters: letters, digits, '-', '_' and '.'".into(),
            ))
        }
        None => generated_id(R::ID_PREFIX, R::name_of(body)),
    };
    let now = state.clock.now();
    let item = R::build(id, body, &timestamp(now))?;
    state
        .store
        .write_with(async |tx| {
            check_references(tx, &item).await?;
            records::insert(tx, &item)
                .await
                .map_err(CertsError::conflict_on(format!(
                    "a {} with that id or name already exists",
                    R::KIND
                )))?;
            audit(tx, caller, "create", &item, now).await
        })
        .await?;
    Ok(item)
}

/// Changes `R` `id` by `body`.
pub async fn update<R: Managed>(
    state: &CertsState,
    caller: &Caller,
    id: &str,
    body: &R::Update,
) -> CertsResult<R> {
    caller.require(&R::PERMS.edit)?;
    let now = state.clock.now();
    state
        .store
        .write_with(async |tx| {
            let mut item = records::get_in::<R>(tx, id)
                .await?
                .ok_or_else(|| CertsError::not_found(R::KIND))?;
            item.apply(body, &timestamp(now))?;
            check_references(tx, &item).await?;
            records::replace(tx, &item)
                .await
                .map_err(CertsError::conflict_on(format!(
                    "a {} with that name already exists",
                    R::KIND
                )))?;
            audit(tx, caller, "update", &item, now).await?;
            Ok(item)
        })
        .await
}

/// Deletes `R` `id` unless something still uses it.
pub async fn delete<R: Managed>(state: &CertsState, caller: &Caller, id: &str) -> CertsResult<()> {
    caller.require(&R::PERMS.delete)?;
    let now = state.clock.now();
    state
        .store
        .write_with(async |tx| {
            let item = records::get_in::<R>(tx, id)
                .await?
                .ok_or_else(|| CertsError::not_found(R::KIND))?;
            records::delete::<R>(tx, id)
                .await
                .map_err(CertsError::conflict_on(format!(
                    "{} {id} is still in use",
                    R::KIND
                )))?;
            audit(tx, caller, "delete", &item, now).await
        })
        .await
}

async fn check_references<R: Managed>(tx: &mut WriteTx, item: &R) -> CertsResult<()> {
    for (table, id, field) in item.references() {
        require_exists(tx, table, &id, field).await?;
    }
    Ok(())
}

/// A 400 naming `field` unless `table` has the row `id`.
pub(crate) async fn require_exists(
    tx: &mut WriteTx,
    table: &str,
    id: &str,
    field: &str,
) -> CertsResult<()> {
    if records::exists(tx, table, id).await? {
        Ok(())
    } else {
        Err(CertsError::Invalid(format!(
            "{field} {id:?} does not exist"
        )))
    }
}

async fn audit<R: Managed>(
    tx: &mut WriteTx,
    caller: &Caller,
    verb: &str,
    item: &R,
    now: chrono::DateTime<chrono::Utc>,
) -> CertsResult<()> {
    let details = if verb == "delete" {
        json!({})
    } else {
        serde_json::to_value(item).unwrap_or_else(|_| json!({}))
    };
    record(
        tx,
        caller,
        Change {
            action: &format!("{}.{verb}", audit_namespace(R::KIND)),
            resource_type: R::KIND,
            resource_id: item.id(),
            details,
        },
        now,
    )
    .await
}

/// The audit action namespace of a kind (`renewal policy` →
/// `renewal_policy`), matching its permission namespace.
fn audit_namespace(kind: &str) -> String {
    kind.replace(' ', "_")
}

/// `<prefix>-<slug of name>`, or a random suffix when the name has no
/// usable characters.
fn generated_id(prefix: &str, name: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(60).collect();
    if slug.is_empty() {
        crate::rbac::new_id(prefix)
    } else {
        format!("{prefix}-{slug}")
    }
}

fn required<'a>(value: &'a Option<String>, field: &str) -> CertsResult<&'a str> {
    value
        .as_deref()
        .ok_or_else(|| CertsError::Invalid(format!("{field} is required")))
}

fn invalid(e: String) -> CertsError {
    CertsError::Invalid(e)
}

impl Managed for Team {
    type Create = TeamCreate;
    type Update = TeamInput;
    const KIND: &'static str = "team";
    const ID_PREFIX: &'static str = "t";
    const PERMS: Perms = Perms {
        list: p::TEAM_LIST,
        create: p::TEAM_CREATE,
        edit: p::TEAM_EDIT,
        delete: p::TEAM_DELETE,
    };
    fn chosen_id(body: &TeamCreate) -> Option<&str> {
        body.id.as_deref()
    }
    fn name_of(body: &TeamCreate) -> &str {
        &body.name
    }
    fn build(id: String, body: &TeamCreate, now: &str) -> CertsResult<Self> {
        let name = &body.name;
        validate_name(name).map_err(invalid)?;
        Ok(Self {
            id,
            name: name.trim().to_owned(),
            description: body.description.clone().unwrap_or_default(),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        })
    }
    fn apply(&mut self, body: &TeamInput, now: &str) -> CertsResult<()> {
        if let Some(name) = &body.name {
            validate_name(name).map_err(invalid)?;
            self.name = name.trim().to_owned();
        }
        if let Some(d) = &body.description {
            self.description = d.clone();
        }
        self.updated_at = now.to_owned();
        Ok(())
    }
}

impl Managed for Owner {
    type Create = OwnerInput;
    type Update = OwnerInput;
    const KIND: &'static str = "owner";
    const ID_PREFIX: &'static str = "o";
    const PERMS: Perms = Perms {
        list: p::OWNER_LIST,
        create: p::OWNER_CREATE,
        edit: p::OWNER_EDIT,
        delete: p::OWNER_DELETE,
    };
    fn chosen_id(body: &OwnerInput) -> Option<&str> {
        body.id.as_deref()
    }
    fn name_of(body: &OwnerInput) -> &str {
        body.name.as_deref().unwrap_or_default()
    }
    fn build(id: String, body: &OwnerInput, now: &str) -> CertsResult<Self> {
        let name = required(&body.name, "name")?;
        validate_name(name).map_err(invalid)?;
        let email = required(&body.email, "email")?;
        validate_email(email).map_err(invalid)?;
        Ok(Self {
            id,
            name: name.trim().to_owned(),
            email: email.to_owned(),
            team_id: body.team_id.clone().filter(|t| !t.is_empty()),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        })
    }
    fn apply(&mut self, body: &OwnerInput, now: &str) -> CertsResult<()> {
        if let Some(name) = &body.name {
            validate_name(name).map_err(invalid)?;
            self.name = name.trim().to_owned();
        }
        if let Some(email) = &body.email {
            validate_email(email).map_err(invalid)?;
            self.email = email.clone();
        }
        if let Some(team) = &body.team_id {
            self.team_id = (!team.is_empty()).then(|| team.clone());
        }
        self.updated_at = now.to_owned();
        Ok(())
    }
    fn references(&self) -> Vec<(&'static str, String, &'static str)> {
        self.team_id
            .iter()
            .map(|t| ("certs_teams", t.clone(), "team_id"))
            .collect()
    }
}

/// Default longest validity of a profile: 397 days (the CA/Browser
/// Forum's limit for TLS server certificates).
const DEFAULT_MAX_TTL_SECONDS: i64 = 397 * 86400;

impl Managed for CertificateProfile {
    type Create = ProfileInput;
    type Update = ProfileInput;
    const KIND: &'static str = "profile";
    const ID_PREFIX: &'static str = "prof";
    const PERMS: Perms = Perms {
        list: p::PROFILE_LIST,
        create: p::PROFILE_CREATE,
        edit: p::PROFILE_EDIT,
        delete: p::PROFILE_DELETE,
    };
    fn chosen_id(body: &ProfileInput) -> Option<&str> {
        body.id.as_deref()
    }
    fn name_of(body: &ProfileInput) -> &str {
        body.name.as_deref().unwrap_or_default()
    }
    fn build(id: String, body: &ProfileInput, now: &str) -> CertsResult<Self> {
        let name = required(&body.name, "name")?;
        let mut created = Self {
            id,
            name: name.trim().to_owned(),
            description: String::new(),
            allowed_key_algorithms: Vec::new(),
            max_ttl_seconds: DEFAULT_MAX_TTL_SECONDS,
            allowed_ekus: vec!["serverAuth".into()],
            required_san_patterns: Vec::new(),
            spiffe_uri_pattern: String::new(),
            allow_short_lived: false,
            enabled: true,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        };
        created.apply(body, now)?;
        Ok(created)
    }
    fn apply(&mut self, body: &ProfileInput, now: &str) -> CertsResult<()> {
        if let Some(v) = &body.name {
            self.name = v.trim().to_owned();
        }
        if let Some(v) = &body.description {
            self.description = v.clone();
        }
        if let Some(v) = &body.allowed_key_algorithms {
            self.allowed_key_algorithms = v.clone();
        }
        if let Some(v) = body.max_ttl_seconds {
            self.max_ttl_seconds = v;
        }
        if let Some(v) = &body.allowed_ekus {
            self.allowed_ekus = v.clone();
        }
        if let Some(v) = &body.required_san_patterns {
            self.required_san_patterns = v.clone();
        }
        if let Some(v) = &body.spiffe_uri_pattern {
            self.spiffe_uri_pattern = v.clone();
        }
        if let Some(v) = body.allow_short_lived {
            self.allow_short_lived = v;
        }
        if let Some(v) = body.enabled {
            self.enabled = v;
        }
        self.updated_at = now.to_owned();
        profile::validate(self).map_err(invalid)
    }
}

impl Managed for RenewalPolicy {
    type Create = RenewalPolicyCreateRequest;
    type Update = RenewalPolicyUpdateRequest;
    const KIND: &'static str = "renewal_policy";
    const ID_PREFIX: &'static str = "rp";
    const PERMS: Perms = Perms {
        list: p::RENEWAL_POLICY_LIST,
        create: p::RENEWAL_POLICY_CREATE,
        edit: p::RENEWAL_POLICY_EDIT,
        delete: p::RENEWAL_POLICY_DELETE,
    };
    fn chosen_id(body: &RenewalPolicyCreateRequest) -> Option<&str> {
        body.id.as_deref()
    }
    fn name_of(body: &RenewalPolicyCreateRequest) -> &str {
        &body.name
    }
    fn build(id: String, body: &RenewalPolicyCreateRequest, now: &str) -> CertsResult<Self> {
        let created = Self {
            id,
            name: body.name.trim().to_owned(),
            renewal_window_days: body.renewal_window_days.unwrap_or(30),
            auto_renew: body.auto_renew.unwrap_or(true),
            max_retries: body.max_retries,
            retry_interval_seconds: body.retry_interval_seconds.unwrap_or(3600),
            alert_thresholds_days: body
                .alert_thresholds_days
                .clone()
                .unwrap_or_else(|| DEFAULT_ALERT_THRESHOLDS.to_vec()),
            certificate_profile_id: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        };
        validate_renewal_policy(&created).map_err(invalid)?;
        Ok(created)
    }
    fn apply(&mut self, body: &RenewalPolicyUpdateRequest, now: &str) -> CertsResult<()> {
        if let Some(v) = &body.name {
            self.name = v.trim().to_owned();
        }
        if let Some(v) = body.renewal_window_days {
            self.renewal_window_days = v;
        }
        if let Some(v) = body.auto_renew {
            self.auto_renew = v;
        }
        if let Some(v) = body.max_retries {
            self.max_retries = v;
        }
        if let Some(v) = body.retry_interval_seconds {
            self.retry_interval_seconds = v;
        }
        if let Some(v) = &body.alert_thresholds_days {
            self.alert_thresholds_days = v.clone();
        }
        self.updated_at = now.to_owned();
        validate_renewal_policy(self).map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::generated_id;

    #[test]
    fn generated_ids_are_slugs() {
        assert_eq!(generated_id("t", "Platform Team"), "t-platform-team");
        assert_eq!(generated_id("rp", "  Standard / 30d "), "rp-standard-30d");
        assert!(generated_id("t", "!!!").starts_with("t-"));
    }
}
