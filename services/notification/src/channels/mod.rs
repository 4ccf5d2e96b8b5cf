//! The ways a message leaves the platform. Each channel is one small implementation of
//! [`Channel`]: [`email`] (SMTP) and [`sms`] (a provider's HTTP API). Adding WhatsApp or voice is
//! one more file here and one line in `crate::mount`.

pub mod email;
pub mod sms;

use async_trait::async_trait;

/// A message for one person on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The delivery's id: providers that take a client reference get it.
    pub reference: String,
    /// The channel's address of the person (an e-mail address, an E.164 phone number).
    pub to: String,
    pub subject: String,
    /// The plain text.
    pub text: String,
    /// The HTML alternative (e-mail), its values escaped.
    pub html: Option<String>,
}

/// What the provider answered when it took a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's id of the message, which its delivery receipts name.
    pub provider_message_id: Option<String>,
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
    async fn send(&self, message: &Outgoing) -> Result<Accepted, SendError>;
}
