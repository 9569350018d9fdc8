//! Standard Webhooks signing: the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers a receiver
//! checks to know that a request came from this rotavault and was not replayed.
//!
//! The signature is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where the key is the base64
//! after the `whsec_` prefix of the key file (the form Standard Webhooks libraries generate and accept). The key
//! never appears in an error, a log line or `Debug`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// The prefix of a Standard Webhooks key.
pub const KEY_PREFIX: &str = "whsec_";
/// The key length Standard Webhooks asks for, in bytes.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// A signing key, read from a file.
#[derive(Clone)]
pub struct SigningKey(Zeroizing<Vec<u8>>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// The key from a key file's text: `whsec_` + base64 (the prefix may be left out), surrounding whitespace
    /// ignored. The error says what is wrong and never repeats the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let encoded = text.strip_prefix(KEY_PREFIX).unwrap_or(text);
        let bytes = Zeroizing::new(STANDARD.decode(encoded).map_err(|_| {
            format!(
                "not a Standard Webhooks key: expected `{KEY_PREFIX}` followed by base64 (standard alphabet)"
            )
        })?);
        if !KEY_BYTES.contains(&bytes.len()) {
            return Err(format!(
                "the key decodes to {} bytes: expected {} to {} random bytes, base64-encoded after `{KEY_PREFIX}`",
                bytes.len(),
                KEY_BYTES.start(),
                KEY_BYTES.end()
            ));
        }
        Ok(Self(bytes))
    }

    /// The `webhook-signature` value for one delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            unreachable!("HMAC accepts every key length")
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The three headers of one signed delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

impl SignedHeaders {
    /// Signs `body` sent as message `id` at `timestamp` (Unix seconds). Retries of one message keep its id, so
    /// that a receiver can drop a duplicate, and get a fresh timestamp and signature.
    pub fn new(key: &SigningKey, id: &str, timestamp: i64, body: &[u8]) -> Self {
        Self { id: id.to_owned(), timestamp, signature: key.sign(id, timestamp, body) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_matches_the_standard_webhooks_reference_vector() {
        // The test vector of the Standard Webhooks specification's reference libraries.
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid key");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_key_that_is_not_base64_or_too_short_is_refused_without_quoting_it() {
        let err = SigningKey::parse("whsec_not*base64*at*all").expect_err("not base64");
        assert!(err.contains("expected `whsec_`"), "{err}");
        assert!(!err.contains("not*base64"), "{err}");
        let err = SigningKey::parse("whsec_c2hvcnQ=").expect_err("5 bytes");
        assert!(err.contains("decodes to 5 bytes"), "{err}");
        assert_eq!(
            format!(
                "{:?}",
                SigningKey::parse(&format!("whsec_{}", STANDARD.encode([7u8; 32]))).expect("32 bytes")
            ),
            "SigningKey([redacted])"
        );
    }
}
