//! Machines: what a machine calls (register, attest, AK activation,
//! certificates, config) and the operators' lifecycle (`/api/v1/machines`).

use attest_proto::machine::{
    AkActivateRequest, AkActivateResponse, AkCredentialRequest, AkCredentialResponse,
    ApprovalRecord, ApproveRequest, AttestRequest, AttestResponse, ChallengeResponse,
    CredentialConfigEnvelope, ImportRequest, ImportResponse, LockRequest, MachineDetail,
    OfflineBundle, PendingApprovalResponse, RegisterRequest, RegisterResponse, RequestCertRequest,
    RequestCertResponse, RevokeRequest, SelfRegisterResponse, MEDIA_TYPE_CREDENTIAL,
};
use reqwest::Method;
use serde::Serialize;

use crate::{segment, typed, Client, ClientError, Response};

/// Query of `GET /api/v1/machines`: [`attest_proto::machine::MachineListQuery`]
/// with status and role as text, so that the server, not the client,
/// judges an unknown value (its 422 names the expected ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MachineListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_page: Option<i64>,
}

impl From<attest_proto::machine::MachineListQuery> for MachineListQuery {
    /// Naming every field: one added or renamed in `attest-proto` breaks
    /// this at compile time.
    fn from(query: attest_proto::machine::MachineListQuery) -> Self {
        let attest_proto::machine::MachineListQuery {
            status,
            role,
            page,
            per_page,
        } = query;
        Self {
            status: status.map(|s| s.as_str().to_owned()),
            role: role.map(|r| r.as_str().to_owned()),
            page,
            per_page,
        }
    }
}

/// Body of approve as sent: [`ApproveRequest`] with the role as text (see
/// [`MachineListQuery`] for why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApproveBody {
    pub role: String,
    pub hostname: Option<String>,
    pub assigned_ip: Option<String>,
}

impl From<ApproveRequest> for ApproveBody {
    fn from(request: ApproveRequest) -> Self {
        let ApproveRequest {
            role,
            hostname,
            assigned_ip,
        } = request;
        Self {
            role: role.as_str().to_owned(),
            hostname,
            assigned_ip,
        }
    }
}

/// Body of import as sent: [`ImportRequest`] with role and EK source as
/// text (see [`MachineListQuery`] for why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportBody {
    pub ek_fingerprint: String,
    pub role: Option<String>,
    pub machine_id: Option<String>,
    pub hw_uuid: Option<String>,
    pub hw_mac: Option<String>,
    pub hw_serial: Option<String>,
    pub hw_product: Option<String>,
    pub ek_source: Option<String>,
    pub ek_cert_pem: Option<String>,
}

impl From<ImportRequest> for ImportBody {
    fn from(request: ImportRequest) -> Self {
        let ImportRequest {
            ek_fingerprint,
            role,
            machine_id,
            hw_uuid,
            hw_mac,
            hw_serial,
            hw_product,
            ek_source,
            ek_cert_pem,
        } = request;
        Self {
            ek_fingerprint,
            role: role.map(|r| r.as_str().to_owned()),
            machine_id,
            hw_uuid,
            hw_mac,
            hw_serial,
            hw_product,
            ek_source: ek_source.map(|s| s.as_str().to_owned()),
            ek_cert_pem,
        }
    }
}

/// What approve did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// 200: the approval took effect.
    Approved(Box<MachineDetail>),
    /// 202: a first dual-control vote was recorded.
    Pending(PendingApprovalResponse),
}

fn machine_path(id: &str, suffix: &str) -> String {
    format!("/api/v1/machines/{}{suffix}", segment(id))
}

impl Client {
    /// `POST /api/v1/register` (the USB agent's registration).
    pub async fn register(
        &self,
        body: &RegisterRequest,
    ) -> Result<Response<RegisterResponse>, ClientError> {
        self.with_body(Method::POST, "/api/v1/register", body).await
    }

    /// `POST /api/v1/self-register`.
    pub async fn self_register(
        &self,
        body: &RegisterRequest,
    ) -> Result<Response<SelfRegisterResponse>, ClientError> {
        self.with_body(Method::POST, "/api/v1/self-register", body)
            .await
    }

    /// `GET /api/v1/attest/challenge`: a fresh nonce.
    pub async fn challenge(&self) -> Result<Response<ChallengeResponse>, ClientError> {
        self.get("/api/v1/attest/challenge").await
    }

    /// `POST /api/v1/attest`.
    pub async fn attest(
        &self,
        body: &AttestRequest,
    ) -> Result<Response<AttestResponse>, ClientError> {
        self.with_body(Method::POST, "/api/v1/attest", body).await
    }

    /// `POST /api/v1/machines/{id}/ak-credential`.
    pub async fn ak_credential(
        &self,
        machine_id: &str,
        body: &AkCredentialRequest,
    ) -> Result<Response<AkCredentialResponse>, ClientError> {
        self.with_body(
            Method::POST,
            &machine_path(machine_id, "/ak-credential"),
            body,
        )
        .await
    }

    /// `POST /api/v1/machines/{id}/ak-activate`.
    pub async fn ak_activate(
        &self,
        machine_id: &str,
        body: &AkActivateRequest,
    ) -> Result<Response<AkActivateResponse>, ClientError> {
        self.with_body(
            Method::POST,
            &machine_path(machine_id, "/ak-activate"),
            body,
        )
        .await
    }

