//! The CloudEvents 1.0 envelope every integration event travels in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// CloudEvents spec version.
pub const SPEC_VERSION: &str = "1.0";
/// The content type of every event's data: a protobuf message in binary.
pub const CONTENT_TYPE: &str = "application/protobuf";

/// A CloudEvent whose data is a protobuf message of the type named by `event_type`
/// (its full proto name, e.g. `jamaa.events.v1.RequestStatusChanged`).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    /// Unique per event (UUID v7); consumers deduplicate on it.
    pub id: Uuid,
    /// The service that emitted it, e.g. `jamaa/service-request`.
    pub source: String,
    /// The full proto name of the payload.
    pub event_type: String,
    /// The resource it is about, e.g. `requests/0190…`.
    pub subject: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// The protobuf-encoded payload.
    pub data: Vec<u8>,
    /// W3C trace context (`traceparent`, `tracestate`) of the operation that emitted it.
    pub trace_headers: BTreeMap<String, String>,
}

/// The event's payload is not what its type says.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event {id} has type {actual}, expected {expected}")]
    WrongType {
        id: Uuid,
        expected: String,
        actual: String,
    },
    #[error("event {id} has an undecodable payload: {source}")]
    Payload {
        id: Uuid,
        #[source]
        source: prost::DecodeError,
    },
}

impl CloudEvent {
    /// Wraps `payload` in a new event emitted by `source` about `subject`, in the current trace.
    pub fn new<M: prost::Message + prost::Name>(
        source: &str,
        subject: impl Into<String>,
        payload: &M,
    ) -> Self {
        CloudEvent {
            id: Uuid::now_v7(),
            source: source.to_string(),
            event_type: M::full_name(),
            subject: subject.into(),
            time: Utc::now(),
            data: payload.encode_to_vec(),
            trace_headers: jamaa_telemetry::current_trace_headers()
                .into_iter()
                .collect(),
        }
    }

    /// The CloudEvents `type` a payload of type `M` travels under.
    pub fn type_of<M: prost::Name>() -> String {
        M::full_name()
    }

    /// Whether the payload is an `M`.
    pub fn is<M: prost::Name>(&self) -> bool {
        self.event_type == M::full_name()
    }

    /// Decodes the payload as an `M`, checking the type first.
    pub fn decode<M: prost::Message + prost::Name + Default>(&self) -> Result<M, DecodeError> {
        if !self.is::<M>() {
            return Err(DecodeError::WrongType {
                id: self.id,
                expected: M::full_name(),
                actual: self.event_type.clone(),
            });
        }
        M::decode(self.data.as_slice()).map_err(|source| DecodeError::Payload {
            id: self.id,
            source,
        })
    }
}
