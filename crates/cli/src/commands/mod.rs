//! Built-in client commands. Each takes the resolved [`Ctx`].

pub mod audit;
pub mod auth;
pub mod extensions;
pub mod machine;

use crate::client::ApiClient;
use crate::output::Printer;

/// What every API command needs: a client and a printer.
pub struct Ctx {
    /// The API client with the resolved URL and token.
    pub client: ApiClient,
    /// The output format.
    pub printer: Printer,
}
