//! Autotask's password rules for a SOAP `update` (the reference's §3): always at most 64 characters, no space, no
//! single quote, none of the last 5 passwords; with "strong passwords" on, also at least 7 characters, a special
//! character in positions 2–6 and two of upper/lower/digit. The messages never contain the password.

/// The special characters of Autotask's strong-password rule.
pub(crate) const SPECIALS: &str = "`~!@#$%^&*()_+-={}|\\[]:;\"'<>?,./";

/// How many passwords (the current one included) a new one must differ from.
pub(crate) const HISTORY: usize = 5;

/// `Err(why)` when Autotask would refuse `new`; `recent` are the last passwords, newest first.
pub(crate) fn check<'a>(
    new: &str,
    strong: bool,
    mut recent: impl Iterator<Item = &'a str>,
) -> Result<(), &'static str> {
    let length = new.chars().count();
    if length == 0 {
        return Err("Password cannot be empty.");
    }
    if length > 64 {
        return Err("Password cannot be longer than 64 characters.");
    }
    if new.contains(' ') {
        return Err("Password cannot contain spaces.");
    }
    if new.contains('\'') {
        return Err("Password cannot contain single quotes (').");
    }
    if strong {
        if length < 7 {
            return Err("Password must be at least 7 characters long.");
        }
        if !new.chars().skip(1).take(5).any(|c| SPECIALS.contains(c)) {
            return Err("Password must contain a special character in positions 2 through 6.");
        }
        let classes = [
            new.chars().any(|c| c.is_ascii_uppercase()),
            new.chars().any(|c| c.is_ascii_lowercase()),
            new.chars().any(|c| c.is_ascii_digit()),
        ];
        if classes.iter().filter(|c| **c).count() < 2 {
            return Err(
                "Password must contain characters from at least two of: upper case letters, lower case letters, digits.",
            );
        }
    }
    if recent.any(|old| old == new) {
        return Err("Password cannot be the same as any of the last 5 passwords.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn strong_rules_accept_a_generated_style_password() {
        assert_eq!(check("a!bcdeF9", true, std::iter::empty()), Ok(()));
    }

    #[test]
    fn special_in_position_one_or_seven_does_not_count() {
        assert!(check("!abcdefG9", true, std::iter::empty()).is_err());
        assert!(check("abcdef!G9", true, std::iter::empty()).is_err());
        assert_eq!(check("abcde!G9", true, std::iter::empty()), Ok(()));
    }

    #[test]
    fn weak_rules_still_refuse_quotes_spaces_and_history() {
        assert_eq!(check("abc", false, std::iter::empty()), Ok(()));
        assert!(check("a b", false, std::iter::empty()).is_err());
        assert!(check("a'b", false, std::iter::empty()).is_err());
        assert!(check("abc", false, ["x", "abc"].into_iter()).is_err());
    }
}
