//! The hash-chained audit log and its signed checkpoints (`/api/v1/audit`).

use attest_proto::audit::{
    AuditCheckpoint, AuditCheckpointList, AuditCheckpointVerifyRequest, AuditEntry, AuditPageQuery,
    AuditVerifyResponse,
};
use reqwest::Method;

use crate::{Client, ClientError, Response};

impl Client {
    /// `GET /api/v1/audit`: a page of entries, newest first.
    pub async fn audit_entries(
        &self,
        page: &AuditPageQuery,
    ) -> Result<Response<Vec<AuditEntry>>, ClientError> {
        self.get_query("/api/v1/audit", page).await
    }

    /// `GET /api/v1/audit/verify`: walks the chain and checks it against the
    /// stored checkpoints.
    pub async fn audit_verify(&self) -> Result<Response<AuditVerifyResponse>, ClientError> {
        self.get("/api/v1/audit/verify").await
    }

    /// `GET /api/v1/audit/checkpoints`: a page of signed checkpoints with
    /// the key that signed them.
    pub async fn audit_checkpoints(
        &self,
        page: &AuditPageQuery,
    ) -> Result<Response<AuditCheckpointList>, ClientError> {
        self.get_query("/api/v1/audit/checkpoints", page).await
    }

    /// `POST /api/v1/audit/checkpoints`: signs a checkpoint now.
    pub async fn audit_checkpoint(&self) -> Result<Response<AuditCheckpoint>, ClientError> {
        self.bodiless(Method::POST, "/api/v1/audit/checkpoints")
            .await
    }

    /// `POST /api/v1/audit/checkpoints/verify`: the chain checked against
    /// checkpoints kept outside the database, too.
    pub async fn audit_verify_checkpoints(
        &self,
        body: &AuditCheckpointVerifyRequest,
    ) -> Result<Response<AuditVerifyResponse>, ClientError> {
        self.with_body(Method::POST, "/api/v1/audit/checkpoints/verify", body)
            .await
    }
}
