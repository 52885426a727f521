//! `GET /api/v1/extensions`.

use attest_proto::extensions::ExtensionList;

use crate::{Client, ClientError, Response};

impl Client {
    /// The server's loaded extensions (no credentials needed).
    pub async fn extensions(&self) -> Result<Response<ExtensionList>, ClientError> {
        self.get("/api/v1/extensions").await
    }
}
