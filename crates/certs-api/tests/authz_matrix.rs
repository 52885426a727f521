//! The authorisation matrix of the certificate-lifecycle API, walked from
//! the OpenAPI document the server serves (both backends): every
//! operation against every kind of caller.
//!
//! Protected operations (`bearerAuth`) refuse missing and wrong
//! credentials with 401, refuse an authenticated caller holding no role
//! with 403 naming the permission their description documents, and let
//! through a key whose only role grants exactly that permission and the
//! break-glass token. Public operations never ask for credentials. The
//! document is the source: a new route without `security`, without a
//! documented permission, naming one outside the catalogue, or checking a
//! permission other than the one it documents fails here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use attest_certs_domain::permissions::CATALOGUE;
use attest_test_support::{each_backend, TestApp, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// Protected operations that only authenticate: their descriptions say
/// "No permission needed". Listed here so that a new route cannot opt
/// out of authorisation by its description alone.
const PERMISSION_FREE: &[(&str, &str)] =
    &[("GET", "/api/v1/auth/check"), ("GET", "/api/v1/auth/me")];

/// The document's size today: fewer operations means routes went
/// missing from it (or the document is empty), not that they are safe.
const MIN_PROTECTED: usize = 61;
const MIN_PUBLIC: usize = 6;

/// Every path parameter: an id that exists nowhere.
const MISSING_ID: &str = "00000000-0000-0000-0000-000000000000";

/// Every string of a generated body: also a valid actor and role name,
/// so bodies get past validation to the permission check.
const SAMPLE: &str = "matrix-sample";

/// Who an operation admits, as its document entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    /// `security: [{}]`.
    Public,
    /// `bearerAuth`, and no permission beyond authentication.
    Authenticated,
    /// `bearerAuth` and "Permission `x.y`.".
    Permission(String),
}

/// One operation of the document, ready to call.
#[derive(Debug)]
struct Operation {
    method: Method,
    /// As documented, `{id}` and all.
    path: String,
    /// With parameters filled in.
    target: String,
    access: Access,
    /// A minimal schema-valid body when the operation takes one.
    body: Option<Value>,
}

impl Operation {
    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// What a request carries.
#[derive(Clone, Copy)]
enum Body {
    /// The operation's schema-valid sample, if it takes a body.
    Sample,
    /// Truncated JSON: authentication must be decided before the body
    /// is read.
    Malformed,
}

async fn send(
    app: &TestApp,
    op: &Operation,
    authorization: Option<&str>,
    body: Body,
) -> reqwest::Response {
    let mut req = app
        .http
        .request(op.method.clone(), app.certs_url(&op.target));
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    if let Some(sample) = &op.body {
        let text = match body {
            Body::Sample => sample.to_string(),
            Body::Malformed => "{".to_owned(),
        };
        req = req.header("content-type", "application/json").body(text);
    }
    req.send().await.unwrap()
}

/// The text an operation is documented with, whitespace collapsed (the
/// permission sentence may wrap across lines of the summary).
fn documentation(op: &Value) -> String {
    let text = format!(
        "{} {}",
        op["summary"].as_str().unwrap_or_default(),
        op["description"].as_str().unwrap_or_default()
    );
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The permission named by "Permission `x.y`" in `text`: `Ok(None)` when
/// there is none, an error when there are several.
fn documented_permission(text: &str) -> Result<Option<String>, String> {
    const MARK: &str = "Permission `";
    let mut found = text.match_indices(MARK).map(|(at, _)| {
        let rest = &text[at + MARK.len()..];
        rest.split('`').next().unwrap_or_default().to_owned()
    });
    let first = found.next();
    if found.next().is_some() {
        return Err("names more than one permission".into());
    }
    Ok(first)
}

fn resolve<'a>(schema: &'a Value, doc: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            resolve(&doc["components"]["schemas"][name], doc)
        }
        None => schema,
    }
}