    /// `POST /api/v1/machines/{id}/request-cert`.
    pub async fn request_cert(
        &self,
        machine_id: &str,
        body: &RequestCertRequest,
    ) -> Result<Response<RequestCertResponse>, ClientError> {
        self.with_body(
            Method::POST,
            &machine_path(machine_id, "/request-cert"),
            body,
        )
        .await
    }

    /// The config at `config_path` (the path of an attest answer's
    /// `config_url`, token included) as the envelope a TPM opens with
    /// ActivateCredential.
    pub async fn config_credential(
        &self,
        config_path: &str,
    ) -> Result<Response<CredentialConfigEnvelope>, ClientError> {
        let req = self
            .request(Method::GET, config_path)
            .header(reqwest::header::ACCEPT, MEDIA_TYPE_CREDENTIAL);
        typed(crate::send(req).await?)
    }

    /// `GET /api/v1/machines`: one page, or every machine without paging.
    pub async fn list_machines(
        &self,
        query: &MachineListQuery,
    ) -> Result<Response<Vec<MachineDetail>>, ClientError> {
        self.get_query("/api/v1/machines", query).await
    }

    /// `GET /api/v1/machines/{id}`.
    pub async fn machine(&self, machine_id: &str) -> Result<Response<MachineDetail>, ClientError> {
        self.get(&machine_path(machine_id, "")).await
    }

    /// `POST /api/v1/machines/{id}/approve`.
    pub async fn approve(
        &self,
        machine_id: &str,
        body: &ApproveBody,
    ) -> Result<Response<Approval>, ClientError> {
        let res = crate::send(
            self.request(Method::POST, &machine_path(machine_id, "/approve"))
                .json(body),
        )
        .await?;
        if res.status == 202 {
            Ok(typed::<PendingApprovalResponse>(res)?.map(Approval::Pending))
        } else {
            Ok(typed::<MachineDetail>(res)?.map(|detail| Approval::Approved(Box::new(detail))))
        }
    }

    /// `POST /api/v1/machines/{id}/revoke`.
    pub async fn revoke(
        &self,
        machine_id: &str,
        body: &RevokeRequest,
    ) -> Result<Response<MachineDetail>, ClientError> {
        self.with_body(Method::POST, &machine_path(machine_id, "/revoke"), body)
            .await
    }

    /// `POST /api/v1/machines/{id}/lock`.
    pub async fn lock(
        &self,
        machine_id: &str,
        body: &LockRequest,
    ) -> Result<Response<MachineDetail>, ClientError> {
        self.with_body(Method::POST, &machine_path(machine_id, "/lock"), body)
            .await
    }

    /// `POST /api/v1/machines/{id}/unlock`.
    pub async fn unlock(&self, machine_id: &str) -> Result<Response<MachineDetail>, ClientError> {
        self.bodiless(Method::POST, &machine_path(machine_id, "/unlock"))
            .await
    }

    /// `GET /api/v1/machines/{id}/approvals`: the dual-control votes.
    pub async fn approvals(
        &self,
        machine_id: &str,
    ) -> Result<Response<Vec<ApprovalRecord>>, ClientError> {
        self.get(&machine_path(machine_id, "/approvals")).await
    }

    /// `GET /api/v1/machines/{id}/offline-bundle` (any earlier config token
    /// stops working).
    pub async fn offline_bundle(
        &self,
        machine_id: &str,
    ) -> Result<Response<OfflineBundle>, ClientError> {
        self.get(&machine_path(machine_id, "/offline-bundle")).await
    }

    /// `POST /api/v1/machines/import`.
    pub async fn import(&self, body: &ImportBody) -> Result<Response<ImportResponse>, ClientError> {
        self.with_body(Method::POST, "/api/v1/machines/import", body)
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use attest_proto::machine::{EkSource, MachineStatus, Role};

    use super::*;

    /// The text mirrors serialise exactly as the proto types they mirror.
    #[test]
    fn mirrors_send_what_the_proto_types_send() {
        let approve = ApproveRequest {
            role: Role::Controlplane,
            hostname: Some("cp-1".into()),
            assigned_ip: None,
        };
        assert_eq!(
            serde_json::to_value(ApproveBody::from(approve.clone())).unwrap(),
            serde_json::to_value(approve).unwrap()
        );
        let import = ImportRequest {
            ek_fingerprint: "ab".repeat(32),
            role: Some(Role::Generic),
            machine_id: None,
            hw_uuid: Some("u".into()),
            hw_mac: None,
            hw_serial: None,
            hw_product: None,
            ek_source: Some(EkSource::OfflineImport),
            ek_cert_pem: None,
        };
        assert_eq!(
            serde_json::to_value(ImportBody::from(import.clone())).unwrap(),
            serde_json::to_value(import).unwrap()
        );
        let query = MachineListQuery::from(attest_proto::machine::MachineListQuery {
            status: Some(MachineStatus::PendingApproval),
            role: Some(Role::WorkerApp),
            page: Some(2),
            per_page: None,
        });
        assert_eq!(query.status.as_deref(), Some("pending_approval"));
        assert_eq!(query.role.as_deref(), Some("worker-app"));
    }
}
