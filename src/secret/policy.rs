//! Secret policies: what a generated secret must look like, and generation with the OS CSPRNG.
//!
//! A policy is a set of constraints. The target contributes its rules (Autotask: at most 64 characters, no space or
//! single quote, a special character in positions 2–6, two of three character groups), the operator's global
//! `[policy]` and the job contribute theirs, and [`SecretPolicy::intersect`] combines them into the strictest one.
//! [`SecretPolicy::validate`] proves the result can be met before anything is generated, so that generation
//! always succeeds and is checked once more by [`SecretPolicy::check`].

use super::SecretValue;
use std::collections::BTreeSet;
use std::fmt;

/// Printable ASCII without space: every character a password field, a JSON document, a shell and a header take.
const DEFAULT_ALPHABET: std::ops::RangeInclusive<u8> = b'!'..=b'~';

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CharClass {
    Upper,
    Lower,
    Digit,
    Special,
}

impl CharClass {
    pub fn of(c: char) -> Self {
        if c.is_ascii_uppercase() {
            Self::Upper
        } else if c.is_ascii_lowercase() {
            Self::Lower
        } else if c.is_ascii_digit() {
            Self::Digit
        } else {
            Self::Special
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Upper => "upper-case letter",
            Self::Lower => "lower-case letter",
            Self::Digit => "digit",
            Self::Special => "special character",
        }
    }
}

/// "A character of `class` somewhere in positions `from..=to`", positions counted from 1 as people do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PositionRule {
    pub class: CharClass,
    pub from: usize,
    pub to: usize,
}

/// Constraints on a secret, and the length to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretPolicy {
    /// How long generated secrets are.
    pub length: usize,
    pub min_length: usize,
    pub max_length: usize,
    /// The characters a secret may use; `None` means printable ASCII without space.
    pub alphabet: Option<BTreeSet<char>>,
    pub forbidden: BTreeSet<char>,
    /// Each class here appears at least once.
    pub require: BTreeSet<CharClass>,
    /// At least this many of upper, lower and digit appear.
    pub min_groups: usize,
    pub positions: Vec<PositionRule>,
}

