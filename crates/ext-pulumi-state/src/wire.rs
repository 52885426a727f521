//! The Pulumi CLI's wire types (its `apitype` package), field for field.
//!
//! Requests are lenient about fields the server does not use (the CLI adds
//! optional fields over time) and strict about the ones it does. Go's
//! `[]byte` travels as standard base64, hence [`B64`].

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Go `[]byte`: standard base64 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD
            .decode(text.as_bytes())
            .map(B64)
            .map_err(|_| serde::de::Error::custom("not standard base64"))
    }
}

/// `apitype.UntypedDeployment`, its deployment kept as the exact text.
#[derive(Debug, Deserialize)]
pub struct UntypedDeployment {
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub features: Option<Vec<String>>,
    #[serde(default)]
    pub deployment: Option<Box<RawValue>>,
}

/// `apitype.CreateStackRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStackRequest {
    pub stack_name: String,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub teams: Option<Vec<String>>,
    #[serde(default)]
    pub state: Option<Box<RawValue>>,
}

/// `apitype.Stack`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    pub org_name: String,
    pub project_name: String,
    pub stack_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub current_operation: Option<OperationStatus>,
    pub active_update: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub tags: BTreeMap<String, String>,
    pub version: i64,
}

/// `apitype.OperationStatus`: the update holding the stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperationStatus {
    pub kind: String,
    pub author: String,
    pub started: i64,
}

/// `apitype.StackSummary`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackSummary {
    pub id: String,
    pub org_name: String,
    pub project_name: String,
    pub stack_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_update: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_count: Option<i64>,
}

/// `apitype.ListStacksResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListStacksResponse {
    pub stacks: Vec<StackSummary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub continuation_token: Option<String>,
}

/// `apitype.StackRenameRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackRenameRequest {
    #[serde(default)]
    pub new_name: String,
    #[serde(default)]
    pub new_project: String,
}

/// `apitype.ConfigValue`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigValue {
    #[serde(default)]
    pub string: String,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub object: bool,
}

/// `apitype.UpdateMetadata`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateMetadata {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub environment: Option<BTreeMap<String, String>>,
}

/// `apitype.UpdateProgramRequest` (the parts the server keeps).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateProgramRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub main: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub config: Option<BTreeMap<String, ConfigValue>>,
    #[serde(default)]
    pub metadata: UpdateMetadata,
}

/// `apitype.UpdateProgramResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProgramResponse {
    #[serde(rename = "updateID")]
    pub update_id: String,
}

/// `apitype.StartUpdateRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartUpdateRequest {
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub journal_version: Option<i64>,
}

/// `apitype.StartUpdateResponse`. No `journalVersion`: this server keeps
/// checkpoints, so the CLI (which asks for journaling) falls back to them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartUpdateResponse {
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token_expiration: Option<i64>,
}

/// `apitype.RenewUpdateLeaseRequest`.
#[derive(Debug, Deserialize)]
pub struct RenewUpdateLeaseRequest {
    /// Seconds (the CLI asks for at most 300).
    pub duration: i64,
}

/// `apitype.RenewUpdateLeaseResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewUpdateLeaseResponse {
    pub token: String,
    pub token_expiration: i64,
}

/// `apitype.CompleteUpdateRequest`.
#[derive(Debug, Deserialize)]
pub struct CompleteUpdateRequest {
    pub status: String,
}

/// `apitype.PatchUpdateCheckpointRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchUpdateCheckpointRequest {
    #[serde(default)]
    pub is_invalid: bool,
    pub version: i64,
    #[serde(default)]
    pub features: Option<Vec<String>>,
    #[serde(default)]
    pub deployment: Option<Box<RawValue>>,
}

/// `apitype.PatchUpdateVerbatimCheckpointRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchUpdateVerbatimCheckpointRequest {
    pub version: i64,
    pub untyped_deployment: Box<RawValue>,
    pub sequence_number: i64,
}

