//! Every form a secret may take in a server's answer, each removed; and the order of redacting and cutting.

use super::*;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use proptest::prelude::*;

/// Has every character class that an escape changes: `&`, `<`, `"`, `'`, `\`, `+`, `/`, space, and non-ASCII.
const SECRET: &str = "p&<ss\"w'o\\rd+/ é€x";

fn secret() -> SecretValue {
    SecretValue::new(SECRET)
}

fn redacted(text: &str) -> String {
    redact(&[&secret()], text)
}

fn assert_gone(form: &str) {
    let text = format!("error: the value <{form}> is not allowed (code 7)");
    let out = redacted(&text);
    assert_eq!(out, format!("error: the value <{REDACTED}> is not allowed (code 7)"), "form {form:?}");
}

fn xml_named(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn percent(s: &str, lower: bool, plus_for_space: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b' ' if plus_for_space => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ if lower => out.push_str(&format!("%{b:02x}")),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[test]
fn the_raw_secret_is_removed() {
    assert_gone(SECRET);
}

#[test]
fn xml_escaped_secrets_are_removed_with_named_and_numeric_entities() {
    assert_gone(&xml_named(SECRET));
    let decimal: String = SECRET.chars().map(|c| format!("&#{};", c as u32)).collect();
    assert_gone(&decimal);
    let hex_upper: String = SECRET.chars().map(|c| format!("&#X{:X};", c as u32)).collect();
    assert_gone(&hex_upper);
    let hex_lower: String = SECRET.chars().map(|c| format!("&#x{:x};", c as u32)).collect();
    assert_gone(&hex_lower);
    // Only the three that XML text requires, quotes left raw, as most writers do.
    assert_gone(&SECRET.replace('&', "&amp;").replace('<', "&lt;"));
}

#[test]
fn json_escaped_secrets_are_removed() {
    let quoted = serde_json::to_string(SECRET).unwrap();
    assert_gone(&quoted[1..quoted.len() - 1]);
    let unicode: String = SECRET.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
    assert_gone(&unicode);
    let upper: String = SECRET.encode_utf16().map(|u| format!("\\u{u:04X}")).collect();
    assert_gone(&upper);
    assert_gone(&SECRET.replace('\\', "\\\\").replace('/', "\\/").replace('"', "\\\""));
}

#[test]
fn a_json_surrogate_pair_decodes_to_one_character() {
    let secret = SecretValue::new("emoji-😀-key");
    let text = r#"{"error":"bad value emoji-\ud83d\ude00-key"}"#;
    assert_eq!(redact(&[&secret], text), format!(r#"{{"error":"bad value {REDACTED}"}}"#));
}

#[test]
fn percent_escaped_secrets_are_removed_in_both_cases_and_both_space_styles() {
    assert_gone(&percent(SECRET, false, false));
    assert_gone(&percent(SECRET, true, false));
    assert_gone(&percent(SECRET, false, true));
    assert_gone(&percent(SECRET, true, true));
}

#[test]
fn base64_secrets_are_removed_in_both_alphabets_with_and_without_padding() {
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        // Lengths 18 to 20 give every kind of last group: full, one byte short, two bytes short.
        for secret in [SECRET.to_owned(), format!("{SECRET}a"), format!("{SECRET}ab")] {
            let form = engine.encode(&secret);
            let text = format!("error: the value <{form}> is not allowed");
            let out = redact(&[&SecretValue::new(secret.clone())], &text);
            assert_eq!(out, format!("error: the value <{REDACTED}> is not allowed"), "form {form:?}");
        }
    }
}

#[test]
fn a_basic_auth_value_is_removed_whole_for_every_user_name_length() {
    // User names of 3, 4 and 5 characters put the secret at each of the three alignments of base64.
    for user in ["bob", "anna", "carol@x.com"] {
        let header = format!("Basic {}", STANDARD.encode(format!("{user}:{SECRET}")));
        let text = format!("401 for request with Authorization: {header}; try again");
        assert_eq!(
            redacted(&text),
            format!("401 for request with Authorization: Basic {REDACTED}; try again"),
            "user {user}"
        );
    }
}

#[test]
fn escapes_may_be_mixed_within_one_secret() {
    let mixed = "p&amp;%3Css\\\"w&#39;o\\\\rd%2b/+%C3%A9\\u20acx";
    assert_gone(mixed);
}

#[test]
fn a_text_without_the_secret_is_unchanged() {
    let text = "HTTP 500: Object reference not set to an instance of an object. &amp; 100% + \\n";
    assert_eq!(redacted(text), text);
    assert_eq!(Redactor::none().redact(text), text);
}

#[test]
fn every_occurrence_of_every_secret_is_removed() {
    let other = SecretValue::new("second-secret-value");
    let text = format!("{SECRET} and second-secret-value and {}", xml_named(SECRET));
    let out = redact(&[&secret(), &other], &text);
    assert_eq!(out, format!("{REDACTED} and {REDACTED} and {REDACTED}"));
}

#[test]
fn overlapping_secrets_leave_nothing_of_either() {
    let long = SecretValue::new("abcdefghij");
    let inner = SecretValue::new("efghijklmn");
    let out = redact(&[&long, &inner], "<abcdefghijklmn>");
    assert_eq!(out, format!("<{REDACTED}>"));
}

#[test]
fn an_excerpt_never_ends_in_half_a_secret() {
    // Cut first and redact after, and the first 10 characters of the secret would survive at the end.
    let text = format!("{}{SECRET} and more text after it", "x".repeat(290));
    let out = excerpt(&[&secret()], &text, 300);
    assert!(!out.contains(&SECRET[..5]), "{out}");
    assert!(out.chars().count() <= 301);
    assert!(out.starts_with(&"x".repeat(290)));
}

#[test]
fn an_excerpt_is_one_line() {
    assert_eq!(Redactor::none().excerpt("line one\n   line two\t", 300), "line one line two");
    assert_eq!(Redactor::none().excerpt("abcdef", 3), "abc…");
}

#[test]
fn a_secret_shorter_than_the_minimum_withholds_the_whole_text() {
    let short = SecretValue::new("abc12");
    assert_eq!(redact(&[&short], "anything at all"), WITHHELD);
    assert_eq!(redact(&[&short], ""), "");
    let just_long_enough = SecretValue::new("abc123");
    assert_eq!(redact(&[&just_long_enough], "x abc123 y"), format!("x {REDACTED} y"));
}

#[test]
fn an_empty_secret_is_ignored() {
    let empty = SecretValue::new("");
    assert_eq!(redact(&[&empty], "some text"), "some text");
}

#[test]
fn the_secret_member_of_a_json_payload_is_removed_on_its_own() {
    let payload = SecretValue::new(
        r#"{"username":"api@x.com","secret":"Zq7!member-secret","integration_code":"ABC","rotation_id":"r-1"}"#,
    );
    let out = redact(&[&payload], "the value Zq7!member-secret is invalid for api@x.com (r-1)");
    assert_eq!(out, format!("the value {REDACTED} is invalid for api@x.com (r-1)"));
}

#[test]
fn debug_shows_no_secret() {
    let shown = format!("{:?}", Redactor::new(&[&secret()]));
    assert!(!shown.contains("ss"), "{shown}");
}

fn arbitrary_secret() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![proptest::char::range('!', '~'), Just(' '), Just('é'), Just('€'), Just('😀'),],
        MIN_REDACTABLE..40,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_form_of_any_secret_survives(secret in arbitrary_secret(), user in "[a-z]{1,9}") {
        let json = serde_json::to_string(&secret).unwrap();
        let forms = [
            secret.clone(),
            xml_named(&secret),
            json[1..json.len() - 1].to_owned(),
            percent(&secret, false, true),
            percent(&secret, true, false),
            STANDARD.encode(&secret),
            URL_SAFE_NO_PAD.encode(&secret),
            format!("Basic {}", STANDARD.encode(format!("{user}:{secret}"))),
        ];
        let value = SecretValue::new(secret.clone());
        for form in forms {
            let out = redact(&[&value], &format!("before [{form}] after"));
            prop_assert!(!out.contains(&form), "{form:?} survived in {out:?}");
            prop_assert!(out.starts_with("before ["), "{out:?}");
            prop_assert!(out.ends_with("] after"), "{out:?}");
        }
    }
}
