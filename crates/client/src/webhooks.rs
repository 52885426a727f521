//! The `webhooks` extension (`/api/v1/webhooks`).

use reqwest::Method;

pub use attest_proto::webhooks::{
    DeliveryQuery, DeliveryRead, EventList, TestQueued, WebhookCreate, WebhookRead, WebhookUpdate,
};

use crate::{segment, Client, ClientError, Response};

fn path(id: &str, suffix: &str) -> String {
    format!("/api/v1/webhooks/{}{suffix}", segment(id))
}

impl Client {
    /// `POST /api/v1/webhooks`.
    pub async fn create_webhook(
        &self,
        body: &WebhookCreate,
    ) -> Result<Response<WebhookRead>, ClientError> {
        self.with_body(Method::POST, "/api/v1/webhooks", body).await
    }

    /// `GET /api/v1/webhooks`, oldest first.
    pub async fn webhooks(&self) -> Result<Response<Vec<WebhookRead>>, ClientError> {
        self.get("/api/v1/webhooks").await
    }

    /// `GET /api/v1/webhooks/{id}`.
    pub async fn webhook(&self, id: &str) -> Result<Response<WebhookRead>, ClientError> {
        self.get(&path(id, "")).await
    }

    /// `PUT /api/v1/webhooks/{id}`: only the fields given change.
    pub async fn update_webhook(
        &self,
        id: &str,
        body: &WebhookUpdate,
    ) -> Result<Response<WebhookRead>, ClientError> {
        self.with_body(Method::PUT, &path(id, ""), body).await
    }

    /// `DELETE /api/v1/webhooks/{id}` with its delivery history.
    pub async fn delete_webhook(&self, id: &str) -> Result<Response<()>, ClientError> {
        self.delete_empty(&path(id, "")).await
    }

    /// `GET /api/v1/webhooks/{id}/deliveries`, newest first.
    pub async fn webhook_deliveries(
        &self,
        id: &str,
        query: &DeliveryQuery,
    ) -> Result<Response<Vec<DeliveryRead>>, ClientError> {
        self.get_query(&path(id, "/deliveries"), query).await
    }

    /// `POST /api/v1/webhooks/{id}/test`: queues a `webhook.test` delivery.
    pub async fn test_webhook(&self, id: &str) -> Result<Response<TestQueued>, ClientError> {
        self.bodiless(Method::POST, &path(id, "/test")).await
    }
}