impl Default for SecretPolicy {
    fn default() -> Self {
        Self {
            length: 32,
            min_length: 1,
            max_length: 4096,
            alphabet: None,
            forbidden: BTreeSet::new(),
            require: BTreeSet::new(),
            min_groups: 0,
            positions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the secret policy cannot be met: {0}")]
    Unsatisfiable(String),
    #[error("the secret does not meet the policy: {0}")]
    Violated(String),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

impl SecretPolicy {
    /// The strictest policy that satisfies both. The length is the larger of the two wishes, clamped to the
    /// combined bounds.
    pub fn intersect(&self, other: &Self) -> Self {
        let alphabet = match (&self.alphabet, &other.alphabet) {
            (Some(a), Some(b)) => Some(a.intersection(b).copied().collect()),
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        };
        let min_length = self.min_length.max(other.min_length);
        let max_length = self.max_length.min(other.max_length);
        let mut positions: Vec<_> = self.positions.iter().chain(&other.positions).copied().collect();
        positions.sort();
        positions.dedup();
        Self {
            length: self.length.max(other.length).clamp(min_length, max_length.max(min_length)),
            min_length,
            max_length,
            alphabet,
            forbidden: self.forbidden.union(&other.forbidden).copied().collect(),
            require: self.require.union(&other.require).copied().collect(),
            min_groups: self.min_groups.max(other.min_groups),
            positions,
        }
    }

    /// The characters generation draws from.
    pub fn charset(&self) -> Vec<char> {
        let base: Vec<char> = match &self.alphabet {
            Some(set) => set.iter().copied().collect(),
            None => DEFAULT_ALPHABET.map(char::from).collect(),
        };
        base.into_iter().filter(|c| !self.forbidden.contains(c)).collect()
    }

    fn class_chars(&self, class: CharClass) -> Vec<char> {
        self.charset().into_iter().filter(|&c| CharClass::of(c) == class).collect()
    }

    /// The strength `generate` guarantees, in bits: a lower bound of the entropy of what it draws. Each positional
    /// rule's position is drawn from its class, each required class or group (the smallest classes, for
    /// `min_groups`) from its own, every other position from the whole charset; given where the rules landed,
    /// those draws are uniform and independent, so the entropy is at least the sum of their logarithms. Rounded
    /// down. Zero for a policy `validate` refuses.
    pub fn strength_bits(&self) -> u32 {
        if self.validate().is_err() {
            return 0;
        }
        let bits = |n: usize| (n.max(1) as f64).log2();
        let mut constrained: Vec<f64> =
            self.positions.iter().map(|rule| bits(self.class_chars(rule.class).len())).collect();
        constrained.extend(self.require.iter().map(|&class| bits(self.class_chars(class).len())));
        let mut groups: Vec<usize> = [CharClass::Upper, CharClass::Lower, CharClass::Digit]
            .into_iter()
            .map(|g| self.class_chars(g).len())
            .filter(|&n| n > 0)
            .collect();
        groups.sort_unstable();
        constrained.extend(groups.into_iter().take(self.min_groups).map(bits));
        let free = self.length.saturating_sub(constrained.len());
        let total =
            constrained.iter().take(self.length).sum::<f64>() + free as f64 * bits(self.charset().len());
        // Whole bits, never more than the sum: the small float error of the logarithms rounds down.
        total.floor() as u32
    }

    /// Proves that at least one secret of `length` meets every rule, so that generation cannot fail.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let fail = |m: String| Err(PolicyError::Unsatisfiable(m));
        if self.min_length > self.max_length {
            return fail(format!(
                "the minimum length {} is above the maximum length {}",
                self.min_length, self.max_length
            ));
        }
        if self.length < self.min_length || self.length > self.max_length {
            return fail(format!(
                "length {} is outside {}..={}",
                self.length, self.min_length, self.max_length
            ));
        }
        if self.charset().is_empty() {
            return fail("no character is allowed".into());
        }
        for &class in &self.require {
            if self.class_chars(class).is_empty() {
                return fail(format!("a {} is required but none is allowed", class.name()));
            }
        }
        let groups = [CharClass::Upper, CharClass::Lower, CharClass::Digit]
            .into_iter()
            .filter(|&c| !self.class_chars(c).is_empty())
            .count();
        if self.min_groups > 3 {
            return fail(format!("{} character groups are required but there are only 3", self.min_groups));
        }
        if self.min_groups > groups {
            return fail(format!(
                "{} of upper, lower and digit are required but only {groups} are allowed",
                self.min_groups
            ));
        }
        for rule in &self.positions {
            if rule.from == 0 || rule.from > rule.to {
                return fail(format!("positions {}-{} are not a range counted from 1", rule.from, rule.to));
            }
            if rule.from > self.length {
                return fail(format!(
                    "a {} is required in positions {}-{} but the secret has {} characters",
                    rule.class.name(),
                    rule.from,
                    rule.to,
                    self.length
                ));
            }
            if self.class_chars(rule.class).is_empty() {
                return fail(format!(
                    "a {} is required in positions {}-{} but none is allowed",
                    rule.class.name(),
                    rule.from,
                    rule.to
                ));
            }
        }
        if match_positions(&self.positions, self.length, |_| Ok(()))?.is_none() {
            return fail("the positional rules cannot all be met at once: they need more distinct positions than their ranges hold".into());
        }
        // Each requirement below may need a position of its own; there must be enough of them.
        let needs = self.positions.len() + self.require.len() + self.min_groups;
        if needs > self.length {
            return fail(format!(
                "the rules need up to {needs} distinct positions but the secret has {} characters",
                self.length
            ));
        }
        Ok(())
    }

    /// Whether `secret` meets every rule; the error names the first rule it breaks, never the secret.
    pub fn check(&self, secret: &SecretValue) -> Result<(), PolicyError> {
        let chars: Vec<char> = secret.expose().chars().collect();
        let fail = |m: String| Err(PolicyError::Violated(m));
        if chars.len() < self.min_length || chars.len() > self.max_length {
            return fail(format!(
                "it has {} characters, expected {}..={}",
                chars.len(),
                self.min_length,
                self.max_length
            ));
        }
        let charset = self.charset();
        if let Some(p) = chars.iter().position(|c| !charset.contains(c)) {
            return fail(format!("the character at position {} is not allowed", p + 1));
        }
        for &class in &self.require {
            if !chars.iter().any(|&c| CharClass::of(c) == class) {
                return fail(format!("it has no {}", class.name()));
            }
        }
        let groups = [CharClass::Upper, CharClass::Lower, CharClass::Digit]
            .into_iter()
            .filter(|&g| chars.iter().any(|&c| CharClass::of(c) == g))
            .count();
        if groups < self.min_groups {
            return fail(format!(
                "it uses {groups} of upper, lower and digit, expected at least {}",
                self.min_groups
            ));
        }
        for rule in &self.positions {
            let window = chars.get(rule.from - 1..rule.to.min(chars.len())).unwrap_or(&[]);
            if !window.iter().any(|&c| CharClass::of(c) == rule.class) {
                return fail(format!(
                    "it has no {} in positions {}-{}",
                    rule.class.name(),
                    rule.from,
                    rule.to
                ));
            }
        }
        Ok(())
    }

    /// A fresh secret from the OS CSPRNG that meets every rule.
    ///
    /// Constructive rather than rejection sampling, so that strict rules cannot make it loop: positional rules
    /// first take a random free position inside their range, required classes and groups then take random free
    /// positions, and every other position is drawn uniformly from the whole charset.
    pub fn generate(&self) -> Result<SecretValue, PolicyError> {
        self.validate()?;
        let mut rng = OsRandom;
        let charset = self.charset();
        let mut slots: Vec<Option<char>> = vec![None; self.length];

        // Each positional rule gets a position of its own inside its range, by a matching over shuffled candidates.
        let assignment =
            match_positions(&self.positions, self.length, |c| rng.shuffle(c))?.ok_or_else(|| {
                PolicyError::Unsatisfiable("the positional rules cannot all be met at once".into())
            })?;
        for (rule, at) in self.positions.iter().zip(assignment) {
            slots[at] = Some(*rng.pick(&self.class_chars(rule.class))?.unwrap_or(&'!'));
        }

        let mut wanted: Vec<CharClass> = self.require.iter().copied().collect();
        let mut groups = vec![CharClass::Upper, CharClass::Lower, CharClass::Digit];
        groups.retain(|&g| !self.class_chars(g).is_empty());
        rng.shuffle(&mut groups)?;
        wanted.extend(groups.into_iter().take(self.min_groups));
        for class in wanted {
            if slots.iter().flatten().any(|&c| CharClass::of(c) == class) {
                continue;
            }
            let free: Vec<usize> = (0..self.length).filter(|&i| slots[i].is_none()).collect();
            let Some(&at) = rng.pick(&free)? else {
                return Err(PolicyError::Unsatisfiable("no free position left".into()));
            };
            slots[at] = Some(*rng.pick(&self.class_chars(class))?.unwrap_or(&'!'));
        }

        let mut out = String::with_capacity(self.length);
        for slot in slots {
            match slot {
                Some(c) => out.push(c),
                None => out.push(*rng.pick(&charset)?.unwrap_or(&'!')),
            }
        }
        let secret = SecretValue::new(out);
        self.check(&secret)?;
        Ok(secret)
    }
}

impl fmt::Display for SecretPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} characters ({}..={})", self.length, self.min_length, self.max_length)?;
        if !self.require.is_empty() {
            let names: Vec<_> = self.require.iter().map(|c| c.name()).collect();
            write!(f, ", with a {}", names.join(", a "))?;
        }
        if self.min_groups > 0 {
            write!(f, ", {} of upper/lower/digit", self.min_groups)?;
        }
        for rule in &self.positions {
            write!(f, ", a {} in positions {}-{}", rule.class.name(), rule.from, rule.to)?;
        }
        Ok(())
    }
}

