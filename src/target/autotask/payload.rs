//! The payload of an Autotask job, what its stores hold: by default a JSON document
//! `{"username","secret","integration_code","zone_url","rotated_at","rotation_id"}`, so that a consumer finds
//! everything it needs to call Autotask in one place; or, for one-user jobs, the bare secret.
//!
//! Parsing and writing never let the document into an error message: serde's messages can quote a value, so
//! errors here name only the position and the field that is missing. The JSON is written into a buffer sized up
//! front, so that no reallocation leaves a copy of the secret behind before the buffer is handed to a zeroizing
//! `SecretValue`.

use crate::secret::SecretValue;
use crate::target::RotationInfo;
use chrono::SecondsFormat;
use std::fmt;
use zeroize::Zeroizing;

/// What the store holds for an Autotask job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadFormat {
    /// `{"username","secret","integration_code","zone_url","rotated_at","rotation_id"}`.
    #[default]
    Json,
    /// The bare secret; only for jobs with one user, since it cannot say which user it belongs to.
    Secret,
}

/// An API user's credential: what REST headers and SOAP Basic auth need.
#[derive(Clone)]
pub(super) struct Credential {
    pub username: String,
    pub secret: SecretValue,
    /// The API tracking identifier. Not a password, but kept out of logs and `Debug` like one: it is a vendor's
    /// identity toward Autotask.
    pub integration_code: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential").field("username", &self.username).finish_non_exhaustive()
    }
}

/// A parsed payload.
#[derive(Clone, Debug)]
pub(super) struct Payload {
    pub credential: Credential,
    pub zone_url: Option<String>,
    pub rotated_at: Option<String>,
    pub rotation_id: Option<String>,
}

#[derive(serde::Serialize)]
struct JsonOut<'a> {
    username: &'a str,
    secret: &'a str,
    integration_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotated_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_id: Option<&'a str>,
}

/// Unknown keys are allowed, so that a consumer may keep notes beside the credential.
#[derive(serde::Deserialize)]
struct JsonIn {
    username: Option<String>,
    secret: Option<String>,
    integration_code: Option<String>,
    zone_url: Option<String>,
    rotated_at: Option<String>,
    rotation_id: Option<String>,
}

