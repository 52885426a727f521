//! Update exclusivity and lease expiry (with the injected clock, no
//! sleeping), a state-file round trip with a realistic deployment, bad
//! input answered as 4xx, and server-side deployments run through a
//! stand-in command — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{databases, note_backends, Auth, Cli, Harness};
use serde_json::{json, Value};

const STACK: &str = "/api/stacks/acme/web/dev";

async fn init(cli: &Cli) {
    cli.ok(
        200,
        "POST",
        "/api/stacks/acme/web",
        Some(&json!({"stackName": "dev"})),
        false,
        &Auth::Access,
    )
    .await;
}

/// Creates and starts an update of `kind`: (id, status, body).
async fn start(cli: &Cli, kind: &str) -> (String, u16, Value) {
    let program = json!({"name": "web", "runtime": "go", "main": "", "description": "",
                         "options": {}, "config": {}, "metadata": {"message": "", "environment": {}}});
    let id = cli
        .ok(
            200,
            "POST",
            &format!("{STACK}/{kind}"),
            Some(&program),
            false,
            &Auth::Access,
        )
        .await["updateID"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = cli
        .call(
            "POST",
            &format!("{STACK}/update/{id}"),
            Some(&json!({"tags": {}})),
            false,
            &Auth::Access,
        )
        .await;
    (id, status, body)
}

#[tokio::test]
async fn concurrent_updates_are_refused_until_the_lease_lapses() {
    let dbs = databases().await;
    note_backends(&dbs);
    for db in dbs {
        let h = Harness::start(&db, &[]).await;
        let cli = h.cli();
        init(&cli).await;

        let (first, status, body) = start(&cli, "update").await;
        assert_eq!(status, 200, "{body}");
        let lease = Auth::Update(body["token"].as_str().unwrap().to_owned());

        // A second `pulumi up` (and a refresh, a destroy, an import) while
        // the first holds the stack: 409, the CLI's "another update is in
        // progress".
        for kind in ["update", "refresh", "destroy"] {
            let (_, status, err) = start(&cli, kind).await;
            assert_eq!(
                (status, err["code"].as_i64()),
                (409, Some(409)),
                "{kind}: {err}"
            );
            assert_eq!(
                err["message"],
                "Conflict: Another update is currently in progress."
            );
        }
        let (status, _) = cli
            .call("POST", &format!("{STACK}/import"),
                  Some(&json!({"version": 3, "deployment": {"manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": ""}}})),
                  true, &Auth::Access)
            .await;
        assert_eq!(status, 409);
        // Previews do not take the stack.
        let (_, status, _) = start(&cli, "preview").await;
        assert_eq!(status, 200);

        // Two racing starts: exactly one wins.
        h.clock.advance(chrono::Duration::seconds(301));
        let program = json!({"name": "web", "runtime": "go", "main": "", "description": "",
                             "options": {}, "config": {}, "metadata": {"message": "", "environment": {}}});
        let mut ids = Vec::new();
        for _ in 0..2 {
            ids.push(
                cli.ok(
                    200,
                    "POST",
                    &format!("{STACK}/update"),
                    Some(&program),
                    false,
                    &Auth::Access,
                )
                .await["updateID"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let empty = json!({});
        let (p0, p1) = (
            format!("{STACK}/update/{}", ids[0]),
            format!("{STACK}/update/{}", ids[1]),
        );
        let (a, b) = tokio::join!(
            cli.call("POST", &p0, Some(&empty), false, &Auth::Access),
            cli.call("POST", &p1, Some(&empty), false, &Auth::Access),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{a:?} {b:?}");

        // The first update's lease lapsed 301 s in (it was never renewed):
        // the winner took over, the first update is failed and its token
        // refused.
        let (status, err) = cli
            .call(
                "POST",
                &format!("{STACK}/update/{first}/renew_lease"),
                Some(&json!({"duration": 60})),
                false,
                &lease,
            )
            .await;
        assert_eq!(status, 409, "{err}");
        let poll = cli
            .ok(
                200,
                "GET",
                &format!("{STACK}/update/{first}"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(poll["status"], "failed");

        // Renewal keeps a lease alive across the 300 s mark.
        let winner = if a.0 == 200 { &a.1 } else { &b.1 };
        let wlease = Auth::Update(winner["token"].as_str().unwrap().to_owned());
        let wid = if a.0 == 200 { &ids[0] } else { &ids[1] };
        for _ in 0..3 {
            h.clock.advance(chrono::Duration::seconds(200));
            cli.ok(
                200,
                "POST",
                &format!("{STACK}/update/{wid}/renew_lease"),
                Some(&json!({"duration": 300})),
                false,
                &wlease,
            )
            .await;
        }
        let (_, status, _) = start(&cli, "update").await;
        assert_eq!(status, 409, "a renewed lease still holds the stack");
        // A renewal asks for at most 300 s: 301 s of silence frees the stack.
        h.clock.advance(chrono::Duration::seconds(301));
        let (_, status, body) = start(&cli, "update").await;
        assert_eq!(status, 200, "{body}");
        h.stop().await;
        db.close().await;
    }
}

/// A deployment as `pulumi stack export` writes it, pretty-printed with the
/// CLI's field order, with a secret, a provider, dependencies, property
/// dependencies, a pending operation and a protect flag.
fn state_file() -> String {
    r#"{
    "version": 3,
    "deployment": {
        "manifest": {
            "time": "2026-05-14T17:22:31.512684531Z",
            "magic": "9a3c1fbd6d14c5b5e2b0d6e1c0fa8c5b3a36d7b0c1e4f5a6b7c8d9e0f1a2b3c4",
            "version": "v3.150.0",
            "plugins": [{"name": "aws", "path": "/home/u/.pulumi/plugins/resource-aws-v6.66.0/pulumi-resource-aws", "type": "resource", "version": "6.66.0"}]
        },
        "secrets_providers": {
            "type": "service",
            "state": {"url": "https://attest.example", "owner": "acme", "project": "web", "stack": "dev"}
        },
        "resources": [
            {
                "urn": "urn:pulumi:dev::web::pulumi:pulumi:Stack::web-dev",
                "custom": false,
                "type": "pulumi:pulumi:Stack",
                "outputs": {"url": "http://web-1234.eu-west-1.elb.amazonaws.com", "dbPassword": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:AAAAAAAAAAAAAAAAq0SgU3Z3xj0wE0FFv1Zb"}},
                "created": "2026-05-14T17:20:00.000000Z",
                "modified": "2026-05-14T17:22:31.000000Z"
            },
            {
                "urn": "urn:pulumi:dev::web::pulumi:providers:aws::default_6_66_0",
                "custom": true,
                "id": "5b1d8b9e-2f4a-4d8e-9c4e-0a2b3c4d5e6f",
                "type": "pulumi:providers:aws",
                "inputs": {"__internal": {"pluginDownloadURL": ""}, "region": "eu-west-1", "version": "6.66.0"},
                "outputs": {"region": "eu-west-1", "version": "6.66.0"},
                "created": "2026-05-14T17:20:01.000000Z",
                "modified": "2026-05-14T17:20:01.000000Z"
            },
            {
                "urn": "urn:pulumi:dev::web::aws:s3/bucketV2:BucketV2::assets",
                "custom": true,
                "id": "assets-7f3a2c1",
                "type": "aws:s3/bucketV2:BucketV2",
                "inputs": {"bucket": "assets-7f3a2c1", "forceDestroy": false, "tags": {"env": "dev"}},
                "outputs": {"arn": "arn:aws:s3:::assets-7f3a2c1", "bucket": "assets-7f3a2c1", "region": "eu-west-1", "tags": {"env": "dev"}},
                "parent": "urn:pulumi:dev::web::pulumi:pulumi:Stack::web-dev",
                "protect": true,
                "dependencies": [],
                "provider": "urn:pulumi:dev::web::pulumi:providers:aws::default_6_66_0::5b1d8b9e-2f4a-4d8e-9c4e-0a2b3c4d5e6f",
                "propertyDependencies": {"bucket": [], "tags": []},
                "created": "2026-05-14T17:20:05.000000Z",
                "modified": "2026-05-14T17:20:05.000000Z"
            }
        ],
        "pending_operations": [
            {
                "resource": {
                    "urn": "urn:pulumi:dev::web::aws:s3/bucketObject:BucketObject::index.html",
                    "custom": true,
                    "type": "aws:s3/bucketObject:BucketObject",
                    "inputs": {"bucket": "assets-7f3a2c1", "key": "index.html"},
                    "parent": "urn:pulumi:dev::web::pulumi:pulumi:Stack::web-dev",
                    "provider": "urn:pulumi:dev::web::pulumi:providers:aws::default_6_66_0::5b1d8b9e-2f4a-4d8e-9c4e-0a2b3c4d5e6f"
                },
                "type": "creating"
            }
        ],
        "metadata": {}
    }
}"#
    .to_owned()
}

#[tokio::test]
async fn state_files_round_trip_and_bad_input_is_4xx() {
    let dbs = databases().await;
    note_backends(&dbs);
    for db in dbs {
        let h = Harness::start(&db, &[]).await;
        let cli = h.cli();
        init(&cli).await;

        // pulumi stack import --file state.json (gzip), then export.
        let file = state_file();
        let (status, imported) = cli
            .send(
                "POST",
                &format!("{STACK}/import"),
                Some(&file),
                true,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 200, "{imported}");
        let update_id = serde_json::from_str::<Value>(&imported).unwrap()["updateId"]
            .as_str()
            .unwrap()
            .to_owned();
        let poll = cli
            .ok(
                200,
                "GET",
                &format!("{STACK}/update/{update_id}"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(poll["status"], "succeeded");
        assert!(poll.get("continuationToken").is_none());
        let (_, exported) = cli
            .send(
                "GET",
                &format!("{STACK}/export"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        let (a, b): (Value, Value) = (
            serde_json::from_str(&file).unwrap(),
            serde_json::from_str(&exported).unwrap(),
        );
        assert_eq!(a, b, "the state round-trips field for field");
        assert!(
            exported.contains("\n        \"resources\": ["),
            "and keeps its formatting"
        );
        // Deleting without --force is refused: the stack has resources.
        let (status, _) = cli.call("DELETE", STACK, None, false, &Auth::Access).await;
        assert_eq!(status, 400);

        // Version checks on import and checkpoints.
        for bad in [
            json!({"version": 9, "deployment": {}}),
            json!({"version": 0, "deployment": {}}),
            json!({"version": 3}),
            json!({"version": 3, "deployment": "x"}),
        ] {
            let (status, err) = cli
                .call(
                    "POST",
                    &format!("{STACK}/import"),
                    Some(&bad),
                    false,
                    &Auth::Access,
                )
                .await;
            assert_eq!(
                (status, err["code"].as_i64()),
                (400, Some(400)),
                "{bad}: {err}"
            );
        }
        // Malformed bodies, gzip that is not, unknown stacks, bad names.
        let (status, err) = cli
            .send(
                "POST",
                &format!("{STACK}/encrypt"),
                Some("{not json"),
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 400, "{err}");
        let (status, _) = cli
            .send(
                "POST",
                &format!("{STACK}/import"),
                Some("plain"),
                false,
                &Auth::Raw(format!("token {}", common::PULUMI_TOKEN)),
            )
            .await;
        assert_eq!(status, 400);
        let mut req = cli
            .http
            .post(format!("{}{STACK}/import", cli.base))
            .header("Authorization", format!("token {}", common::PULUMI_TOKEN))
            .header("Content-Encoding", "gzip")
            .body("definitely not gzip");
        req = req.header("Content-Type", "application/json");
        assert_eq!(req.send().await.unwrap().status(), 400);
        let (status, _) = cli
            .call(
                "GET",
                "/api/stacks/acme/web/nope",
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 404);
        let (status, err) = cli
            .call(
                "GET",
                "/api/stacks/acme/web/bad%20name",
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!((status, err["code"].as_i64()), (400, Some(400)));
        let (status, err) = cli
            .call(
                "GET",
                "/api/stacks/acme/web/dev/no-such-thing",
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(
            (status, err["code"].as_i64()),
            (404, Some(404)),
            "Pulumi-shaped 404 for unknown paths"
        );
        // Ciphertexts from elsewhere and garbage.
        cli.ok(
            200,
            "POST",
            &format!("{STACK}/encrypt"),
            Some(&json!({"plaintext": "YQ=="})),
            false,
            &Auth::Access,
        )
        .await;
        for ct in ["djI6eA==", "djE6eA==", "!!!"] {
            let (status, _) = cli
                .call(
                    "POST",
                    &format!("{STACK}/decrypt"),
                    Some(&json!({"ciphertext": ct})),
                    false,
                    &Auth::Access,
                )
                .await;
            assert_eq!(status, 400, "{ct}");
        }
        // A delta with a wrong hash or before any verbatim save.
        let (id, _, started) = start(&cli, "update").await;
        let lease = Auth::Update(started["token"].as_str().unwrap().to_owned());
        let delta = json!({"version": 3, "checkpointHash": "00", "sequenceNumber": 1,
                           "deploymentDelta": [{"Span": {"start": {"offset": 0}, "end": {"offset": 0}}, "NewText": ""}]});
        let (status, _) = cli
            .call(
                "PATCH",
                &format!("{STACK}/update/{id}/checkpointdelta"),
                Some(&delta),
                true,
                &lease,
            )
            .await;
        assert_eq!(status, 409, "nothing saved to patch yet");
        let verbatim = format!(
            "{{\"version\":3,\"untypedDeployment\":{},\"sequenceNumber\":1}}",
            state_file()
        );
        let (status, _) = cli
            .send(
                "PATCH",
                &format!("{STACK}/update/{id}/checkpointverbatim"),
                Some(&verbatim),
                true,
                &lease,
            )
            .await;
        assert_eq!(status, 200);
        let mut wrong = delta.clone();
        wrong["sequenceNumber"] = json!(2);
        let (status, err) = cli
            .call(
                "PATCH",
                &format!("{STACK}/update/{id}/checkpointdelta"),
                Some(&wrong),
                true,
                &lease,
            )
            .await;
        assert_eq!(status, 400, "{err}");
        assert!(
            err["message"].as_str().unwrap().contains("checkpointHash"),
            "{err}"
        );
        let (_, exported) = cli
            .send(
                "GET",
                &format!("{STACK}/export"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(
            exported,
            state_file(),
            "a refused delta leaves the checkpoint untouched"
        );
        h.stop().await;
        db.close().await;
    }
}

#[tokio::test]
async fn every_route_refuses_missing_and_wrong_credentials() {
    let db = attest_store::testing::TestDb::sqlite_with(&[]).await;
    let h = Harness::start(&db, &[]).await;
    let cli = h.cli();
    init(&cli).await;
    let (id, _, started) = start(&cli, "update").await;
    let token = started["token"].as_str().unwrap().to_owned();
    let u = format!("{STACK}/update/{id}");
    let access_routes = [
        ("GET", "/api/user".to_owned()),
        ("GET", "/api/user/stacks".to_owned()),
        ("GET", "/api/user/organizations/default".to_owned()),
        ("GET", "/api/capabilities".to_owned()),
        ("POST", "/api/stacks/acme/web".to_owned()),
        ("HEAD", "/api/stacks/acme/web".to_owned()),
        ("GET", STACK.to_owned()),
        ("DELETE", STACK.to_owned()),
        ("POST", format!("{STACK}/rename")),
        ("PATCH", format!("{STACK}/tags")),
        ("GET", format!("{STACK}/export")),
        ("GET", format!("{STACK}/export/1")),
        ("POST", format!("{STACK}/import")),
        ("GET", format!("{STACK}/updates")),
        ("GET", format!("{STACK}/updates/latest")),
        ("POST", format!("{STACK}/encrypt")),
        ("POST", format!("{STACK}/decrypt")),
        ("POST", format!("{STACK}/batch-encrypt")),
        ("POST", format!("{STACK}/batch-decrypt")),
        ("POST", format!("{STACK}/update")),
        ("POST", format!("{STACK}/preview")),
        ("POST", format!("{STACK}/refresh")),
        ("POST", format!("{STACK}/destroy")),
        ("GET", u.clone()),
        ("POST", u.clone()),
        ("POST", format!("{u}/cancel")),
        ("POST", format!("{STACK}/deployments")),
        ("GET", format!("{STACK}/deployments")),
        ("GET", format!("{STACK}/deployments/x")),
        ("DELETE", format!("{STACK}/deployments/x/cancel")),
    ];
    let update_routes = [
        ("PATCH", format!("{u}/checkpoint")),
        ("PATCH", format!("{u}/checkpointverbatim")),
        ("PATCH", format!("{u}/checkpointdelta")),
        ("POST", format!("{u}/events/batch")),
        ("POST", format!("{u}/renew_lease")),
        ("POST", format!("{u}/complete")),
    ];
    let wrong = [
        Auth::None,
        Auth::Raw("token wrong-token-wrong-token".into()),
        Auth::Raw(format!("token {}x", common::PULUMI_TOKEN)),
        Auth::Raw(format!("Bearer {}", common::PULUMI_TOKEN)),
        Auth::Raw(format!("Bearer {}", common::ADMIN_TOKEN)),
        Auth::Raw(format!("token {}", common::ADMIN_TOKEN)),
        Auth::Raw("token eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".into()),
        Auth::Raw("token ".into()),
    ];
    for (method, path) in &access_routes {
        for auth in wrong.iter().chain([Auth::Update(token.clone())].iter()) {
            let (status, body) = cli.call(method, path, Some(&json!({})), false, auth).await;
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {body}");
            if *method != "HEAD" {
                assert_eq!(body["code"], 401, "{method} {path}");
            }
        }
    }
    for (method, path) in &update_routes {
        for auth in wrong
            .iter()
            .chain([Auth::Access, Auth::Update("0".repeat(64))].iter())
        {
            let (status, body) = cli.call(method, path, Some(&json!({})), false, auth).await;
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {body}");
        }
        // The right lease token gets past authentication (the empty body
        // is then refused as input, not as credentials).
        let (status, _) = cli
            .call(
                method,
                path,
                Some(&json!({})),
                false,
                &Auth::Update(token.clone()),
            )
            .await;
        assert_ne!(status, 401, "{method} {path}");
    }
    // A lease token of one update does not open another's.
    let (other, _, _) = start(&cli, "preview").await;
    let (status, _) = cli
        .call(
            "POST",
            &format!("{STACK}/update/{other}/renew_lease"),
            Some(&json!({"duration": 60})),
            false,
            &Auth::Update(token.clone()),
        )
        .await;
    assert_eq!(status, 401);
    h.stop().await;
    db.close().await;
}

/// A stand-in for the Pulumi CLI: says nothing, exits with `code`
/// (or sleeps until killed when `code` is `None`).
fn stand_in(dir: &std::path::Path, name: &str, code: Option<i32>) -> String {
    let path = dir.join(name);
    let body = match code {
        Some(c) => format!("#!/bin/sh\nexit {c}\n"),
        None => "#!/bin/sh\nexec sleep 600\n".to_owned(),
    };
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

async fn wait_status(cli: &Cli, id: &str, want: &str) -> Value {
    for _ in 0..400 {
        let d = cli
            .ok(
                200,
                "GET",
                &format!("{STACK}/deployments/{id}"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        if d["status"] == want {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deployment {id} never reached {want}");
}

#[tokio::test]
async fn server_side_deployments_run_the_configured_command() {
    let tools = tempfile::tempdir().unwrap();
    let ok = stand_in(tools.path(), "ok", Some(0));
    let fail = stand_in(tools.path(), "fail", Some(3));
    let hang = stand_in(tools.path(), "hang", None);
    let dbs = databases().await;
    note_backends(&dbs);
    for db in dbs {
        // Absent command: a clear 503, nothing recorded.
        let h = Harness::start(&db, &[("ITL_PULUMI_DEPLOY_COMMAND", "/nonexistent/pulumi")]).await;
        let cli = h.cli();
        init(&cli).await;
        let req = json!({"operation": "update", "source": {"repoURL": "https://git.example/infra", "branch": "main", "repoDir": "envs/dev"}});
        let (status, err) = cli
            .call(
                "POST",
                &format!("{STACK}/deployments"),
                Some(&req),
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 503, "{err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("/nonexistent/pulumi"),
            "{err}"
        );
        let list = cli
            .ok(
                200,
                "GET",
                &format!("{STACK}/deployments"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(list, json!([]));
        h.stop().await;

        for (command, want, code) in [(&ok, "succeeded", Some(0)), (&fail, "failed", Some(3))] {
            let h = Harness::start(&db, &[("ITL_PULUMI_DEPLOY_COMMAND", command)]).await;
            let cli = h.cli();
            let _ = cli
                .call(
                    "POST",
                    "/api/stacks/acme/web",
                    Some(&json!({"stackName": "dev"})),
                    false,
                    &Auth::Access,
                )
                .await;
            let created = cli
                .ok(
                    202,
                    "POST",
                    &format!("{STACK}/deployments"),
                    Some(&req),
                    false,
                    &Auth::Access,
                )
                .await;
            assert_eq!(created["status"], "queued");
            let id = created["id"].as_str().unwrap().to_owned();
            let done = wait_status(&cli, &id, want).await;
            assert_eq!(done["exitCode"].as_i64(), code);
            let steps: Vec<&str> = done["transitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["status"].as_str().unwrap())
                .collect();
            assert_eq!(steps, ["queued", "running", want]);
            assert_eq!(done["source"]["repoURL"], "https://git.example/infra");
            assert!(done["logs"].is_array());
            h.server.shutdown().await.unwrap();
        }

        let h = Harness::start(&db, &[("ITL_PULUMI_DEPLOY_COMMAND", &hang)]).await;
        let cli = h.cli();
        let created = cli
            .ok(
                202,
                "POST",
                &format!("{STACK}/deployments"),
                Some(&json!({"operation": "destroy"})),
                false,
                &Auth::Access,
            )
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        wait_status(&cli, &id, "running").await;
        let (status, _) = cli
            .call(
                "POST",
                &format!("{STACK}/deployments"),
                Some(&req),
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 409, "one deployment per stack at a time");
        cli.ok(
            200,
            "DELETE",
            &format!("{STACK}/deployments/{id}/cancel"),
            None,
            false,
            &Auth::Access,
        )
        .await;
        let done = wait_status(&cli, &id, "cancelled").await;
        assert_eq!(done["transitions"].as_array().unwrap().len(), 3);
        let (status, _) = cli
            .call(
                "DELETE",
                &format!("{STACK}/deployments/{id}/cancel"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 409);
        let list = cli
            .ok(
                200,
                "GET",
                &format!("{STACK}/deployments"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(list.as_array().unwrap().len(), 3);
        assert_eq!(list[0]["version"], 3, "newest first");
        let (status, _) = cli
            .call(
                "POST",
                &format!("{STACK}/deployments"),
                Some(&json!({"operation": "rm -rf"})),
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 400);
        h.stop().await;
        db.close().await;
    }
}