/// A distinct position (0-based) for every rule inside its range, or `None` when no such assignment exists.
/// Kuhn's augmenting paths; `order` permutes each rule's candidates, so that generation picks among all matchings.
fn match_positions(
    rules: &[PositionRule],
    length: usize,
    mut order: impl FnMut(&mut [usize]) -> Result<(), PolicyError>,
) -> Result<Option<Vec<usize>>, PolicyError> {
    let mut candidates = Vec::with_capacity(rules.len());
    for rule in rules {
        let mut range: Vec<usize> = (rule.from.saturating_sub(1)..rule.to.min(length)).collect();
        order(&mut range)?;
        candidates.push(range);
    }
    fn augment(
        rule: usize,
        candidates: &[Vec<usize>],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for &at in &candidates[rule] {
            if seen[at] {
                continue;
            }
            seen[at] = true;
            if owner[at].is_none_or(|other| augment(other, candidates, owner, seen)) {
                owner[at] = Some(rule);
                return true;
            }
        }
        false
    }
    let mut owner: Vec<Option<usize>> = vec![None; length];
    for rule in 0..rules.len() {
        if !augment(rule, &candidates, &mut owner, &mut vec![false; length]) {
            return Ok(None);
        }
    }
    let mut assignment = vec![0; rules.len()];
    for (at, rule) in owner.iter().enumerate() {
        if let Some(rule) = rule {
            assignment[*rule] = at;
        }
    }
    Ok(Some(assignment))
}

