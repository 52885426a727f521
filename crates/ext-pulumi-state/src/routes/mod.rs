//! The Pulumi service routes, as the CLI calls them.
//!
//! They are plain axum routes rather than OpenAPI operations: their client
//! is the Pulumi CLI, their contract is its `apitype` package and their
//! credentials are Pulumi's (`token` / `update-token`), which the core's
//! OpenAPI security schemes (Bearer, client certificate) do not describe.
//! `docs/pulumi.md` lists them; `tests/authorization.rs` walks them.

pub mod deployments;
pub mod secrets;
pub mod stacks;
pub mod updates;
pub mod user;

use std::sync::Arc;

use attest_ext::axum::extract::{DefaultBodyLimit, Path, State};
use attest_ext::axum::routing::{get, head, patch, post};
use attest_ext::axum::Router;
use attest_ext::store::{AuditRepo, NewAuditEntry, WriteTx};
use attest_ext::utoipa_axum::router::OpenApiRouter;
use attest_ext::Mount;

use crate::auth::AccessToken;
use crate::body::{PulumiJson, MAX_BODY_BYTES};
use crate::error::{PulumiError, Result};
use crate::names::StackRef;
use crate::repo::{self, StackRow};
use crate::state::PulumiState;
use crate::wire::UpdateProgramRequest;

type St = Arc<PulumiState>;

/// Update kinds the CLI creates (`POST …/{kind}`) and addresses
/// (`…/{kind}/{updateID}/…`; the CLI itself always says `update` there).
pub const KINDS: [&str; 4] = ["update", "preview", "refresh", "destroy"];

async fn not_found() -> PulumiError {
    PulumiError::NotFound("Not Found".into())
}

fn finish(router: Router<St>, state: &St) -> OpenApiRouter {
    OpenApiRouter::from(
        router
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(state.clone()),
    )
}

/// Every mount of the extension.
pub fn mounts(state: St) -> Vec<Mount> {
    let user = Router::new()
        .route("/", get(user::current_user))
        .route("/stacks", get(user::list_stacks))
        .route("/organizations/default", get(user::default_org));
    let capabilities = Router::new().route("/", get(user::capabilities));
    let cli = Router::new().route("/version", get(user::cli_version));

    let s = "/{org}/{project}/{stack}";
    let mut stacks = Router::new()
        .route(
            "/{org}/{project}",
            post(stacks::create).merge(head(stacks::project_exists)),
        )
        .route(s, get(stacks::get).delete(stacks::delete))
        .route(&format!("{s}/rename"), post(stacks::rename))
        .route(&format!("{s}/tags"), patch(stacks::set_tags))
        .route(&format!("{s}/export"), get(stacks::export))
        .route(
            &format!("{s}/export/{{version}}"),
            get(stacks::export_version),
        )
        .route(&format!("{s}/import"), post(stacks::import))
        .route(&format!("{s}/updates"), get(updates::history))
        .route(&format!("{s}/updates/latest"), get(updates::latest))
        .route(&format!("{s}/encrypt"), post(secrets::encrypt))
        .route(&format!("{s}/decrypt"), post(secrets::decrypt))
        .route(&format!("{s}/batch-encrypt"), post(secrets::batch_encrypt))
        .route(&format!("{s}/batch-decrypt"), post(secrets::batch_decrypt))
        .route(
            &format!("{s}/deployments"),
            post(deployments::create).get(deployments::list),
        )
        .route(&format!("{s}/deployments/{{id}}"), get(deployments::get))
        .route(
            &format!("{s}/deployments/{{id}}/cancel"),
            post(deployments::cancel).delete(deployments::cancel),
        );
    for kind in KINDS {
        let u = format!("{s}/{kind}/{{update_id}}");
        stacks = stacks
            .route(
                &format!("{s}/{kind}"),
                post(
                    move |st: State<St>,
                          caller: AccessToken,
                          path: Path<(String, String, String)>,
                          body: PulumiJson<UpdateProgramRequest>| {
                        updates::create(st, caller, path, kind, body)
                    },
                ),
            )
            .route(&u, get(updates::status).post(updates::start))
            .route(&format!("{u}/checkpoint"), patch(updates::checkpoint))
            .route(
                &format!("{u}/checkpointverbatim"),
                patch(updates::checkpoint_verbatim),
            )
            .route(
                &format!("{u}/checkpointdelta"),
                patch(updates::checkpoint_delta),
            )
            .route(&format!("{u}/events/batch"), post(updates::events_batch))
            .route(&format!("{u}/renew_lease"), post(updates::renew_lease))
            .route(&format!("{u}/complete"), post(updates::complete))
            .route(&format!("{u}/cancel"), post(updates::cancel));
    }
    vec![
        Mount::new("/api/user", finish(user, &state)),
        Mount::new("/api/capabilities", finish(capabilities, &state)),
        Mount::new("/api/cli", finish(cli, &state)),
        Mount::new("/api/stacks", finish(stacks, &state)),
    ]
}

/// The stack named in the path, or 404.
pub async fn load_stack<'c, E>(db: E, r: &StackRef) -> Result<StackRow>
where
    E: attest_ext::store::sqlx::Executor<'c, Database = attest_ext::store::sqlx::Any>,
{
    repo::stack_get(db, &r.org, &r.project, &r.stack)
        .await?
        .ok_or_else(|| r.not_found())
}

/// Appends an audit entry in `tx`.
pub async fn audit(
    state: &PulumiState,
    tx: &mut WriteTx,
    who: &str,
    action: &str,
    detail: String,
) -> Result<()> {
    let mut entry = NewAuditEntry::new(who, action);
    entry.detail = Some(detail);
    AuditRepo::append(tx, &entry, state.ctx.clock.now()).await?;
    Ok(())
}
