//! Who is calling, and what they may do.
//!
//! Naming [`Caller`] in a handler authenticates the request before the
//! handler runs; the handler then asks [`Caller::require`] (or
//! [`Caller::require_on`] for a resource bound to a profile or issuer)
//! for the permission the operation documents. Credentials, in order:
//!
//! 1. `CERTCTL_AUTH_TYPE=none`: everyone is the anonymous administrator
//!    (development only; the server warns at every start).
//! 2. `Authorization: Bearer <api key>`: looked up by its SHA-256; the
//!    key's actor holds the roles granted to it.
//! 3. Otherwise the attestation service's operator authentication: an
//!    OIDC token from its issuer or an operator certificate is the
//!    operator (`User`) with the configured operator role plus roles
//!    granted to them by name; the break-glass token is administrator.

pub mod keys;

use attest_auth::AuthMethod;
use attest_certs_domain::permissions::{Permission, ADMIN_ROLE, CATALOGUE};
use attest_certs_domain::rbac::{self, Grant, ScopeType, Target};
use attest_certs_domain::TENANT;
use attest_certs_store::rbac::{self as roles, Standing, ACTOR_API_KEY, ACTOR_USER};
use attest_proto::certs::auth::EffectivePermission;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::config::AuthType;
use crate::error::{CertsError, CertsResult};
use crate::state::CertsState;

/// Actor id of every request when authentication is off (the seed's
/// reserved demo actor).
pub const ANONYMOUS_ACTOR: &str = "actor-demo-anon";

/// An authenticated caller and what they hold.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The name recorded in the audit log.
    pub actor_id: String,
    /// `APIKey`, `User`, `System` or `Anonymous`.
    pub actor_type: &'static str,
    /// Role ids held.
    pub roles: Vec<String>,
    /// Effective grants.
    pub grants: Vec<Grant>,
}

impl Caller {
    /// Every permission at global scope, as an administrator holds.
    fn administrator(actor_id: &str, actor_type: &'static str) -> Self {
        Self {
            actor_id: actor_id.to_owned(),
            actor_type,
            roles: vec![ADMIN_ROLE.to_owned()],
            grants: all_grants(),
        }
    }

    fn with_standing(actor_id: String, actor_type: &'static str, standing: Standing) -> Self {
        Self {
            actor_id,
            actor_type,
            roles: standing.roles,
            grants: standing.grants,
        }
    }

    /// Whether the caller holds the administrator role.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }

    /// Refuses (403, naming the permission) unless the caller holds
    /// `permission` at global scope.
    pub fn require(&self, permission: &Permission) -> CertsResult<()> {
        self.require_on(permission, Target::default())
    }

    /// Refuses unless the caller holds `permission` globally or scoped to
    /// the target's profile or issuer.
    pub fn require_on(&self, permission: &Permission, target: Target<'_>) -> CertsResult<()> {
        if rbac::allows(&self.grants, permission.id, target) {
            Ok(())
        } else {
            Err(CertsError::Forbidden(format!(
                "permission {} required",
                permission.id
            )))
        }
    }

    /// The grants as the wire lists them.
    pub fn effective_permissions(&self) -> Vec<EffectivePermission> {
        self.grants
            .iter()
            .map(|g| EffectivePermission {
                permission: g.permission.clone(),
                scope_type: g.scope_type.as_str().to_owned(),
                scope_id: g.scope_id.clone(),
            })
            .collect()
    }

    /// The tenant (single-tenant: always [`TENANT`]).
    pub fn tenant_id(&self) -> &'static str {
        TENANT
    }
}

fn all_grants() -> Vec<Grant> {
    CATALOGUE
        .iter()
        .map(|p| Grant {
            permission: p.id.to_owned(),
            scope_type: ScopeType::Global,
            scope_id: None,
        })
        .collect()
}

impl FromRequestParts<CertsState> for Caller {
    type Rejection = CertsError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &CertsState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.auth_type == AuthType::None {
            return Ok(Self::administrator(ANONYMOUS_ACTOR, "Anonymous"));
        }
        if let Some(token) = bearer(parts)? {
            let hash = keys::key_hash(token);
            if let Some((actor, standing)) = roles::key_standing(&state.store, &hash).await? {
                return Ok(Self::with_standing(actor, ACTOR_API_KEY, standing));
            }
        }
        let operator = state
            .operators
            .authenticate_with_peer_cert(
                &parts.headers,
                attest_http::auth::tls_peer_certificate(parts),
            )
            .await
            .map_err(|e| match e {
                attest_auth::AuthError::Forbidden(m) => CertsError::Forbidden(m),
                attest_auth::AuthError::Unauthenticated(_) => {
                    CertsError::Unauthenticated("invalid or missing credentials".into())
                }
            })?;
        attest_http::refuse_forgeable(parts).map_err(CertsError::from)?;
        if operator.method == AuthMethod::BreakGlass {
            return Ok(Self::administrator(&operator.identity, "System"));
        }
        let mut standing = roles::standing(&state.store, &operator.identity, ACTOR_USER).await?;
        if let Some(role) = &state.config.operator_role {
            standing
                .grants
                .extend(roles::role_grants(&state.store, role).await?);
            standing.roles.push(role.clone());
            standing.roles.sort_unstable();
            standing.roles.dedup();
            standing.grants.sort_unstable();
            standing.grants.dedup();
        }
        Ok(Self::with_standing(operator.identity, ACTOR_USER, standing))
    }
}

/// The bearer token, if the request has exactly one `Authorization:
/// Bearer` header. Several headers or a malformed one are refused rather
/// than read as "no credentials".
fn bearer(parts: &Parts) -> CertsResult<Option<&str>> {
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(CertsError::Unauthenticated(
            "more than one Authorization header".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| CertsError::Unauthenticated("malformed Authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Ok(None),
    }
}
