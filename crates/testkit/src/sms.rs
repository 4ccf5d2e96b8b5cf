//! A small SMS provider on loopback, speaking the JSON API of the notification service's SMS
//! adapter (`POST /sms` with `Authorization: Bearer <key>`, answering `{"id": "…"}`). It keeps
//! every message it accepts, can answer the next messages with a chosen status (503 to test
//! retries, 400 to test permanent failures), and refuses a wrong key with 401.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// The key the provider accepts.
pub const SMS_PROVIDER_KEY: &str = "test-sms-key";

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    /// The provider's id of it (what receipts name).
    pub id: String,
    pub to: String,
    pub from: String,
    pub text: String,
    pub reference: String,
    pub callback_url: Option<String>,
}

#[derive(Default)]
struct Inner {
    received: Vec<ReceivedSms>,
    /// Statuses to answer the next requests with, in order.
    script: VecDeque<u16>,
    requests: usize,
}

/// The running provider; it stops with the test's runtime.
#[derive(Clone)]
pub struct SmsProvider {
    address: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl SmsProvider {
    pub async fn start() -> std::io::Result<SmsProvider> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/sms", post(accept))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SmsProvider { address, inner })
    }

    /// `http://127.0.0.1:port/sms`.
    pub fn url(&self) -> String {
        format!("http://{}/sms", self.address)
    }

    /// Answers the next `count` messages with HTTP `status` (and does not keep them).
    pub fn answer_next(&self, status: u16, count: usize) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.script.extend(std::iter::repeat_n(status, count));
        }
    }

    /// The messages accepted for `to`, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<ReceivedSms> {
        self.inner
            .lock()
            .map(|inner| {
                inner
                    .received
                    .iter()
                    .filter(|sms| sms.to == to)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many requests it answered (accepted or not).
    pub fn requests(&self) -> usize {
        self.inner.lock().map(|inner| inner.requests).unwrap_or(0)
    }
}

async fn accept(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> (StatusCode, Json<serde_json::Value>) {
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(&format!("Bearer {SMS_PROVIDER_KEY}"));
    let Ok(mut inner) = inner.lock() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({})),
        );
    };
    inner.requests += 1;
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "bad key"})),
        );
    }
    if let Some(status) = inner.script.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, Json(serde_json::json!({"error": "scripted"})));
    }
    let text = |field: &str| {
        body.get(field)
            .and_then(|value| value.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let id = format!("sms-{}", inner.received.len() + 1);
    let sms = ReceivedSms {
        id: id.clone(),
        to: text("to"),
        from: text("from"),
        text: text("text"),
        reference: text("reference"),
        callback_url: body
            .get("callback_url")
            .and_then(|value| value.as_str())
            .map(str::to_string),
    };
    inner.received.push(sms);
    (StatusCode::OK, Json(serde_json::json!({ "id": id })))
}
