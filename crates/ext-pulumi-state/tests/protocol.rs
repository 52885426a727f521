//! The request sequence the Pulumi CLI makes for `login`, `stack init`,
//! `config set --secret`, `up` (checkpoints, events, lease renewal),
//! `stack export`, `cancel`, `destroy` and `stack history`, replayed
//! request by request (paths, verbs, headers, bodies as the CLI's
//! `httpstate/client` builds them) and checked field by field, on SQLite
//! and PostgreSQL. The transcript is printed (`--nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{databases, note_backends, Auth, Cli, Harness};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const STACK: &str = "/api/stacks/acme/infra/production";

/// A realistic checkpoint of a small stack, as `stack.SerializeDeployment`
/// writes it (compact, the CLI's field order): the stack component, the
/// default provider and one resource with a secret output.
fn checkpoint(secret_ct: &str, with_bucket: bool) -> String {
    let mut resources = vec![
        json!({"urn":"urn:pulumi:production::infra::pulumi:pulumi:Stack::infra-production","custom":false,"type":"pulumi:pulumi:Stack","outputs":{"bucketName":"logs-7f3a"},"created":"2026-05-14T17:00:00.000000Z","modified":"2026-05-14T17:00:00.000000Z"}),
        json!({"urn":"urn:pulumi:production::infra::pulumi:providers:random::default_4_16_0","custom":true,"id":"0f2e3c5a-4b1d-4e77-9d0a-111111111111","type":"pulumi:providers:random","inputs":{"__internal":{"pluginDownloadURL":""},"version":"4.16.0"},"outputs":{"version":"4.16.0"},"created":"2026-05-14T17:00:01.000000Z","modified":"2026-05-14T17:00:01.000000Z"}),
    ];
    if with_bucket {
        resources.push(json!({"urn":"urn:pulumi:production::infra::random:index/randomPassword:RandomPassword::db","custom":true,"id":"none","type":"random:index/randomPassword:RandomPassword","inputs":{"length":24,"special":true},"outputs":{"length":24,"result":{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","ciphertext":secret_ct}},"parent":"urn:pulumi:production::infra::pulumi:pulumi:Stack::infra-production","provider":"urn:pulumi:production::infra::pulumi:providers:random::default_4_16_0::0f2e3c5a-4b1d-4e77-9d0a-111111111111","additionalSecretOutputs":["result"],"created":"2026-05-14T17:00:02.000000Z","modified":"2026-05-14T17:00:02.000000Z"}));
    }
    let deployment = json!({
        "manifest": {"time":"2026-05-14T17:00:03.000000Z","magic":"6b5ee4fc7c5a1c3b2b7e6a8e0a8c3b47f1a1f0d2c5e9b8a7d6c5b4a3f2e1d0c9","version":"v3.150.0"},
        "secrets_providers": {"type":"service","state":{"url":"https://attest.example","owner":"acme","project":"infra","stack":"production"}},
        "metadata": {},
        "resources": resources,
    });
    format!("{{\"version\":3,\"deployment\":{deployment}}}")
}

/// The delta the CLI would send to go from `before` to `after`: one edit
/// replacing the differing middle, with the SHA-256 of `after`.
fn delta(before: &str, after: &str) -> (Value, String) {
    let prefix = before
        .bytes()
        .zip(after.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = before[prefix..]
        .bytes()
        .rev()
        .zip(after[prefix..].bytes().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (end_b, end_a) = (before.len() - suffix, after.len() - suffix);
    let edits = json!([{
        "Span": {"uri": "", "start": {"line": 1, "column": 1, "offset": prefix},
                 "end": {"line": 1, "column": 1, "offset": end_b}},
        "NewText": &after[prefix..end_a],
    }]);
    (edits, hex::encode(Sha256::digest(after.as_bytes())))
}

/// `pulumi up`: create, start, events, checkpoints (verbatim then delta),
/// lease renewal, complete. Returns the checkpoint text it saved.
async fn up(cli: &Cli, kind: &str, resources: bool, secret_ct: &str) -> (String, i64) {
    // CreateUpdate: UpdateProgramRequest.
    let program = json!({
        "name": "infra", "runtime": "nodejs", "main": "", "description": "",
        "options": {"localPolicyPackPaths": null, "color": "raw", "dryRun": false,
                    "parallel": 16, "showConfig": false, "showReplacementSteps": false,
                    "showNames": false, "summary": false, "debug": false},
        "config": {"infra:db_password": {"string": STANDARD.encode(secret_ct), "secret": true, "object": false},
                   "aws:region": {"string": "eu-west-1", "secret": false, "object": false}},
        "metadata": {"message": "deploy logs bucket", "environment": {"git.head": "4f1d9c", "exec.kind": "cli"}},
    });
    let created = cli
        .ok(
            200,
            "POST",
            &format!("{STACK}/{kind}"),
            Some(&program),
            false,
            &Auth::Access,
        )
        .await;
    let id = created["updateID"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "{created}");
    // StartUpdate: StartUpdateRequest (tags, journalVersion 1).
    let start = json!({"tags": {"pulumi:project": "infra", "pulumi:runtime": "nodejs"}, "journalVersion": 1});
    let started = cli
        .ok(
            200,
            "POST",
            &format!("{STACK}/update/{id}"),
            Some(&start),
            false,
            &Auth::Access,
        )
        .await;
    let token = started["token"].as_str().unwrap().to_owned();
    assert!(started["tokenExpiration"].as_i64().unwrap() > 0);
    assert!(
        started.get("journalVersion").is_none(),
        "no journaling: {started}"
    );
    let version = started["version"].as_i64().unwrap();
    let lease = Auth::Update(token.clone());
    let u = format!("{STACK}/update/{id}");

    // RecordEngineEvents (gzip): preludeEvent + resourcePreEvent.
    let events = json!({"events": [
        {"sequence": 0, "timestamp": 1_778_778_000, "preludeEvent": {"config": {"aws:region": "eu-west-1"}}},
        {"sequence": 1, "timestamp": 1_778_778_001, "resourcePreEvent": {"metadata": {"op": "create", "urn": "urn:pulumi:production::infra::pulumi:pulumi:Stack::infra-production", "type": "pulumi:pulumi:Stack", "provider": ""}}},
    ]});
    cli.ok(
        200,
        "POST",
        &format!("{u}/events/batch"),
        Some(&events),
        true,
        &lease,
    )
    .await;
    // The same batch again (the CLI retries): stored once.
    cli.ok(
        200,
        "POST",
        &format!("{u}/events/batch"),
        Some(&events),
        true,
        &lease,
    )
    .await;

    // PatchUpdateCheckpointVerbatim (gzip), sequence 1: the baseline.
    let first = checkpoint(secret_ct, false);
    let verbatim = format!("{{\"version\":3,\"untypedDeployment\":{first},\"sequenceNumber\":1}}");
    let (status, _) = cli
        .send(
            "PATCH",
            &format!("{u}/checkpointverbatim"),
            Some(&verbatim),
            true,
            &lease,
        )
        .await;
    assert_eq!(status, 200);
    // PatchUpdateCheckpointDelta (gzip), sequence 2.
    let second = checkpoint(secret_ct, resources);
    let (edits, hash) = delta(&first, &second);
    let body = json!({"version": 3, "checkpointHash": hash, "sequenceNumber": 2, "deploymentDelta": edits});
    cli.ok(
        200,
        "PATCH",
        &format!("{u}/checkpointdelta"),
        Some(&body),
        true,
        &lease,
    )
    .await;
    // A retried sequence number is accepted and changes nothing.
    cli.ok(
        200,
        "PATCH",
        &format!("{u}/checkpointdelta"),
        Some(&body),
        true,
        &lease,
    )
    .await;

    // RenewUpdateLease (the token source does this every few minutes).
    let renewed = cli
        .ok(
            200,
            "POST",
            &format!("{u}/renew_lease"),
            Some(&json!({"duration": 300})),
            false,
            &lease,
        )
        .await;
    assert_eq!(renewed["token"], token.as_str());

    // Summary event, then CompleteUpdate.
    let summary = json!({"events": [
        {"sequence": 2, "timestamp": 1_778_778_009, "summaryEvent": {"maybeCorrupt": false, "durationSeconds": 9, "resourceChanges": {"create": 3}, "policyPacks": {}}},
    ]});
    cli.ok(
        200,
        "POST",
        &format!("{u}/events/batch"),
        Some(&summary),
        true,
        &lease,
    )
    .await;
    cli.ok(
        204,
        "POST",
        &format!("{u}/complete"),
        Some(&json!({"status": "succeeded"})),
        false,
        &lease,
    )
    .await;
    // The token is spent: the update is over.
    let (status, err) = cli
        .call(
            "POST",
            &format!("{u}/renew_lease"),
            Some(&json!({"duration": 300})),
            false,
            &lease,
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["code"], 409);
    (second, version)
}

#[tokio::test]
async fn the_cli_request_sequence_on_every_backend() {
    let dbs = databases().await;
    note_backends(&dbs);
    for db in dbs {
        let backend = db.backend();
        let h = Harness::start(&db, &[]).await;
        let cli = h.cli();

        // ---- pulumi login <url> ----
        let user = cli
            .ok(200, "GET", "/api/user", None, false, &Auth::Access)
            .await;
        assert_eq!(user["githubLogin"], "acme");
        assert_eq!(user["organizations"][0]["githubLogin"], "acme");
        assert_eq!(user["tokenInfo"]["organization"], "acme");
        let caps = cli
            .ok(200, "GET", "/api/capabilities", None, false, &Auth::Access)
            .await;
        let names: Vec<&str> = caps["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["capability"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "delta-checkpoint-uploads-v2",
                "batch-encrypt",
                "deployment-schema-version"
            ]
        );
        assert_eq!(caps["capabilities"][0]["version"], 2);
        assert!(caps["capabilities"][0]["configuration"]["checkpointCutoffSizeBytes"].is_i64());
        let version = cli
            .ok(200, "GET", "/api/cli/version", None, false, &Auth::Access)
            .await;
        assert_eq!(version["latestVersion"], "3.150.0");
        assert_eq!(version["oldestWithoutWarning"], "3.150.0");
        let org = cli
            .ok(
                200,
                "GET",
                "/api/user/organizations/default",
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(org["gitHubLogin"], "acme");

        // ---- pulumi stack init acme/infra/production ----
        let (status, missing) = cli.call("GET", STACK, None, false, &Auth::Access).await;
        assert_eq!(
            (status, missing["code"].as_i64()),
            (404, Some(404)),
            "{missing}"
        );
        let (status, _) = cli
            .call("HEAD", "/api/stacks/acme/infra", None, false, &Auth::Access)
            .await;
        assert_eq!(status, 404);
        let create = json!({"stackName": "production", "tags": {"pulumi:project": "infra"}});
        let created = cli
            .ok(
                200,
                "POST",
                "/api/stacks/acme/infra",
                Some(&create),
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(created, json!({}));
        let (status, dup) = cli
            .call(
                "POST",
                "/api/stacks/acme/infra",
                Some(&create),
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!((status, dup["code"].as_i64()), (409, Some(409)));
        let stack = cli.ok(200, "GET", STACK, None, false, &Auth::Access).await;
        assert_eq!(
            stack,
            json!({"orgName": "acme", "projectName": "infra", "stackName": "production",
                   "activeUpdate": "", "tags": {"pulumi:project": "infra"}, "version": 0})
        );

        // ---- pulumi config set --secret db_password s3cr3t! ----
        let enc = cli
            .ok(
                200,
                "POST",
                &format!("{STACK}/encrypt"),
                Some(&json!({"plaintext": STANDARD.encode("s3cr3t!")})),
                false,
                &Auth::Access,
            )
            .await;
        let ct = STANDARD
            .decode(enc["ciphertext"].as_str().unwrap())
            .unwrap();
        let ct_text = String::from_utf8(ct.clone()).unwrap();
        assert!(ct_text.starts_with("v1:"), "{ct_text}");
        assert_eq!(STANDARD.decode(&ct_text[3..]).unwrap().len(), 12 + 7 + 16);
        let dec = cli
            .ok(
                200,
                "POST",
                &format!("{STACK}/decrypt"),
                Some(&json!({"ciphertext": STANDARD.encode(&ct)})),
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(
            STANDARD.decode(dec["plaintext"].as_str().unwrap()).unwrap(),
            b"s3cr3t!"
        );

        // ---- pulumi up ----
        // The CLI reads the stack, its last state and decrypts config in a batch.
        cli.ok(200, "GET", STACK, None, false, &Auth::Access).await;
        let empty = cli
            .ok(
                200,
                "GET",
                &format!("{STACK}/export"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(empty["version"], 3);
        assert!(empty["deployment"]["manifest"]["time"].is_string());
        let batch = cli
            .ok(
                200,
                "POST",
                &format!("{STACK}/batch-decrypt"),
                Some(&json!({"ciphertexts": [STANDARD.encode(&ct)]})),
                true,
                &Auth::Access,
            )
            .await;
        assert_eq!(
            batch["plaintexts"][STANDARD.encode(&ct)],
            STANDARD.encode("s3cr3t!")
        );
        let (saved, v1) = up(&cli, "update", true, &ct_text).await;
        assert_eq!(v1, 1);

        // ---- pulumi stack export ----
        let (status, exported) = cli
            .send(
                "GET",
                &format!("{STACK}/export"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            exported, saved,
            "export answers the checkpoint byte for byte"
        );
        let (status, by_version) = cli
            .send(
                "GET",
                &format!("{STACK}/export/1"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!((status, by_version.as_str()), (200, saved.as_str()));
        let stack = cli.ok(200, "GET", STACK, None, false, &Auth::Access).await;
        assert_eq!(stack["version"], 1);
        assert_eq!(
            stack["tags"]["pulumi:runtime"], "nodejs",
            "StartUpdate replaced the tags"
        );
        let first_update = stack["activeUpdate"].as_str().unwrap().to_owned();
        let status_poll = cli
            .ok(
                200,
                "GET",
                &format!("{STACK}/update/{first_update}"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status_poll, json!({"status": "succeeded", "events": []}));

        // ---- pulumi cancel (of an update another terminal is running) ----
        let program = json!({"name": "infra", "runtime": "nodejs", "main": "", "description": "",
                             "options": {}, "config": {}, "metadata": {"message": "", "environment": {}}});
        let running = cli
            .ok(
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
            .to_owned();
        let started = cli
            .ok(
                200,
                "POST",
                &format!("{STACK}/update/{running}"),
                Some(&json!({})),
                false,
                &Auth::Access,
            )
            .await;
        let running_lease = Auth::Update(started["token"].as_str().unwrap().to_owned());
        let stack = cli.ok(200, "GET", STACK, None, false, &Auth::Access).await;
        assert_eq!(stack["activeUpdate"], running.as_str());
        assert_eq!(stack["currentOperation"]["kind"], "update");
        cli.ok(
            204,
            "POST",
            &format!("{STACK}/update/{running}/cancel"),
            None,
            false,
            &Auth::Access,
        )
        .await;
        let (status, err) = cli
            .call("PATCH", &format!("{STACK}/update/{running}/checkpointverbatim"),
                  Some(&json!({"version": 3, "untypedDeployment": serde_json::from_str::<Value>(&saved).unwrap(), "sequenceNumber": 1})),
                  true, &running_lease)
            .await;
        assert_eq!((status, err["code"].as_i64()), (409, Some(409)), "{err}");
        let (status, _) = cli
            .call(
                "POST",
                &format!("{STACK}/update/{running}/cancel"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 409, "cancelling twice");

        // ---- pulumi destroy ----
        let (emptied, v3) = up(&cli, "destroy", false, &ct_text).await;
        assert_eq!(v3, 3);
        let (_, exported) = cli
            .send(
                "GET",
                &format!("{STACK}/export"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(exported, emptied);

        // ---- pulumi stack history ----
        let history = cli
            .ok(
                200,
                "GET",
                &format!("{STACK}/updates?pageSize=10&page=1"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        let updates = history["updates"].as_array().unwrap();
        let summary: Vec<(String, String, i64)> = updates
            .iter()
            .map(|u| {
                (
                    u["kind"].as_str().unwrap().into(),
                    u["result"].as_str().unwrap().into(),
                    u["version"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("destroy".into(), "succeeded".into(), 3),
                ("update".into(), "failed".into(), 2),
                ("update".into(), "succeeded".into(), 1)
            ]
        );
        let first = &updates[2];
        assert_eq!(first["message"], "deploy logs bucket");
        assert_eq!(first["environment"]["git.head"], "4f1d9c");
        assert_eq!(first["config"]["infra:db_password"]["secret"], true);
        assert_eq!(first["resourceChanges"], json!({"create": 3}));
        assert_eq!(first["resourceCount"], 3);
        assert!(first["startTime"].as_i64().unwrap() > 0 && first["endTime"].as_i64().unwrap() > 0);
        let latest = cli
            .ok(
                200,
                "GET",
                &format!("{STACK}/updates/latest"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(latest["info"]["kind"], "destroy");

        // ---- pulumi stack ls / tag / rename / rm ----
        let list = cli
            .ok(
                200,
                "GET",
                "/api/user/stacks?organization=acme&project=infra",
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(list["stacks"][0]["stackName"], "production");
        assert_eq!(list["stacks"][0]["resourceCount"], 2);
        assert!(list.get("continuationToken").is_none());
        cli.ok(
            204,
            "PATCH",
            &format!("{STACK}/tags"),
            Some(&json!({"pulumi:project": "infra", "owner": "platform"})),
            false,
            &Auth::Access,
        )
        .await;
        let tagged = cli
            .ok(
                200,
                "GET",
                "/api/user/stacks?tagName=owner&tagValue=platform",
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(tagged["stacks"].as_array().unwrap().len(), 1);
        cli.ok(
            204,
            "POST",
            &format!("{STACK}/rename"),
            Some(&json!({"newName": "prod", "newProject": ""})),
            false,
            &Auth::Access,
        )
        .await;
        let renamed = "/api/stacks/acme/infra/prod";
        let (status, _) = cli.call("GET", STACK, None, false, &Auth::Access).await;
        assert_eq!(status, 404);
        let (status, err) = cli
            .call(
                "DELETE",
                &format!("{renamed}?force=false"),
                None,
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(
            (status, err["message"].as_str()),
            (400, Some("Bad Request: Stack still contains resources.")),
            "the exact text the CLI matches to suggest --force"
        );
        cli.ok(
            204,
            "DELETE",
            &format!("{renamed}?force=true"),
            None,
            false,
            &Auth::Access,
        )
        .await;
        let (status, _) = cli.call("GET", renamed, None, false, &Auth::Access).await;
        assert_eq!(status, 404);

        // The audit log has the stack's administrative actions.
        let audit: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/audit?per_page=100", h.server.url()))
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = audit.to_string();
        for action in [
            "pulumi.stack.create",
            "pulumi.update.cancel",
            "pulumi.stack.rename",
            "pulumi.stack.delete",
        ] {
            assert!(text.contains(action), "{action} missing from the audit log");
        }
        assert!(!text.contains("s3cr3t"));

        eprintln!("---- transcript on {backend} ----\n{}", cli.transcript());
        h.stop().await;
        db.close().await;
    }
}

/// `pulumi login` with an operator's OIDC access token (the server's own
/// operator authentication): the CLI's first calls succeed as that
/// operator, who may create a stack. A token of the same provider without
/// the operator role, and the break-glass token, are refused.
#[tokio::test]
async fn an_operator_oidc_token_is_a_pulumi_access_token() {
    use attest_test_support::idp::Idp;
    let dbs = databases().await;
    note_backends(&dbs);
    let idp = Idp::start().await;
    let oidc = idp.settings();
    for db in dbs {
        let h = Harness::start_tweaked(&db, &[], &|s| s.oidc = Some(oidc.clone())).await;
        let now = chrono::Utc::now().timestamp();
        let operator = Cli::new(&h.server.url(), &idp.operator(now, "alice"));

        let (status, user) = operator
            .call("GET", "/api/user", None, false, &Auth::Access)
            .await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["githubLogin"], json!("alice"), "{user}");
        let (status, body) = operator
            .call(
                "POST",
                "/api/stacks/acme/oidc-project",
                Some(&json!({"stackName": "dev"})),
                false,
                &Auth::Access,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, stacks) = operator
            .call("GET", "/api/user/stacks", None, false, &Auth::Access)
            .await;
        assert_eq!(status, 200, "{stacks}");
        assert!(stacks.to_string().contains("oidc-project"), "{stacks}");

        let viewer = Cli::new(&h.server.url(), &idp.token(now, &["viewer"], "mallory"));
        let (status, _) = viewer
            .call("GET", "/api/user", None, false, &Auth::Access)
            .await;
        assert_eq!(status, 401, "a token without the operator role");
        let break_glass = Cli::new(&h.server.url(), attest_test_support::ADMIN_TOKEN);
        let (status, _) = break_glass
            .call("GET", "/api/user", None, false, &Auth::Access)
            .await;
        assert_eq!(status, 401, "the break-glass token is no Pulumi credential");
        h.stop().await;
        db.close().await;
    }
}
