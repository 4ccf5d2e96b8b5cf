//! SMS through a provider's HTTP API: one JSON `POST` per message to the configured endpoint,
//! `Authorization: Bearer <api key>`:
//!
//! ```json
//! {"to": "+212612345678", "from": "Jamaa", "text": "…", "reference": "<delivery id>",
//!  "callback_url": "https://…/v1/sms/receipts?token=…"}
//! ```
//!
//! A 2xx answer takes the message; its JSON `id` (or `message_id`) is the provider's id, which
//! the delivery receipt names later (`RecordSmsReceipt`, through the gateway). 408, 425, 429
//! and 5xx answers, time-outs and connection failures are temporary (tried again); any other
//! answer is permanent. Most providers (Twilio-like, Vonage-like, Moroccan aggregators) are one
//! small adapter away from this shape; the adapter is this file.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jamaa_settings::{ExposeSecret, SecretString};

use super::{Accepted, Channel, Outgoing, SendError};

/// The longest a provider may take to answer.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Sends SMS through one provider.
pub struct SmsChannel {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: http::Uri,
    api_key: SecretString,
    sender: String,
    callback_url: Option<String>,
}

impl SmsChannel {
    /// `endpoint`: the provider's `http(s)://` URL; `callback_url`: where it should send
    /// delivery receipts (the gateway's `/v1/sms/receipts?token=…`), if anywhere.
    pub fn new(
        endpoint: &str,
        api_key: SecretString,
        sender: &str,
        callback_url: Option<String>,
    ) -> Result<SmsChannel, String> {
        let endpoint: http::Uri = endpoint
            .parse()
            .map_err(|error| format!("notification.sms.endpoint: {error}"))?;
        if !matches!(endpoint.scheme_str(), Some("http" | "https")) {
            return Err("notification.sms.endpoint must be an http:// or https:// URL".into());
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Ok(SmsChannel {
            client: Client::builder(TokioExecutor::new()).build(connector),
            endpoint,
            api_key,
            sender: sender.to_string(),
            callback_url,
        })
    }
}

#[async_trait]
impl Channel for SmsChannel {
    fn name(&self) -> &'static str {
        "sms"
    }

    async fn send(&self, message: &Outgoing) -> Result<Accepted, SendError> {
        let mut body = serde_json::json!({
            "to": message.to,
            "from": self.sender,
            "text": message.text,
            "reference": message.reference,
        });
        if let Some(url) = &self.callback_url {
            body["callback_url"] = serde_json::Value::String(url.clone());
        }
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.api_key.expose_secret()),
            )
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|error| SendError::Permanent(format!("cannot build the request: {error}")))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, bytes))
        };
        let (status, bytes) = match tokio::time::timeout(TIMEOUT, exchange).await {
            Err(_) => {
                return Err(SendError::Temporary(
                    "the SMS provider did not answer".into(),
                ));
            }
            Ok(Err(error)) => {
                return Err(SendError::Temporary(format!(
                    "cannot reach the SMS provider: {error}"
                )));
            }
            Ok(Ok(answer)) => answer,
        };
        if status.is_success() {
            let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|json| {
                    let id = json.get("id").or_else(|| json.get("message_id"))?;
                    match id {
                        serde_json::Value::String(id) => Some(id.clone()),
                        serde_json::Value::Number(id) => Some(id.to_string()),
                        _ => None,
                    }
                });
            return Ok(Accepted {
                provider_message_id: id,
            });
        }
        let said = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        let error = format!("the SMS provider answered {status}: {said}");
        if is_temporary(status) {
            Err(SendError::Temporary(error))
        } else {
            Err(SendError::Permanent(error))
        }
    }
}

/// Whether an answer says "try again later".
fn is_temporary(status: StatusCode) -> bool {
    status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY | StatusCode::TOO_MANY_REQUESTS
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_broken_providers_are_temporary_refusals_are_not() {
        for code in [408, 425, 429, 500, 502, 503] {
            assert!(
                is_temporary(StatusCode::from_u16(code).expect("code")),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(
                !is_temporary(StatusCode::from_u16(code).expect("code")),
                "{code}"
            );
        }
    }

    #[test]
    fn the_endpoint_must_be_http() {
        let key = SecretString::from("k");
        assert!(SmsChannel::new("ftp://x", key.clone(), "Jamaa", None).is_err());
        assert!(SmsChannel::new("http://127.0.0.1:9/sms", key, "Jamaa", None).is_ok());
    }
}