/// Uniform draws from the OS CSPRNG, by rejection so that no index is favoured.
struct OsRandom;

impl OsRandom {
    fn below(&mut self, n: usize) -> Result<usize, PolicyError> {
        debug_assert!(n > 0);
        let n = n as u64;
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let mut buf = [0u8; 8];
            getrandom::fill(&mut buf).map_err(|e| PolicyError::Random(e.to_string()))?;
            let x = u64::from_le_bytes(buf);
            if x < zone {
                return Ok((x % n) as usize);
            }
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Result<Option<&'a T>, PolicyError> {
        if items.is_empty() {
            return Ok(None);
        }
        Ok(items.get(self.below(items.len())?))
    }

    fn shuffle<T>(&mut self, items: &mut [T]) -> Result<(), PolicyError> {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1)?;
            items.swap(i, j);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn autotask_like(length: usize) -> SecretPolicy {
        SecretPolicy {
            length,
            min_length: 7,
            max_length: 64,
            forbidden: [' ', '\''].into_iter().collect(),
            min_groups: 2,
            positions: vec![PositionRule { class: CharClass::Special, from: 2, to: 6 }],
            ..SecretPolicy::default()
        }
    }

    #[test]
    fn strength_is_the_sum_of_what_each_position_is_drawn_from() {
        // 32 of the 94 printable characters: 32 × log2(94) = 209.7.
        assert_eq!(SecretPolicy::default().strength_bits(), 209);
        let digits =
            SecretPolicy { length: 12, alphabet: Some(('0'..='9').collect()), ..SecretPolicy::default() };
        assert_eq!(digits.strength_bits(), 39, "12 × log2(10) = 39.9");
        // A special character in positions 2-6 (31 of the 93 allowed), two groups (the smallest two: 10 digits
        // and 26 letters), 17 more from all 93: 4.95 + 3.32 + 4.70 + 17 × 6.54 = 124.2.
        assert_eq!(autotask_like(20).strength_bits(), 124);
        let impossible = SecretPolicy { length: 3, min_groups: 3, alphabet: Some(['a'].into()), ..digits };
        assert_eq!(impossible.strength_bits(), 0, "a policy that cannot be met guarantees nothing");
    }

