//! The Autotask password rules, as a [`SecretPolicy`].
//!
//! The rules are the strictest Autotask applies (the reference's §3): at most 64 characters, no space and no single
//! quote, and, with the tenant's "strong passwords" option on, at least 7 characters, a special character in
//! positions 2–6 and characters from at least 2 of upper case, lower case and digits. rotavault assumes the option
//! is on, because a secret that meets the strong rules also meets the weak ones. The history rule (different from
//! the last 5 passwords) cannot be a policy: a fresh 32-character random secret meets it with certainty, and a
//! refusal on history is mapped to `Rejected` by the apply.

use crate::secret::{CharClass, PositionRule, SecretPolicy};

/// Length of generated secrets: long enough to be unguessable, short of the 64-character field.
const DEFAULT_LENGTH: usize = 32;

/// Autotask's special characters (`` `~!@#$%^&*()_+-={}|\[]:;"'<>?,./ ``) are exactly the ASCII punctuation, so the
/// default alphabet (printable ASCII without space) minus the single quote draws every special from the list.
pub fn autotask_policy() -> SecretPolicy {
    SecretPolicy {
        length: DEFAULT_LENGTH,
        min_length: 7,
        max_length: 64,
        alphabet: None,
        forbidden: [' ', '\''].into_iter().collect(),
        min_groups: 2,
        positions: vec![PositionRule { class: CharClass::Special, from: 2, to: 6 }],
        ..SecretPolicy::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AUTOTASK_SPECIALS: &str = "`~!@#$%^&*()_+-={}|\\[]:;\"'<>?,./";

    /// The rules as Autotask states them, written out independently of `SecretPolicy`.
    fn autotask_accepts(password: &str) -> Result<(), String> {
        let chars: Vec<char> = password.chars().collect();
        if chars.len() > 64 || chars.len() < 7 {
            return Err(format!("{} characters", chars.len()));
        }
        if chars.iter().any(|&c| c == ' ' || c == '\'') {
            return Err("a space or single quote".into());
        }
        if !chars[1..6].iter().any(|c| AUTOTASK_SPECIALS.contains(*c)) {
            return Err("no special character in positions 2-6".into());
        }
        let groups = [
            chars.iter().any(char::is_ascii_uppercase),
            chars.iter().any(char::is_ascii_lowercase),
            chars.iter().any(char::is_ascii_digit),
        ];
        if groups.iter().filter(|&&g| g).count() < 2 {
            return Err("fewer than 2 of upper/lower/digit".into());
        }
        if let Some(c) = chars.iter().find(|c| !c.is_ascii_graphic()) {
            return Err(format!("character {c:?} outside printable ASCII"));
        }
        Ok(())
    }

    #[test]
    fn the_policy_is_satisfiable_and_32_long_by_default() {
        let policy = autotask_policy();
        assert_eq!(policy.length, 32);
        policy.validate().expect("the Autotask rules can be met");
    }

    #[test]
    fn thousands_of_generated_secrets_meet_the_autotask_rules() {
        let policy = autotask_policy();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3000 {
            let secret = policy.generate().expect("generates");
            assert_eq!(secret.expose().chars().count(), 32);
            if let Err(why) = autotask_accepts(secret.expose()) {
                panic!("a generated secret breaks the Autotask rules: {why}");
            }
            // A fresh random secret is never one of the last 5: all of these are distinct.
            assert!(seen.insert(secret.expose().to_owned()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn every_allowed_length_generates_acceptable_secrets(length in 7usize..=64) {
            let policy = SecretPolicy { length, ..autotask_policy() };
            let secret = policy.generate().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(secret.expose().chars().count(), length);
            prop_assert!(autotask_accepts(secret.expose()).is_ok(), "{:?}", autotask_accepts(secret.expose()));
        }
    }

    #[test]
    fn the_policy_refuses_what_autotask_refuses() {
        let policy = autotask_policy();
        for bad in ["abc'#DEF123", "ab #DEF123", "abcdefG1#", "a#b", &format!("a#{}", "b1".repeat(32))] {
            assert!(policy.check(&crate::secret::SecretValue::new(bad)).is_err(), "accepted {bad:?}");
        }
        assert!(policy.check(&crate::secret::SecretValue::new("a#bcdeF1")).is_ok());
    }
}
