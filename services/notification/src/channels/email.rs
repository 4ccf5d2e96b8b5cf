//! E-mail over SMTP (lettre): `smtp://host:port` (plain, for a local relay), `smtp://…?tls=required`
//! (STARTTLS) or `smtps://user:pass@host:465` (implicit TLS), credentials in the URL.

use async_trait::async_trait;
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Accepted, Channel, Outgoing, SendError};

/// Sends e-mail through one SMTP server.
pub struct SmtpChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpChannel {
    /// `url` as above; `from` the sender, e.g. `Jamaa <no-reply@jamaa.ma>`.
    pub fn new(url: &str, from: &str) -> Result<SmtpChannel, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| format!("notification.email.smtp_url: {error}"))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from
            .parse()
            .map_err(|error| format!("notification.email.from {from:?}: {error}"))?;
        Ok(SmtpChannel { transport, from })
    }
}

#[async_trait]
impl Channel for SmtpChannel {
    fn name(&self) -> &'static str {
        "email"
    }

    async fn send(&self, message: &Outgoing) -> Result<Accepted, SendError> {
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|error| SendError::Permanent(format!("not an e-mail address: {error}")))?;
        // UTF-8 plain text, with an HTML alternative (right to left for Arabic) when there is one.
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone());
        let email = match &message.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html.clone(),
            )),
            None => builder
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(message.text.clone()),
        }
        .map_err(|error| SendError::Permanent(format!("cannot build the e-mail: {error}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(Accepted::default()),
            Err(error) if error.is_permanent() => Err(SendError::Permanent(error.to_string())),
            Err(error) => Err(SendError::Temporary(error.to_string())),
        }
    }
}