    /// The bound is never above what generation really draws: a tiny policy, sampled until every string it can
    /// make has likely appeared, makes at least 2^bits different strings.
    #[test]
    fn strength_never_claims_more_than_generation_gives() {
        let tiny = SecretPolicy {
            length: 3,
            alphabet: Some(['a', 'b', '1'].into()),
            require: [CharClass::Digit].into(),
            ..SecretPolicy::default()
        };
        let bits = tiny.strength_bits();
        assert_eq!(bits, 3, "log2(1) + 2 × log2(3) = 3.2");
        let seen: std::collections::BTreeSet<String> =
            (0..3000).map(|_| tiny.generate().expect("generate").expose().to_owned()).collect();
        assert!(seen.len() >= 1 << bits, "{} strings seen, {bits} bits claimed", seen.len());
    }

    fn class_strategy() -> impl Strategy<Value = CharClass> {
        prop_oneof![
            Just(CharClass::Upper),
            Just(CharClass::Lower),
            Just(CharClass::Digit),
            Just(CharClass::Special)
        ]
    }

    prop_compose! {
        fn policy_strategy()(
            length in 8usize..80,
            forbidden in proptest::collection::btree_set(proptest::char::range('!', '~'), 0..20),
            require in proptest::collection::btree_set(class_strategy(), 0..4),
            min_groups in 0usize..=3,
            rules in proptest::collection::vec((class_strategy(), 1usize..8, 0usize..6), 0..3),
        ) -> SecretPolicy {
            SecretPolicy {
                length,
                min_length: 1,
                max_length: 128,
                forbidden,
                require,
                min_groups,
                positions: rules.into_iter().map(|(class, from, span)| PositionRule { class, from, to: from + span }).collect(),
                ..SecretPolicy::default()
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn every_generated_secret_meets_its_policy(policy in policy_strategy()) {
            match policy.validate() {
                Ok(()) => {
                    let secret = policy.generate().map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(policy.check(&secret).is_ok());
                    prop_assert_eq!(secret.expose().chars().count(), policy.length);
                    for c in secret.expose().chars() {
                        prop_assert!(!policy.forbidden.contains(&c));
                    }
                }
                Err(_) => prop_assert!(policy.generate().is_err()),
            }
        }

        #[test]
        fn autotask_rules_hold_for_every_length(length in 7usize..=64) {
            let policy = autotask_like(length);
            let secret = policy.generate().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let chars: Vec<char> = secret.expose().chars().collect();
            prop_assert!(chars[1..6.min(chars.len())].iter().any(|&c| CharClass::of(c) == CharClass::Special));
            prop_assert!(!chars.contains(&' ') && !chars.contains(&'\''));
        }
    }

    #[test]
    fn two_secrets_differ() {
        let policy = autotask_like(32);
        let a = policy.generate().expect("generates");
        let b = policy.generate().expect("generates");
        assert_ne!(a, b);
    }

    #[test]
    fn intersect_takes_the_strictest_rules() {
        let global = SecretPolicy { min_length: 24, forbidden: ['"'].into(), ..SecretPolicy::default() };
        let target = autotask_like(20);
        let both = global.intersect(&target);
        assert_eq!(both.min_length, 24);
        assert_eq!(both.max_length, 64);
        assert!(both.forbidden.contains(&'"') && both.forbidden.contains(&'\''));
        assert_eq!(both.length, 32, "the larger wish wins");
        assert!(both.validate().is_ok());
    }

    #[test]
    fn an_impossible_policy_names_the_rule() {
        let policy = SecretPolicy {
            alphabet: Some(('a'..='z').collect()),
            require: [CharClass::Digit].into(),
            ..SecretPolicy::default()
        };
        let err = policy.validate().expect_err("no digit is allowed");
        assert!(err.to_string().contains("digit"), "{err}");
    }

    #[test]
    fn check_reports_the_rule_not_the_secret() {
        let policy = autotask_like(10);
        let err = policy.check(&SecretValue::new("abcdefghiJ")).expect_err("no special");
        let text = err.to_string();
        assert!(text.contains("positions 2-6"), "{text}");
        assert!(!text.contains("abcdefghiJ"));
    }
}