/// `apitype.PatchUpdateCheckpointDeltaRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchUpdateCheckpointDeltaRequest {
    pub version: i64,
    pub checkpoint_hash: String,
    pub sequence_number: i64,
    pub deployment_delta: Box<RawValue>,
}

/// The two fields of `apitype.EngineEvent` every event carries.
#[derive(Debug, Deserialize)]
pub struct EngineEventHead {
    pub sequence: i64,
    pub timestamp: i64,
}

/// `apitype.EngineEventBatch`.
#[derive(Debug, Deserialize)]
pub struct EngineEventBatch {
    pub events: Vec<Box<RawValue>>,
}

/// `apitype.UpdateResults` (the status poll).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateResults {
    pub status: String,
    pub events: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub continuation_token: Option<String>,
}

/// `apitype.UpdateInfo` (history).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateInfo {
    pub kind: String,
    pub start_time: i64,
    pub message: String,
    pub environment: BTreeMap<String, String>,
    pub config: BTreeMap<String, ConfigValue>,
    pub result: String,
    pub end_time: i64,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_changes: Option<BTreeMap<String, i64>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_count: Option<i64>,
}

/// `apitype.GetHistoryResponse`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GetHistoryResponse {
    pub updates: Vec<UpdateInfo>,
}

/// `GET …/updates/latest`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LatestUpdateResponse {
    pub info: UpdateInfo,
}

/// `apitype.ImportStackResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportStackResponse {
    pub update_id: String,
}

/// `apitype.EncryptValueRequest`.
#[derive(Debug, Deserialize)]
pub struct EncryptValueRequest {
    pub plaintext: B64,
}

/// `apitype.EncryptValueResponse`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EncryptValueResponse {
    pub ciphertext: B64,
}

/// `apitype.DecryptValueRequest`.
#[derive(Debug, Deserialize)]
pub struct DecryptValueRequest {
    pub ciphertext: B64,
}

/// `apitype.DecryptValueResponse`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DecryptValueResponse {
    pub plaintext: B64,
}

/// `apitype.BatchEncryptRequest`.
#[derive(Debug, Deserialize)]
pub struct BatchEncryptRequest {
    pub plaintexts: Vec<B64>,
}

/// `apitype.BatchEncryptResponse`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchEncryptResponse {
    pub ciphertexts: Vec<B64>,
}

/// `apitype.BatchDecryptRequest`.
#[derive(Debug, Deserialize)]
pub struct BatchDecryptRequest {
    pub ciphertexts: Vec<B64>,
}

/// `apitype.BatchDecryptResponse`: keyed by the base64 of each ciphertext.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchDecryptResponse {
    pub plaintexts: BTreeMap<String, B64>,
}

/// `apitype.CapabilitiesResponse` entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct Capability {
    pub capability: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub configuration: Option<serde_json::Value>,
}

/// `apitype.CapabilitiesResponse`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    pub capabilities: Vec<Capability>,
}

/// `apitype.CLIVersionResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CliVersionResponse {
    pub latest_version: String,
    pub oldest_without_warning: String,
    pub latest_dev_version: String,
}

/// The service's user entry (`serviceUserInfo`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub name: String,
    pub github_login: String,
    pub avatar_url: String,
}

/// `tokenInfo` of `/api/user`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organization: Option<String>,
}

/// `/api/user` (`serviceUser`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub github_login: String,
    pub name: String,
    pub email: String,
    pub avatar_url: String,
    pub organizations: Vec<UserInfo>,
    pub identities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token_info: Option<TokenInfo>,
}

/// `apitype.GetDefaultOrganizationResponse`. The struct has carried the
/// name as `GitHubLogin` (untagged), `gitHubLogin` and `OrganizationName`
/// across CLI releases; Go matches JSON keys case-insensitively, so both
/// keys below reach every release.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultOrganization {
    #[serde(rename = "gitHubLogin")]
    pub github_login: String,
    pub organization_name: String,
    pub messages: Vec<serde_json::Value>,
}
