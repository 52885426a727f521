//! The server as the simulator sees it: the typed [`attest_client`], as a
//! machine (no credentials), as the break-glass operator, or as a named
//! operator with an OIDC access token from the simulator's own provider.
//! Every call is timed by the client (request sent to body read).

use std::time::Duration;

use attest_client::{Client, ClientError, Credentials, Response};

use crate::SimError;

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

/// Access to one server, one client per identity over one connection pool.
#[derive(Debug, Clone)]
pub struct Api {
    machine: Client,
    admin: Client,
    /// (name, client with that operator's OIDC access token).
    operators: Vec<(String, Client)>,
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
        let machine = Client::new(base, http);
        Ok(Self {
            admin: machine.with_credentials(Credentials::Bearer(admin_token.to_owned())),
            machine,
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
            let client = self
                .machine
                .with_credentials(Credentials::Bearer(idp.token(name)?));
            self.operators.push(((*name).to_owned(), client));
        }
        Ok(())
    }

    /// The client that sends as `who`.
    pub fn r#as(&self, who: As<'_>) -> Result<&Client, SimError> {
        match who {
            As::Machine => Ok(&self.machine),
            As::Admin => Ok(&self.admin),
            As::Operator(name) => self
                .operators
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, client)| client)
                .ok_or_else(|| SimError::Setup(format!("no token for operator {name}"))),
        }
    }
}

impl From<ClientError> for SimError {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::Status { status, detail, .. } => SimError::Status {
                status,
                detail: detail.chars().take(160).collect(),
            },
            ClientError::Transport(msg) => SimError::Transport(msg),
            err @ ClientError::Decode(_) => SimError::Wrong(err.to_string()),
        }
    }
}

/// `res` has status `want` (a 2xx other than the one the flow expects is
/// as wrong as an error status).
pub(crate) fn expect<T>(res: &Response<T>, want: u16) -> Result<(), SimError> {
    if res.status == want {
        Ok(())
    } else {
        Err(SimError::Status {
            status: res.status,
            detail: excerpt(res),
        })
    }
}

/// `ok`, else a wrong answer about `what`.
pub(crate) fn check<T>(ok: bool, res: &Response<T>, what: &str) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(wrong(res, &format!("unexpected {what}")))
    }
}

/// A wrong answer, with the start of what the server said.
pub(crate) fn wrong<T>(res: &Response<T>, what: &str) -> SimError {
    SimError::Wrong(format!("{what}: {}", excerpt(res)))
}

fn excerpt<T>(res: &Response<T>) -> String {
    res.raw.chars().take(120).collect()
}
