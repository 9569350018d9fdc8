//! Email through SMTP (lettre, on rustls): STARTTLS, implicit TLS, or plain SMTP to a relay on this machine.
//! The password is read from a file and given only to the transport; an SMTP error is redacted of it.

use super::error::DeliveryError;
use super::message::{facts, summary};
use crate::events::Event;
use crate::secret::SecretValue;
use crate::secret::redact::redact;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP, then `STARTTLS` (required, never skipped): usually port 587.
    StartTls,
    /// TLS from the first byte: usually port 465.
    Implicit,
    /// No TLS at all: only to a relay on the loopback interface (the config refuses anything else).
    None,
}

/// Everything needed to send, built once.
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    password: Option<SecretValue>,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel").field("from", &self.from).field("to", &self.to).finish_non_exhaustive()
    }
}

/// The settings of an email sink, as the config gives them (addresses already checked).
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password: Option<SecretValue>,
    pub timeout: Duration,
}

impl EmailChannel {
    pub fn new(settings: EmailSettings) -> Result<Self, String> {
        let builder = match settings.tls {
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host),
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)),
        }
        .map_err(|e| format!("SMTP host `{}`: {e}", settings.host))?;
        let mut builder = builder.port(settings.port).timeout(Some(settings.timeout));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        let mailbox = |text: &str| text.parse::<Mailbox>().map_err(|e| format!("address `{text}`: {e}"));
        Ok(Self {
            transport: builder.build(),
            from: mailbox(&settings.from)?,
            to: settings.to.iter().map(|t| mailbox(t)).collect::<Result<_, _>>()?,
            password: settings.password,
        })
    }

    pub(crate) async fn send(&self, event: &Event, source: &str) -> Result<(), DeliveryError> {
        let mut message = Message::builder().from(self.from.clone());
        for to in &self.to {
            message = message.to(to.clone());
        }
        let mut body: String =
            facts(event).into_iter().map(|(name, value)| format!("{name}: {value}\n")).collect();
        body.push_str("\nThe event (CloudEvents 1.0):\n");
        body.push_str(&serde_json::to_string_pretty(&event.to_cloudevent(source)).unwrap_or_default());
        body.push('\n');
        let message = message
            .subject(summary(event).chars().take(200).collect::<String>())
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| DeliveryError::Invalid(format!("the mail cannot be built: {e}")))?;
        self.transport.send(message).await.map(drop).map_err(|e| {
            let secrets: Vec<&SecretValue> = self.password.iter().collect();
            DeliveryError::Smtp { detail: redact(&secrets, &e.to_string()), permanent: e.is_permanent() }
        })
    }
}
