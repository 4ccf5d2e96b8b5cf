//! The ways a message leaves the platform. Each channel is one small implementation of
//! [`Channel`]; adding SMS, WhatsApp or voice is one more file here.

pub mod email;

use async_trait::async_trait;

/// A message for one person on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The channel's address of the person (an e-mail address, a phone number).
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (the server is away, busy, or said "try later").
    #[error("temporary: {0}")]
    Temporary(String),
    /// Trying again will not help (the address is refused, the message malformed).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A way to reach people.
#[async_trait]
pub trait Channel: Send + Sync {
    /// The channel's name, as stored with each delivery (`email`, `sms`).
    fn name(&self) -> &'static str;

    /// Hands `message` to the provider.
    async fn send(&self, message: &Outgoing) -> Result<(), SendError>;
}
