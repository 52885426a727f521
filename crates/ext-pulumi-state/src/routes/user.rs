//! Who the caller is and what this backend can do: `pulumi login` and
//! `pulumi stack ls`.

use std::sync::Arc;

use attest_ext::axum::extract::{Query, State};
use attest_ext::axum::http::HeaderMap;
use attest_ext::axum::Json;
use serde::Deserialize;

use crate::auth::{AccessToken, Caller};
use crate::error::Result;
use crate::repo::{self, StackFilter};
use crate::state::PulumiState;
use crate::wire::{
    CapabilitiesResponse, Capability, CliVersionResponse, DefaultOrganization, ListStacksResponse,
    StackSummary, TokenInfo, User, UserInfo,
};

/// Checkpoints at least this large are sent as deltas by the CLI.
pub const DELTA_CUTOFF_BYTES: i64 = 64 * 1024;
/// Newest deployment schema accepted (stored opaquely, so any the CLI
/// writes round-trips).
pub const MAX_DEPLOYMENT_VERSION: i64 = 4;

type St = State<Arc<PulumiState>>;

/// `GET /api/user`: the caller, as a member of the configured org. The
/// shared token is an organization token (login = org name, `tokenInfo`
/// set); an operator logs in as themself.
pub async fn current_user(State(state): St, AccessToken(caller): AccessToken) -> Json<User> {
    let org = &state.settings.org;
    let (login, token_info) = match &caller {
        Caller::SharedToken => (
            org.clone(),
            Some(TokenInfo {
                name: crate::config::TOKEN.to_owned(),
                organization: Some(org.clone()),
            }),
        ),
        Caller::Operator(name) => (name.clone(), None),
    };
    Json(User {
        id: login.clone(),
        github_login: login.clone(),
        name: login,
        email: String::new(),
        avatar_url: String::new(),
        organizations: vec![UserInfo {
            name: org.clone(),
            github_login: org.clone(),
            avatar_url: String::new(),
        }],
        identities: Vec::new(),
        token_info,
    })
}

/// `GET /api/user/organizations/default`: the configured org.
pub async fn default_org(State(state): St, _caller: AccessToken) -> Json<DefaultOrganization> {
    Json(DefaultOrganization {
        github_login: state.settings.org.clone(),
        organization_name: state.settings.org.clone(),
        messages: Vec::new(),
    })
}

/// `GET /api/capabilities`: delta checkpoints (v2), batch encryption and
/// the deployment schema versions stored.
pub async fn capabilities(_caller: AccessToken) -> Json<CapabilitiesResponse> {
    Json(CapabilitiesResponse {
        capabilities: vec![
            Capability {
                capability: "delta-checkpoint-uploads-v2".into(),
                version: Some(2),
                configuration: Some(
                    serde_json::json!({ "checkpointCutoffSizeBytes": DELTA_CUTOFF_BYTES }),
                ),
            },
            Capability {
                capability: "batch-encrypt".into(),
                version: None,
                configuration: None,
            },
            Capability {
                capability: "deployment-schema-version".into(),
                version: Some(1),
                configuration: Some(serde_json::json!({ "version": MAX_DEPLOYMENT_VERSION })),
            },
        ],
    })
}

/// `GET /api/cli/version`. This server does not track Pulumi releases, so
/// it reports the caller's own version (from its `User-Agent`,
/// `pulumi-cli/1 (<version>; <os>)`) as the latest: the CLI never nags
/// about upgrades it cannot verify.
pub async fn cli_version(headers: HeaderMap) -> Json<CliVersionResponse> {
    let version = headers
        .get(attest_ext::axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(cli_version_of)
        .unwrap_or_else(|| "0.0.0".to_owned());
    Json(CliVersionResponse {
        latest_version: version.clone(),
        oldest_without_warning: version,
        latest_dev_version: String::new(),
    })
}

/// The version in `pulumi-cli/1 (3.140.0; linux)`, if it is one.
fn cli_version_of(user_agent: &str) -> Option<String> {
    let rest = user_agent.strip_prefix("pulumi-cli/")?;
    let inner = rest.split_once('(')?.1;
    let version = inner.split(';').next()?.trim().trim_start_matches('v');
    let ok = !version.is_empty()
        && version.len() <= 64
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'));
    ok.then(|| version.to_owned())
}

/// Query of `GET /api/user/stacks`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub project: Option<String>,
    pub organization: Option<String>,
    pub tag_name: Option<String>,
    pub tag_value: Option<String>,
    pub continuation_token: Option<String>,
}

/// `GET /api/user/stacks`: every stack (one page; no continuation).
pub async fn list_stacks(
    State(state): St,
    _caller: AccessToken,
    Query(q): Query<ListQuery>,
) -> Result<Json<ListStacksResponse>> {
    let filter = StackFilter {
        org: q.organization.filter(|s| !s.is_empty()),
        project: q.project.filter(|s| !s.is_empty()),
    };
    let rows = repo::stack_list(state.ctx.store.pool(), &filter).await?;
    let mut stacks = Vec::new();
    for row in rows {
        let tags: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&row.tags).unwrap_or_default();
        if let Some(name) = q.tag_name.as_deref().filter(|s| !s.is_empty()) {
            match (tags.get(name), q.tag_value.as_deref()) {
                (None, _) => continue,
                (Some(v), Some(want)) if !want.is_empty() && v != want => continue,
                _ => {}
            }
        }
        let resource_count = row.checkpoint.as_deref().and_then(resource_count);
        let last_update = if row.version > 0 {
            repo::update_by_version(state.ctx.store.pool(), &row.stack_id, row.version)
                .await?
                .and_then(|u| u.start_time)
        } else {
            None
        };
        stacks.push(StackSummary {
            id: row.stack_id,
            org_name: row.org,
            project_name: row.project,
            stack_name: row.stack,
            last_update,
            resource_count,
        });
    }
    Ok(Json(ListStacksResponse {
        stacks,
        continuation_token: None,
    }))
}

/// Resources in an `UntypedDeployment` text.
pub fn resource_count(checkpoint: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(checkpoint).ok()?;
    let n = v["deployment"]["resources"].as_array().map_or(0, Vec::len);
    i64::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_versions_from_user_agents() {
        assert_eq!(
            cli_version_of("pulumi-cli/1 (3.140.0; linux)").as_deref(),
            Some("3.140.0")
        );
        assert_eq!(
            cli_version_of("pulumi-cli/1 (v3.99.1-dev.0; darwin)").as_deref(),
            Some("3.99.1-dev.0")
        );
        assert_eq!(cli_version_of("curl/8"), None);
        assert_eq!(cli_version_of("pulumi-cli/1 (<script>; x)"), None);
    }
}