/// The smallest value `schema` accepts: required properties only, empty
/// arrays, the first enum value, [`SAMPLE`] for strings.
fn sample(schema: &Value, doc: &Value) -> Value {
    let schema = resolve(schema, doc);
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in parts {
            if let Value::Object(fields) = sample(part, doc) {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return sample(first, doc);
        }
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.as_str(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ => "object",
    };
    match kind {
        "object" => {
            let mut fields = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                fields.insert(name.into(), sample(&schema["properties"][name], doc));
            }
            Value::Object(fields)
        }
        "array" if schema["minItems"].as_u64().unwrap_or(0) > 0 => {
            json!([sample(&schema["items"], doc)])
        }
        "array" => json!([]),
        "string" => json!(SAMPLE),
        "integer" | "number" => json!(schema["minimum"].as_i64().unwrap_or(1)),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

/// `path` with every `{param}` replaced, plus required query parameters.
fn concrete(path: &str, op: &Value, doc: &Value) -> String {
    let mut target = path
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                MISSING_ID
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let required_query: Vec<String> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| {
            let value = sample(&p["schema"], doc);
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            format!("{}={value}", p["name"].as_str().unwrap())
        })
        .collect();
    if !required_query.is_empty() {
        target = format!("{target}?{}", required_query.join("&"));
    }
    target
}

/// Every operation of `doc`, or every reason the document is wrong.
fn operations(doc: &Value) -> Result<Vec<Operation>, Vec<String>> {
    let mut ops = Vec::new();
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let label = format!("{method} {path}");
            let schemes: Vec<&str> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys().map(String::as_str))
                .collect();
            let text = documentation(op);
            let permission_free = PERMISSION_FREE
                .iter()
                .any(|(m, p)| *m == method.as_str() && p == path);
            let access = match (schemes.as_slice(), documented_permission(&text)) {
                (_, Err(why)) => {
                    problems.push(format!("{label} {why}"));
                    continue;
                }
                ([], _) if op["security"].as_array().is_some_and(|s| !s.is_empty()) => {
                    Access::Public
                }
                ([], _) => {
                    problems.push(format!(
                        "{label} declares no security: every operation says \
                         `bearerAuth` or `[{{}}]` (public) explicitly"
                    ));
                    continue;
                }
                (["bearerAuth"], Ok(None)) if permission_free => {
                    if !text.contains("No permission needed") {
                        problems.push(format!("{label} should say \"No permission needed\""));
                    }
                    Access::Authenticated
                }
                (["bearerAuth"], Ok(None)) => {
                    problems.push(format!(
                        "{label} names no permission (\"Permission `x.y`.\")"
                    ));
                    continue;
                }
                (["bearerAuth"], Ok(Some(_))) if permission_free => {
                    problems.push(format!("{label} is permission-free but names a permission"));
                    continue;
                }
                (["bearerAuth"], Ok(Some(p))) => {
                    if !CATALOGUE.iter().any(|c| c.id == p) {
                        problems.push(format!("{label} names `{p}`, not in the catalogue"));
                        continue;
                    }
                    Access::Permission(p)
                }
                (other, _) => {
                    problems.push(format!("{label} has unexpected security {other:?}"));
                    continue;
                }
            };
            let body = op["requestBody"]["content"]
                .as_object()
                .and_then(|content| content.get("application/json"))
                .map(|media| sample(&media["schema"], doc));
            if op.get("requestBody").is_some() && body.is_none() {
                problems.push(format!("{label} takes a body that is not JSON"));
            }
            ops.push(Operation {
                method,
                path: path.clone(),
                target: concrete(path, op, doc),
                access,
                body,
            });
        }
    }
    if problems.is_empty() {
        Ok(ops)
    } else {
        Err(problems)
    }
}

/// `status` and the certctl error body: `{"error", "request_id"}`, the id
/// being the response's `X-Request-ID`.
async fn expect_error(res: reqwest::Response, want: StatusCode, ctx: &str) -> String {
    let status = res.status();
    let request_id = res
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    assert_eq!(status, want, "{ctx}: {text}");
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{ctx}: error body is not JSON ({e}): {text}"));
    let fields = body.as_object().unwrap();
    assert_eq!(fields.len(), 2, "{ctx}: certctl error body: {body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{ctx}: {body}");
    assert_eq!(
        body["request_id"].as_str(),
        request_id.as_deref(),
        "{ctx}: the body quotes the X-Request-ID"
    );
    if want == StatusCode::UNAUTHORIZED {
        assert_eq!(www.as_deref(), Some("Bearer"), "{ctx}: WWW-Authenticate");
    }
    message.to_owned()
}

