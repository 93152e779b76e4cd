//! Password strength policy for new passwords.
//!
//! Guarantees: a password is refused when zxcvbn (which also knows the account's own
//! words, passed as context) rates it below 3 on its 0..=4 scale or estimates fewer
//! than 10^9 guesses to find it, or when, case-folded, it contains any context word of
//! three or more characters (username, e-mail local part and address, workspace name
//! or slug); the refusal is `AppError::BadInput` on the caller's field with advice in
//! plain words and never echoes the password or the matched context word.
//! Assumes: length (12..=256 code points) is checked elsewhere, before this runs; the
//! caller passes every identifying string it has (empty or short ones are ignored).
//! zxcvbn looks only at the first 100 characters, which bounds its cost.

use crate::error::{AppError, AppResult};

/// zxcvbn scores below this are refused.
const MIN_SCORE: u8 = 3;
/// Score 3 covers 10^8..10^10 estimated guesses, and its bottom edge is exactly where
/// word + year + symbols patterns land ("Summer2024!!" is 10^8.01, score 3), which are
/// the first candidates of every cracking run. So within score 3 we also require
/// 10^9 guesses: roughly days of GPU time against our Argon2id parameters.
const MIN_GUESSES_LOG10: f64 = 9.0;
/// Context words shorter than this (in characters) are too common to forbid.
const MIN_CONTEXT_CHARS: usize = 3;

fn fold(s: &str) -> String {
    caseless::default_case_fold_str(s.trim())
}

/// Refuses weak passwords; see the module documentation for the rules.
pub fn check_strength(field: &str, password: &str, context: &[&str]) -> AppResult<()> {
    let folded_password = fold(password);
    let words: Vec<String> = context.iter().map(|w| fold(w)).filter(|w| w.chars().count() >= MIN_CONTEXT_CHARS).collect();
    if words.iter().any(|w| folded_password.contains(w.as_str())) {
        return Err(AppError::bad_input(
            field,
            "the password must not contain your username, e-mail address or workspace name; choose something unrelated to the account",
        ));
    }

    // zxcvbn also gets the pieces of multi-word context ("Acme Corp" -> "acme",
    // "corp"; "owner@demo.example" -> "owner", "demo", "example") so that partial
    // reuse lowers the score even where it is not refused outright.
    let mut inputs: Vec<&str> = words.iter().map(String::as_str).collect();
    for w in &words {
        inputs.extend(w.split(|c: char| !c.is_alphanumeric()).filter(|p| p.chars().count() >= MIN_CONTEXT_CHARS));
    }
    let entropy = zxcvbn::zxcvbn(password, &inputs);
    if u8::from(entropy.score()) >= MIN_SCORE && entropy.guesses_log10() >= MIN_GUESSES_LOG10 {
        return Ok(());
    }

    // zxcvbn's feedback is fixed text about the kind of pattern found (never a piece
    // of the password); it gives none for score 3, hence the generic advice.
    let mut message = String::from("the password is too easy to guess.");
    let feedback = entropy.feedback();
    if let Some(warning) = feedback.and_then(zxcvbn::feedback::Feedback::warning) {
        message.push(' ');
        message.push_str(&warning.to_string());
    }
    let suggestions = feedback.map(zxcvbn::feedback::Feedback::suggestions).unwrap_or_default();
    if suggestions.is_empty() {
        message
            .push_str(" Add another word or two; uncommon words are better. Avoid predictable patterns such as a word followed by a year.");
    }
    for suggestion in suggestions {
        message.push(' ');
        message.push_str(&suggestion.to_string());
    }
    Err(AppError::bad_input(field, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: &[&str] = &["owner", "owner@demo.example", "demo", "Demo", "acme-sales", "Acme Sales"];

    fn message(r: AppResult<()>) -> String {
        match r {
            Err(AppError::BadInput { field, message }) => {
                assert_eq!(field, "password");
                message
            }
            other => panic!("expected BadInput, got {other:?}"),
        }
    }

    #[test]
    fn strong_passphrase_accepted() {
        check_strength("password", "correct horse battery staple", CTX).unwrap();
        check_strength("password", "a-much-better-passphrase-42", CTX).unwrap();
        check_strength("password", "tulip Gravel 71 ostrich umbra", &[]).unwrap();
        for pw in ["Tr0ub4dor&3x", "MyDogRex2019!", "k8#Lp2qZ!v9m"] {
            check_strength("password", pw, CTX).unwrap();
        }
    }

    #[test]
    fn weak_passwords_refused_without_echo() {
        for pw in ["password1234", "Summer2024!!", "Winter2025!!", "qwertyuiop123", "aaaaaaaaaaaa", "MinnesotaVikings1", "P@ssw0rd2024!"] {
            let m = message(check_strength("password", pw, &[]));
            assert!(m.starts_with("the password is too easy to guess. "), "{m}");
            assert!(m.contains("Add another word"), "{m}");
            assert!(!m.to_lowercase().contains(&pw.to_lowercase()), "{m}");
        }
    }

    #[test]
    fn context_words_refused() {
        for pw in [
            "tulip gravel OWNER ostrich umbra",  // username, any case
            "tulip gravel demo ostrich umbra",   // workspace / e-mail domain word
            "tulipAcme Salesgravel ostrich 71",  // workspace name with its space
            "x owner@demo.example tulip gravel", // full e-mail
        ] {
            let m = message(check_strength("password", pw, CTX));
            assert!(m.contains("must not contain"), "{m}");
            assert!(!m.contains(pw) && !m.contains("owner@") && !m.contains("Acme"), "{m}");
        }
    }

    #[test]
    fn short_and_empty_context_ignored() {
        check_strength("password", "tulip gravel ab ostrich umbra", &["", "  ", "ab", "é"]).unwrap();
    }

    #[test]
    fn case_folding_is_unicode_aware() {
        // "STRASSE" folds to "strasse", as does "Straße".
        let m = message(check_strength("password", "tulip STRASSE gravel ostrich 71", &["Straße"]));
        assert!(m.contains("must not contain"), "{m}");
    }

    #[test]
    fn reported_scores() {
        let s = |pw: &str, ctx: &[&str]| u8::from(zxcvbn::zxcvbn(pw, ctx).score());
        eprintln!(
            "demo-password-for-tests (ctx) = {}, a-much-better-passphrase-42 = {}, correct horse battery staple = {}",
            s("demo-password-for-tests", &["owner", "owner@demo.example", "demo", "Demo"]),
            s("a-much-better-passphrase-42", &[]),
            s("correct horse battery staple", &[]),
        );
        // Refused by the context rule regardless of its score.
        let m = message(check_strength("password", "demo-password-for-tests", &["owner", "owner@demo.example", "demo", "Demo"]));
        assert!(m.contains("must not contain"), "{m}");
    }
}
