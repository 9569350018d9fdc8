//! `SecretValue`, the only type that holds a secret, and its generation from a [`SecretPolicy`].
//!
//! A `SecretValue` cannot be printed by accident: `Debug` writes `[redacted]`, there is no `Display` and no
//! `Serialize`, and its bytes are zeroized when it is dropped. Code that needs the text calls
//! [`SecretValue::expose`], which is easy to search for. Any text from outside that may quote a secret passes
//! through [`redact::Redactor`] before it goes anywhere.

mod policy;
pub mod redact;

pub use policy::{CharClass, PolicyError, PositionRule, SecretPolicy};

use std::fmt;
use zeroize::Zeroizing;

/// A secret: a password, an API secret, or the document a store holds for a job.
#[derive(Clone)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret's text. Every caller is a place where the secret leaves rotavault's control: a store call, a
    /// target call, a comparison.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Compares in time that depends only on the lengths, so that a comparison does not leak a prefix.
impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for SecretValue {}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = SecretValue::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
    }

    #[test]
    fn equality_compares_the_whole_value() {
        assert_eq!(SecretValue::new("abc"), SecretValue::new("abc"));
        assert_ne!(SecretValue::new("abc"), SecretValue::new("abd"));
        assert_ne!(SecretValue::new("abc"), SecretValue::new("abcd"));
    }
}
