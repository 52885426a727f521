//! The server as the simulator sees it: timed JSON calls, as a machine
//! (no credentials), as the break-glass operator, or as a named operator
//! with an OIDC access token from the simulator's own provider.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::SimError;

/// One answered request.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    /// Raw body for non-JSON answers (config envelopes are JSON, YAML is not).
    pub text: String,
    pub elapsed: Duration,
}

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As<'a> {
    /// A machine: no credentials.
    Machine,
    /// The break-glass token.
    Admin,
    /// An operator by OIDC token, by name.
    Operator(&'a str),
}

/// HTTP access to one server.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    admin_token: String,
    /// (name, OIDC access token) of the operators.
    operators: Vec<(String, String)>,
}

impl Api {
    /// A client for `base` (no trailing slash) with a connection pool sized
    /// for `concurrency` requests in flight.
    pub fn new(base: &str, admin_token: &str, concurrency: usize) -> Result<Self, SimError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| SimError::Setup(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            admin_token: admin_token.to_owned(),
            operators: Vec::new(),
        })
    }

    /// Acts as the operators `names` with tokens from `idp` (the server
    /// must trust its issuer).
    pub fn use_operators(
        &mut self,
        idp: &crate::idp::SimIdp,
        names: &[&str],
    ) -> Result<(), SimError> {
        for name in names {
            self.operators.push(((*name).to_owned(), idp.token(name)?));
        }
        Ok(())
    }

    /// Sends one request and reads the whole answer; the time covers both.
    pub async fn send(
        &self,
        who: As<'_>,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        accept: Option<&str>,
    ) -> Result<Answer, SimError> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self.http.request(method, url);
        match who {
            As::Machine => {}
            As::Admin => req = req.bearer_auth(&self.admin_token),
            As::Operator(name) => {
                let token = self
                    .operators
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t.as_str())
                    .ok_or_else(|| SimError::Setup(format!("no token for operator {name}")))?;
                req = req.bearer_auth(token);
            }
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let started = Instant::now();
        let res = req
            .send()
            .await
            .map_err(|e| SimError::Transport(e.to_string()))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| SimError::Transport(e.to_string()))?;
        let elapsed = started.elapsed();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            text,
            elapsed,
        })
    }
}

/// `a` has status `want`.
pub(crate) fn expect(a: &Answer, want: StatusCode) -> Result<(), SimError> {
    if a.status == want {
        Ok(())
    } else {
        Err(SimError::Status {
            status: a.status.as_u16(),
            detail: detail(a),
        })
    }
}

/// `ok`, else a wrong answer about `what`.
pub(crate) fn check(ok: bool, a: &Answer, what: &str) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(wrong(a, &format!("unexpected {what}")))
    }
}

/// The string field `name` of the answer.
pub(crate) fn field(a: &Answer, name: &str) -> Result<String, SimError> {
    a.body[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| wrong(a, &format!("no {name}")))
}

/// A wrong answer, with the server's detail.
pub(crate) fn wrong(a: &Answer, what: &str) -> SimError {
    SimError::Wrong(format!("{what}: {}", detail(a)))
}

fn detail(a: &Answer) -> String {
    let d = match &a.body["detail"] {
        Value::String(s) => s.clone(),
        Value::Null => a.text.chars().take(120).collect(),
        other => other.to_string(),
    };
    d.chars().take(160).collect()
}
