//! Teams, owners, certificate profiles and renewal policies as
//! [`Record`]s of the generic repository.

use attest_proto::certs::catalog::{CertificateProfile, Owner, RenewalPolicy, Team};
use attest_store::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{from_json, json_text, Param, Record};

fn text(v: &str) -> Param {
    Param::Text(Some(v.to_owned()))
}

impl Record for Team {
    const TABLE: &'static str = "certs_teams";
    const COLUMNS: &'static [&'static str] =
        &["id", "name", "description", "created_at", "updated_at"];
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            description: row.try_get(2)?,
            created_at: row.try_get(3)?,
            updated_at: row.try_get(4)?,
        })
    }
    fn params(&self) -> Vec<Param> {
        vec![
            text(&self.id),
            text(&self.name),
            text(&self.description),
            text(&self.created_at),
            text(&self.updated_at),
        ]
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for Owner {
    const TABLE: &'static str = "certs_owners";
    const COLUMNS: &'static [&'static str] =
        &["id", "name", "email", "team_id", "created_at", "updated_at"];
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            email: row.try_get(2)?,
            team_id: row.try_get(3)?,
            created_at: row.try_get(4)?,
            updated_at: row.try_get(5)?,
        })
    }
    fn params(&self) -> Vec<Param> {
        vec![
            text(&self.id),
            text(&self.name),
            text(&self.email),
            Param::Text(self.team_id.clone()),
            text(&self.created_at),
            text(&self.updated_at),
        ]
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for CertificateProfile {
    const TABLE: &'static str = "certs_profiles";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "description",
        "allowed_key_algorithms",
        "max_ttl_seconds",
        "allowed_ekus",
        "required_san_patterns",
        "spiffe_uri_pattern",
        "allow_short_lived",
        "enabled",
        "created_at",
        "updated_at",
    ];
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            description: row.try_get(2)?,
            allowed_key_algorithms: from_json(row, 3)?,
            max_ttl_seconds: row.try_get(4)?,
            allowed_ekus: from_json(row, 5)?,
            required_san_patterns: from_json(row, 6)?,
            spiffe_uri_pattern: row.try_get(7)?,
            allow_short_lived: row.try_get::<i64, _>(8)? != 0,
            enabled: row.try_get::<i64, _>(9)? != 0,
            created_at: row.try_get(10)?,
            updated_at: row.try_get(11)?,
        })
    }
    fn params(&self) -> Vec<Param> {
        vec![
            text(&self.id),
            text(&self.name),
            text(&self.description),
            json_text(&self.allowed_key_algorithms),
            Param::Int(self.max_ttl_seconds),
            json_text(&self.allowed_ekus),
            json_text(&self.required_san_patterns),
            text(&self.spiffe_uri_pattern),
            Param::Int(i64::from(self.allow_short_lived)),
            Param::Int(i64::from(self.enabled)),
            text(&self.created_at),
            text(&self.updated_at),
        ]
    }
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for RenewalPolicy {
    const TABLE: &'static str = "certs_renewal_policies";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "renewal_window_days",
        "auto_renew",
        "max_retries",
        "retry_interval_seconds",
        "alert_thresholds_days",
        "certificate_profile_id",
        "created_at",
        "updated_at",
    ];
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            renewal_window_days: row.try_get(2)?,
            auto_renew: row.try_get::<i64, _>(3)? != 0,
            max_retries: row.try_get(4)?,
            retry_interval_seconds: row.try_get(5)?,
            alert_thresholds_days: from_json(row, 6)?,
            certificate_profile_id: row.try_get(7)?,
            created_at: row.try_get(8)?,
            updated_at: row.try_get(9)?,
        })
    }
    fn params(&self) -> Vec<Param> {
        vec![
            text(&self.id),
            text(&self.name),
            Param::Int(self.renewal_window_days),
            Param::Int(i64::from(self.auto_renew)),
            Param::Int(self.max_retries),
            Param::Int(self.retry_interval_seconds),
            json_text(&self.alert_thresholds_days),
            Param::Text(self.certificate_profile_id.clone()),
            text(&self.created_at),
            text(&self.updated_at),
        ]
    }
    fn id(&self) -> &str {
        &self.id
    }
}
