//! Email through SMTP (lettre, on rustls): STARTTLS, implicit TLS, or plain SMTP to a relay on this machine.
//! The password is read from a file and given only to the transport; an SMTP error is redacted of it.
//! A private CA (`ca_file`) is trusted in addition to the platform's roots, never instead of them, so that pointing
//! a sink at an internal relay cannot quietly stop public certificates from being checked.

use super::error::DeliveryError;
use super::message::{facts, summary};
use crate::events::Event;
use crate::secret::SecretValue;
use crate::secret::redact::redact;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
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
    /// A file of PEM CA certificates to trust besides the platform's; read here, so that a missing or malformed
    /// one stops the start rather than every delivery.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl EmailChannel {
    pub fn new(settings: EmailSettings) -> Result<Self, String> {
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters(&settings.host, settings.ca_file.as_deref())?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters(&settings.host, settings.ca_file.as_deref())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .tls(tls)
            .port(settings.port)
            .timeout(Some(settings.timeout));
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

/// The certificate checks of a TLS sink: the host's name against the platform's roots plus the given CAs.
fn tls_parameters(host: &str, ca_file: Option<&Path>) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(file) = ca_file {
        let pem = std::fs::read(file)
            .map_err(|e| format!("the CA file `{}` cannot be read: {e}", file.display()))?;
        // lettre keeps only the CERTIFICATE blocks and says nothing when there are none: a key or an empty file
        // given by mistake would otherwise leave the private CA untrusted with no hint why.
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!(
                "the CA file `{}` holds no PEM certificate: expected one or more `-----BEGIN CERTIFICATE-----` \
                 blocks",
                file.display()
            ));
        }
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| format!("the CA file `{}` is not valid PEM: {e}", file.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|e| format!("SMTP host `{host}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ca_file: PathBuf) -> EmailSettings {
        EmailSettings {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            username: None,
            password: None,
            ca_file: Some(ca_file),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_stops_the_sink_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let err = EmailChannel::new(settings(missing.clone())).expect_err("a missing CA file");
        assert!(err.contains("cannot be read") && err.contains(&missing.display().to_string()), "{err}");
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .expect("write");
        let err = EmailChannel::new(settings(key.clone())).expect_err("no certificate");
        assert!(
            err.contains("holds no PEM certificate") && err.contains(&key.display().to_string()),
            "{err}"
        );
    }
}
