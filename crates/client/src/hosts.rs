//! Host enrollment: what a host agent calls (`/api/v1/enroll`) and the
//! operators' decisions (`/api/v1/host-enrollments`).

use attest_proto::host_enroll::{
    EnrollAccepted, EnrollRequest, EnrollStatus, HostDecisionRequest, HostEnrollmentInfo,
    ENROLL_PATH, ENROLL_STATUS_PATH,
};
use reqwest::Method;
use serde::Serialize;

use crate::{segment, Client, ClientError, Response};

/// Query of `GET /api/v1/host-enrollments`, the status as text so that
/// the server judges an unknown value (its 422 names the expected ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

fn host_path(id: &str, suffix: &str) -> String {
    format!("/api/v1/host-enrollments/{}{suffix}", segment(id))
}

impl Client {
    /// `POST /api/v1/enroll` (no credentials needed).
    pub async fn enroll_host(
        &self,
        body: &EnrollRequest,
    ) -> Result<Response<EnrollAccepted>, ClientError> {
        self.with_body(Method::POST, ENROLL_PATH, body).await
    }

    /// `GET /api/v1/enroll/status/{token}`.
    pub async fn enroll_status(&self, token: &str) -> Result<Response<EnrollStatus>, ClientError> {
        self.get(&format!("{ENROLL_STATUS_PATH}{}", segment(token)))
            .await
    }

    /// `GET /api/v1/host-enrollments`.
    pub async fn list_hosts(
        &self,
        query: &HostListQuery,
    ) -> Result<Response<Vec<HostEnrollmentInfo>>, ClientError> {
        self.get_query("/api/v1/host-enrollments", query).await
    }

    /// `GET /api/v1/host-enrollments/{id}`.
    pub async fn host(&self, id: &str) -> Result<Response<HostEnrollmentInfo>, ClientError> {
        self.get(&host_path(id, "")).await
    }

    /// `POST /api/v1/host-enrollments/{id}/approve`.
    pub async fn approve_host(
        &self,
        id: &str,
    ) -> Result<Response<HostEnrollmentInfo>, ClientError> {
        self.bodiless(Method::POST, &host_path(id, "/approve"))
            .await
    }

    /// `POST /api/v1/host-enrollments/{id}/deny`.
    pub async fn deny_host(
        &self,
        id: &str,
        body: &HostDecisionRequest,
    ) -> Result<Response<HostEnrollmentInfo>, ClientError> {
        self.with_body(Method::POST, &host_path(id, "/deny"), body)
            .await
    }

    /// `POST /api/v1/host-enrollments/{id}/remove`: revokes the host's
    /// certificate.
    pub async fn remove_host(
        &self,
        id: &str,
        body: &HostDecisionRequest,
    ) -> Result<Response<HostEnrollmentInfo>, ClientError> {
        self.with_body(Method::POST, &host_path(id, "/remove"), body)
            .await
    }
}