async fn admin_call(app: &TestApp, admin: &str, method: Method, path: &str, body: Value) -> Value {
    let res = app
        .http
        .request(method.clone(), app.certs_url(path))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A new API key for `actor`, holding `roles`; returns its value and id.
async fn mint(app: &TestApp, admin: &str, actor: &str, roles: &[&str]) -> (String, String) {
    let minted = admin_call(
        app,
        admin,
        Method::POST,
        "/api/v1/auth/keys",
        json!({"actor_name": actor, "role_ids": roles}),
    )
    .await;
    (
        minted["key_value"].as_str().unwrap().to_owned(),
        minted["api_key_id"].as_str().unwrap().to_owned(),
    )
}

/// A key whose only role grants exactly `permission` (globally).
async fn key_holding(app: &TestApp, admin: &str, permission: &str) -> String {
    let name = format!("only-{}", permission.replace('.', "-"));
    let role = admin_call(
        app,
        admin,
        Method::POST,
        "/api/v1/auth/roles",
        json!({"name": name}),
    )
    .await;
    let role_id = role["id"].as_str().unwrap().to_owned();
    admin_call(
        app,
        admin,
        Method::POST,
        &format!("/api/v1/auth/roles/{role_id}/permissions"),
        json!({"permission": permission}),
    )
    .await;
    mint(app, admin, &format!("holder-{name}"), &[&role_id])
        .await
        .0
}

async fn status_of(app: &TestApp, key: &str, path: &str) -> StatusCode {
    app.http
        .get(app.certs_url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn every_operation_enforces_its_documented_permission() {
    each_backend(async |app| {
        let doc: Value = app
            .http
            .get(app.certs_url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ops = operations(&doc).unwrap_or_else(|problems| {
            panic!(
                "the document breaks the rules:\n  {}",
                problems.join("\n  ")
            )
        });
        for (m, p) in PERMISSION_FREE {
            assert!(
                ops.iter().any(|o| o.method.as_str() == *m && o.path == *p),
                "permission-free {m} {p} is not in the document"
            );
        }

        let admin = app.certs_bootstrap("admin-alice").await;
        let (nobody, _) = mint(app, &admin, "matrix-nobody", &[]).await;
        // The revoked key held every permission until it was revoked, so
        // its 401 is the revocation's doing.
        let (revoked, revoked_id) = mint(app, &admin, "matrix-revoked", &["r-admin"]).await;
        assert_eq!(
            status_of(app, &revoked, "/api/v1/audit").await,
            StatusCode::OK
        );
        let res = app
            .http
            .delete(app.certs_url(&format!("/api/v1/auth/keys/{revoked_id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);

        let mut holders = BTreeMap::new();
        for op in &ops {
            if let Access::Permission(p) = &op.access {
                if !holders.contains_key(p) {
                    let key = key_holding(app, &admin, p).await;
                    holders.insert(p.clone(), key);
                }
            }
        }

        // The admin key with its last character changed: right prefix
        // and length, wrong hash.
        let near_miss = {
            let mut key = admin.clone();
            let last = key.pop().unwrap();
            key.push(if last == '0' { '1' } else { '0' });
            key
        };
        let wrong: Vec<(&str, String)> = vec![
            ("an unknown key", format!("Bearer cck_{}", "0".repeat(64))),
            ("an empty bearer", "Bearer ".to_owned()),
            ("Basic credentials", "Basic YWRtaW46YWRtaW4=".to_owned()),
            (
                "a near miss of the admin key",
                format!("Bearer {near_miss}"),
            ),
            (
                "a near miss of the break-glass token",
                format!("Bearer {ADMIN_TOKEN}x"),
            ),
            (
                "an unsigned JWT",
                "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned(),
            ),
            ("a revoked key", format!("Bearer {revoked}")),
        ];

        let (mut protected, mut public) = (0, 0);
        for op in &ops {
            let label = op.label();
            if op.access == Access::Public {
                public += 1;
                for authorization in [None, Some("Bearer not-a-credential")] {
                    let status = send(app, op, authorization, Body::Sample).await.status();
                    assert!(
                        status != StatusCode::UNAUTHORIZED
                            && status != StatusCode::FORBIDDEN
                            && !status.is_server_error(),
                        "public {label} with {authorization:?}: {status}"
                    );
                }
                continue;
            }
            protected += 1;

            let res = send(app, op, None, Body::Malformed).await;
            expect_error(
                res,
                StatusCode::UNAUTHORIZED,
                &format!("{label} without credentials"),
            )
            .await;
            for (what, value) in &wrong {
                let res = send(app, op, Some(value), Body::Malformed).await;
                expect_error(
                    res,
                    StatusCode::UNAUTHORIZED,
                    &format!("{label} with {what}"),
                )
                .await;
            }

            let res = send(app, op, Some(&format!("Bearer {nobody}")), Body::Sample).await;
            match &op.access {
                Access::Permission(p) => {
                    let message =
                        expect_error(res, StatusCode::FORBIDDEN, &format!("{label} with no role"))
                            .await;
                    assert!(
                        message.contains(&format!("permission {p} required")),
                        "{label} documents `{p}` but refused with: {message}"
                    );
                    let key = &holders[p];
                    let status = send(app, op, Some(&format!("Bearer {key}")), Body::Sample)
                        .await
                        .status();
                    assert!(
                        status != StatusCode::UNAUTHORIZED
                            && status != StatusCode::FORBIDDEN
                            && !status.is_server_error(),
                        "{label} with a key holding only `{p}`: {status}"
                    );
                }
                Access::Authenticated => {
                    assert_eq!(res.status(), StatusCode::OK, "{label} with no role");
                }
                Access::Public => unreachable!(),
            }

            let status = send(
                app,
                op,
                Some(&format!("Bearer {ADMIN_TOKEN}")),
                Body::Sample,
            )
            .await
            .status();
            assert!(
                status != StatusCode::UNAUTHORIZED
                    && status != StatusCode::FORBIDDEN
                    && !status.is_server_error(),
                "{label} with the break-glass token: {status}"
            );
        }
        assert!(
            protected >= MIN_PROTECTED && public >= MIN_PUBLIC,
            "expected at least {MIN_PROTECTED} protected and {MIN_PUBLIC} public operations, \
             found {protected} and {public}"
        );
        eprintln!(
            "{}: {protected} protected and {public} public operations, {} permissions",
            app.backend(),
            holders.len()
        );
    })
    .await;
}

/// The matrix's reading of the document is itself checked: a protected
/// route that forgets its permission, names an unknown one, or forgets
/// `security` is caught, so the matrix cannot pass by misreading.
#[test]
fn the_document_rules_catch_undocumented_routes() {
    let op = |security: Value, summary: &str| json!({"paths": {"/api/v1/x": {"get": {"security": security, "summary": summary}}}});
    let bearer = json!([{"bearerAuth": []}]);
    let ok = operations(&op(bearer.clone(), "Read x. Permission\n`cert.read`.")).unwrap();
    assert_eq!(ok[0].access, Access::Permission("cert.read".into()));
    assert_eq!(ok[0].body, None);

    let problems = |doc: Value| operations(&doc).unwrap_err().join("\n");
    assert!(problems(op(bearer.clone(), "Read x.")).contains("names no permission"));
    assert!(
        problems(op(bearer.clone(), "Permission `cert.reed`.")).contains("not in the catalogue")
    );
    assert!(problems(op(bearer.clone(), "No permission needed.")).contains("names no permission"));
    assert!(problems(op(
        bearer,
        "Permission `cert.read`, Permission `cert.list`."
    ))
    .contains("more than one"));
    assert!(problems(op(Value::Null, "Permission `cert.read`.")).contains("no security"));
    assert!(
        problems(op(json!([{"basicAuth": []}]), "Permission `cert.read`."))
            .contains("unexpected security")
    );
    let public = operations(&op(json!([{}]), "Public.")).unwrap();
    assert_eq!(public[0].access, Access::Public);
}

#[test]
fn samples_satisfy_required_fields() {
    let doc = json!({"components": {"schemas": {
        "Base": {"type": "object", "properties": {"id": {"type": ["string", "null"]}}},
        "Req": {"allOf": [{"$ref": "#/components/schemas/Base"},
                          {"type": "object", "required": ["reason", "n", "ids", "kind"],
                           "properties": {"reason": {"type": "string"},
                                          "n": {"type": "integer", "minimum": 3},
                                          "ids": {"type": "array", "items": {"type": "string"}},
                                          "kind": {"type": "string", "enum": ["a", "b"]}}}]}
    }}});
    assert_eq!(
        sample(&json!({"$ref": "#/components/schemas/Req"}), &doc),
        json!({"reason": SAMPLE, "n": 3, "ids": [], "kind": "a"})
    );
}
