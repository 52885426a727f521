//! Request extractors whose rejections are FastAPI-shaped.
//!
//! axum's own `Json`/`Query` rejections are plain text with status 400/415;
//! the seed's clients expect `422 {"detail":[{"type","loc","msg"}]}` naming
//! the offending field, and `413` for oversized bodies. These wrappers give
//! exactly that and never panic on any input. The rejections are
//! [`ApiError`]s, so a router with another [`ErrorFormat`](crate::ErrorFormat)
//! answers the same statuses in its own body.

use attest_proto::error::LocItem;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body, deserialised with field-precise 422 errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers().get(CONTENT_TYPE)) {
            return Err(ApiError::invalid(
                "content_type",
                vec![LocItem::from("body")],
                "Content-Type must be application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Like [`ApiJson`], but an empty body without a content type (or with a
/// JSON one) is `T::default()`: for bodies whose every field is optional,
/// such as lock's `{"reason": …}`. An empty body labelled as a form or text
/// is refused like a non-empty one: that is what a cross-site form sends.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json_content_type(req.headers().get(CONTENT_TYPE));
        let has_content_type = req.headers().contains_key(CONTENT_TYPE);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if !json && has_content_type {
            return Err(ApiError::invalid(
                "content_type",
                vec![LocItem::from("body")],
                "Content-Type must be application/json",
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(ApiError::invalid(
                "content_type",
                vec![LocItem::from("body")],
                "Content-Type must be application/json",
            ));
        }
        // JSON `null` is "no body" too: the optional body's schema allows
        // it, and a client serialising an absent value sends it.
        if bytes.trim_ascii() == b"null" {
            return Ok(Self(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

pub(crate) fn is_json_content_type(value: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    use std::error::Error as _;
    let mut source = rejection.source();
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge("Request body too large".to_string());
        }
        source = err.source();
    }
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge("Request body too large".to_string());
    }
    ApiError::BadRequest("could not read request body".to_string())
}

/// Deserialises `bytes` as `T`, reporting the failing field FastAPI-style.
///
/// Every request body is a JSON object; serde would also build a struct
/// from an array of its fields in order, which no client means, so a
/// non-object is refused up front as pydantic does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'[')) {
        return Err(ApiError::invalid(
            "model_attributes_type",
            vec![LocItem::from("body")],
            "Input should be a valid dictionary or object to extract fields from",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(json_issue)?;
    de.end().map_err(|err| {
        ApiError::invalid(
            "json_invalid",
            vec![LocItem::from("body")],
            format!("JSON decode error: {err}"),
        )
    })?;
    Ok(value)
}

fn json_issue(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let mut loc = vec![LocItem::from("body")];
    for segment in err.path().iter() {
        use serde_path_to_error::Segment;
        match segment {
            Segment::Seq { index } => loc.push(LocItem::from(*index)),
            Segment::Map { key } => loc.push(LocItem::from(key.as_str())),
            Segment::Enum { variant } => loc.push(LocItem::from(variant.as_str())),
            Segment::Unknown => {}
        }
    }
    let inner = err.inner();
    let message = inner.to_string();
    let (kind, msg) = match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            ("json_invalid", format!("JSON decode error: {message}"))
        }
        serde_json::error::Category::Io => ("json_invalid", "could not read body".to_string()),
        serde_json::error::Category::Data => {
            if let Some(field) = missing_field(&message) {
                loc.push(LocItem::from(field));
                ("missing", "Field required".to_string())
            } else if let Some(field) = unknown_field(&message) {
                // serde_path_to_error already ends the path with the
                // unknown key when it read it as a map key.
                if loc.last() != Some(&LocItem::from(field)) {
                    loc.push(LocItem::from(field));
                }
                (
                    "extra_forbidden",
                    "Extra inputs are not permitted".to_string(),
                )
            } else if message.starts_with("invalid type") {
                ("type_error", strip_position(&message))
            } else if message.starts_with("unknown variant") {
                ("enum", strip_position(&message))
            } else {
                ("value_error", strip_position(&message))
            }
        }
    };
    ApiError::invalid(kind, loc, msg)
}

/// serde_json appends " at line L column C"; the loc already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// Query parameters with field-precise 422 errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(ApiQuery)
            .map_err(|err| {
                let mut loc = vec![LocItem::from("query")];
                let path = err.path().to_string();
                if path != "." && !path.is_empty() {
                    loc.push(LocItem::from(path));
                }
                let message = err.inner().to_string();
                if let Some(field) = missing_field(&message) {
                    loc.push(LocItem::from(field));
                }
                ApiError::invalid("value_error", loc, message)
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: i64,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        flag: bool,
    }

    fn issue(err: ApiError) -> (String, Vec<LocItem>) {
        match err {
            ApiError::Validation(mut issues) => {
                let i = issues.remove(0);
                (i.kind, i.loc)
            }
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct Optional {
        reason: Option<String>,
    }

    async fn optional(
        content_type: Option<&str>,
        body: &'static str,
    ) -> Result<Optional, ApiError> {
        let mut req = axum::http::Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        let req = req.body(axum::body::Body::from(body)).unwrap();
        OptionalJson::<Optional>::from_request(req, &())
            .await
            .map(|OptionalJson(v)| v)
    }

    #[tokio::test]
    async fn an_optional_body_may_be_absent_empty_or_null() {
        assert_eq!(optional(None, "").await.unwrap(), Optional::default());
        assert_eq!(
            optional(Some("application/json"), " null ").await.unwrap(),
            Optional::default()
        );
        assert_eq!(
            optional(Some("application/json"), r#"{"reason":"x"}"#)
                .await
                .unwrap()
                .reason
                .as_deref(),
            Some("x")
        );
        assert!(
            optional(Some("text/plain"), "null").await.is_err(),
            "a form or text body is refused"
        );
        assert!(optional(Some("application/json"), "[]").await.is_err());
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_json::<Body>(br#"{"name":"a","count":"x"}"#).unwrap_err();
        let (kind, loc) = issue(err);
        assert_eq!(kind, "type_error");
        assert_eq!(loc, vec![LocItem::from("body"), LocItem::from("count")]);
    }

    #[test]
    fn nested_wrong_type_names_the_path() {
        let err = parse_json::<Body>(br#"{"name":"a","count":1,"inner":{"flag":3}}"#).unwrap_err();
        let (_, loc) = issue(err);
        assert_eq!(
            loc,
            vec![
                LocItem::from("body"),
                LocItem::from("inner"),
                LocItem::from("flag")
            ]
        );
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse_json::<Body>(br#"{"name":"a"}"#).unwrap_err();
        let (kind, loc) = issue(err);
        assert_eq!(kind, "missing");
        assert_eq!(loc, vec![LocItem::from("body"), LocItem::from("count")]);
    }

    #[test]
    fn malformed_json_is_422_json_invalid() {
        for bad in [
            &b"{"[..],
            b"not json",
            b"",
            b"{\"name\":\"a\",\"count\":1} trailing",
            b"\xff\xfe",
        ] {
            let (kind, loc) = issue(parse_json::<Body>(bad).unwrap_err());
            assert_eq!(kind, "json_invalid", "{bad:?}");
            assert_eq!(loc[0], LocItem::from("body"));
        }
    }

    #[test]
    fn json_content_types() {
        use axum::http::HeaderValue;
        let ok = |v: &'static str| is_json_content_type(Some(&HeaderValue::from_static(v)));
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(ok("application/vnd.itl.config.encrypted+json"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/x-www-form-urlencoded"));
        assert!(!is_json_content_type(None));
    }
}

/// The peer address of the connection, when the server was started with
/// connect info (it always is, outside unit tests of the router).
#[derive(Debug, Clone, Default)]
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}

/// `(limit, offset)` for 1-based `page` / `per_page` query parameters
/// (defaults `1` / `default_per_page`, at most `max_per_page`), with the
/// FastAPI-style 422 the seed's list endpoints answer.
pub fn page_window(
    page: Option<i64>,
    per_page: Option<i64>,
    default_per_page: i64,
    max_per_page: i64,
) -> Result<(i64, i64), ApiError> {
    let page = page.unwrap_or(1);
    let per_page = per_page.unwrap_or(default_per_page);
    if page < 1 {
        return Err(ApiError::invalid(
            "greater_than_equal",
            vec![LocItem::from("query"), LocItem::from("page")],
            "Input should be greater than or equal to 1",
        ));
    }
    if !(1..=max_per_page).contains(&per_page) {
        return Err(ApiError::invalid(
            "less_than_equal",
            vec![LocItem::from("query"), LocItem::from("per_page")],
            format!("Input should be between 1 and {max_per_page}"),
        ));
    }
    Ok((per_page, (page - 1).saturating_mul(per_page)))
}