impl Payload {
    pub fn new(credential: Credential, zone_url: &str, info: &RotationInfo) -> Self {
        Self {
            credential,
            zone_url: Some(zone_url.to_owned()),
            rotated_at: Some(info.rotated_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            rotation_id: Some(info.rotation_id.to_string()),
        }
    }

    pub fn to_json(&self) -> SecretValue {
        let c = &self.credential;
        let doc = JsonOut {
            username: &c.username,
            secret: c.secret.expose(),
            integration_code: &c.integration_code,
            zone_url: self.zone_url.as_deref(),
            rotated_at: self.rotated_at.as_deref(),
            rotation_id: self.rotation_id.as_deref(),
        };
        // JSON escaping at most sextuples a character (`\u00XX`); with room for keys, the buffer never grows.
        let values = [Some(c.username.as_str()), Some(c.secret.expose()), Some(&c.integration_code)]
            .into_iter()
            .chain([self.zone_url.as_deref(), self.rotated_at.as_deref(), self.rotation_id.as_deref()])
            .flatten()
            .map(str::len)
            .sum::<usize>();
        let mut buf = Zeroizing::new(Vec::with_capacity(values * 6 + 256));
        // Writing plain strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, &doc);
        let bytes = std::mem::take(&mut *buf);
        match String::from_utf8(bytes) {
            Ok(text) => SecretValue::new(text),
            // Unreachable (serde_json writes UTF-8); wipe and return an empty payload rather than panic.
            Err(e) => {
                drop(Zeroizing::new(e.into_bytes()));
                SecretValue::new(String::new())
            }
        }
    }

    /// Reads a JSON payload. The error never quotes the document.
    pub fn from_json(payload: &SecretValue) -> Result<Self, String> {
        let doc: JsonIn = serde_json::from_str(payload.expose()).map_err(|e| {
            format!(
                "it is not a JSON object of strings (error at line {}, column {}: {:?})",
                e.line(),
                e.column(),
                e.classify()
            )
        })?;
        let JsonIn { username, secret, integration_code, zone_url, rotated_at, rotation_id } = doc;
        let secret = secret.map(SecretValue::new);
        let missing: Vec<&str> = [
            ("username", username.as_deref().is_none_or(str::is_empty)),
            ("secret", secret.as_ref().is_none_or(SecretValue::is_empty)),
            ("integration_code", integration_code.as_deref().is_none_or(str::is_empty)),
        ]
        .into_iter()
        .filter_map(|(key, absent)| absent.then_some(key))
        .collect();
        match (username, secret, integration_code) {
            (Some(username), Some(secret), Some(integration_code)) if missing.is_empty() => Ok(Self {
                credential: Credential { username, secret, integration_code },
                zone_url,
                rotated_at,
                rotation_id,
            }),
            _ => Err(format!("it has no {}", missing.join(", no "))),
        }
    }
}

/// Which of the job's users a rotation sets: with one, that one; with two, the one the current payload does not
/// name, so that consumers keep working with the current user until they re-read; the first when nothing is
/// current or the current payload cannot be read.
pub(super) fn choose_user<'a>(users: &'a [String], current: Option<&SecretValue>) -> &'a str {
    let (first, second) = match users {
        [only] => return only,
        [first, second, ..] => (first, second),
        [] => return "",
    };
    let current_user = current.and_then(|c| Payload::from_json(c).ok()).map(|p| p.credential.username);
    match current_user {
        Some(user) if user.eq_ignore_ascii_case(first) => second,
        _ => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RotationId;
    use chrono::TimeZone;

    fn info() -> RotationInfo {
        RotationInfo {
            job: "optimize365".into(),
            rotation_id: RotationId::parse("0c5e3f8a-6b9d-4e1f-8a7c-2d3b4c5d6e7f").unwrap(),
            rotated_at: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 3, 0, 0).unwrap(),
        }
    }

    fn credential(user: &str, secret: &str) -> Credential {
        Credential {
            username: user.into(),
            secret: SecretValue::new(secret),
            integration_code: "CODE27".into(),
        }
    }

    #[test]
    fn json_round_trips_with_every_key() {
        let secret = r#"a#"\<&>'{}x9Y"#;
        let payload = Payload::new(
            credential("k3x9@contoso.com", secret),
            "https://ws5.example/atservicesrest/",
            &info(),
        );
        let json = payload.to_json();
        let value: serde_json::Value = serde_json::from_str(json.expose()).unwrap();
        assert_eq!(value["username"], "k3x9@contoso.com");
        assert_eq!(value["secret"], secret);
        assert_eq!(value["integration_code"], "CODE27");
        assert_eq!(value["zone_url"], "https://ws5.example/atservicesrest/");
        assert_eq!(value["rotated_at"], "2026-03-01T03:00:00Z");
        assert_eq!(value["rotation_id"], "0c5e3f8a-6b9d-4e1f-8a7c-2d3b4c5d6e7f");
        let back = Payload::from_json(&json).unwrap();
        assert_eq!(back.credential.secret.expose(), secret);
        assert_eq!(back.credential.username, "k3x9@contoso.com");
        assert_eq!(back.rotation_id.as_deref(), Some("0c5e3f8a-6b9d-4e1f-8a7c-2d3b4c5d6e7f"));
    }

    #[test]
    fn parse_errors_name_fields_never_values() {
        let err =
            Payload::from_json(&SecretValue::new(r#"{"username":"u","secret":"hunter2"}"#)).unwrap_err();
        assert!(err.contains("integration_code"), "{err}");
        assert!(!err.contains("hunter2"));
        let err = Payload::from_json(&SecretValue::new(r#"{"username":"u","secret":12345678}"#)).unwrap_err();
        assert!(!err.contains("12345678"), "{err}");
        let err = Payload::from_json(&SecretValue::new("hunter2-bare")).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn alternating_users_take_turns() {
        let users = vec!["a@x".to_owned(), "b@x".to_owned()];
        assert_eq!(choose_user(&users, None), "a@x");
        let on_a = Payload::new(credential("a@x", "s"), "z", &info()).to_json();
        assert_eq!(choose_user(&users, Some(&on_a)), "b@x");
        let on_b = Payload::new(credential("B@X", "s"), "z", &info()).to_json();
        assert_eq!(choose_user(&users, Some(&on_b)), "a@x");
        assert_eq!(choose_user(&users, Some(&SecretValue::new("bare"))), "a@x");
        let one = vec!["a@x".to_owned()];
        assert_eq!(choose_user(&one, Some(&on_a)), "a@x");
    }
}
