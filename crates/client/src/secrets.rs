//! The `secret_vault` extension: machine secrets (`/api/v1/secrets`) and
//! shared secrets (`/api/v1/shared-secrets`, whose `{id}` also takes the
//! name).

use reqwest::Method;

pub use attest_proto::secret_vault::{
    AccessInfo, AccessRequest, MachineSecretBlob, MachineSecretCreate, MachineSecretInfo,
    SharedSecretCreate, SharedSecretInfo, SharedSecretUpdate,
};

use crate::{segment, Client, ClientError, Response};

fn machine_path(machine_id: &str, suffix: &str) -> String {
    format!(
        "/api/v1/secrets/machines/{}/secrets{suffix}",
        segment(machine_id)
    )
}

fn shared_path(id_or_name: &str, suffix: &str) -> String {
    format!("/api/v1/shared-secrets/{}{suffix}", segment(id_or_name))
}

impl Client {
    /// `POST /api/v1/secrets/machines/{id}/secrets`.
    pub async fn create_machine_secret(
        &self,
        machine_id: &str,
        body: &MachineSecretCreate,
    ) -> Result<Response<MachineSecretInfo>, ClientError> {
        self.with_body(Method::POST, &machine_path(machine_id, ""), body)
            .await
    }

    /// `GET /api/v1/secrets/machines/{id}/secrets`: names and counts, never
    /// values.
    pub async fn machine_secrets(
        &self,
        machine_id: &str,
    ) -> Result<Response<Vec<MachineSecretInfo>>, ClientError> {
        self.get(&machine_path(machine_id, "")).await
    }

    /// `GET /api/v1/secrets/machines/{id}/secrets/{name}`: the sealed blob,
    /// as the machine fetches it (send as [`crate::Credentials::EkFingerprint`]).
    pub async fn machine_secret_blob(
        &self,
        machine_id: &str,
        name: &str,
    ) -> Result<Response<MachineSecretBlob>, ClientError> {
        self.get(&machine_path(machine_id, &format!("/{}", segment(name))))
            .await
    }

    /// `DELETE /api/v1/secrets/{secret_id}`.
    pub async fn delete_machine_secret(
        &self,
        secret_id: &str,
    ) -> Result<Response<()>, ClientError> {
        self.delete_empty(&format!("/api/v1/secrets/{}", segment(secret_id)))
            .await
    }

    /// `POST /api/v1/shared-secrets`.
    pub async fn create_shared_secret(
        &self,
        body: &SharedSecretCreate,
    ) -> Result<Response<SharedSecretInfo>, ClientError> {
        self.with_body(Method::POST, "/api/v1/shared-secrets", body)
            .await
    }

    /// `GET /api/v1/shared-secrets`: never their values.
    pub async fn shared_secrets(&self) -> Result<Response<Vec<SharedSecretInfo>>, ClientError> {
        self.get("/api/v1/shared-secrets").await
    }

    /// `PUT /api/v1/shared-secrets/{id}`: rotate the value and/or change
    /// the description.
    pub async fn update_shared_secret(
        &self,
        id_or_name: &str,
        body: &SharedSecretUpdate,
    ) -> Result<Response<SharedSecretInfo>, ClientError> {
        self.with_body(Method::PUT, &shared_path(id_or_name, ""), body)
            .await
    }

    /// `DELETE /api/v1/shared-secrets/{id}` with its access list.
    pub async fn delete_shared_secret(
        &self,
        id_or_name: &str,
    ) -> Result<Response<()>, ClientError> {
        self.delete_empty(&shared_path(id_or_name, "")).await
    }

    /// `GET /api/v1/shared-secrets/{id}/access`.
    pub async fn shared_secret_access(
        &self,
        id_or_name: &str,
    ) -> Result<Response<Vec<AccessInfo>>, ClientError> {
        self.get(&shared_path(id_or_name, "/access")).await
    }

    /// `POST /api/v1/shared-secrets/{id}/access`: allow machines
    /// (idempotent); answers the access list.
    pub async fn grant_shared_secret(
        &self,
        id_or_name: &str,
        body: &AccessRequest,
    ) -> Result<Response<Vec<AccessInfo>>, ClientError> {
        self.with_body(Method::POST, &shared_path(id_or_name, "/access"), body)
            .await
    }

    /// `DELETE /api/v1/shared-secrets/{id}/access`: withdraw machines
    /// (idempotent); answers the access list.
    pub async fn revoke_shared_secret(
        &self,
        id_or_name: &str,
        body: &AccessRequest,
    ) -> Result<Response<Vec<AccessInfo>>, ClientError> {
        self.with_body(Method::DELETE, &shared_path(id_or_name, "/access"), body)
            .await
    }
}
