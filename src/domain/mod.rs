//! Validated values, parsed once at the edge. A `Username`, `Email`, `Password` or
//! `Slug` that exists has passed its rules; code further in does not re-check.

mod money;
mod patch;

pub use money::{format_money, parse_money};
pub use patch::Patch;

use crate::error::AppError;
use crate::secret::Secret;
use unicode_normalization::UnicodeNormalization;

/// Normalises for comparison: NFKC, then full Unicode case folding, then NFKC again
/// (folding can denormalise). "ＯＷＮＥＲ", "Owner" and "owner" are one name.
pub fn fold_key(s: &str) -> String {
    let nfkc: String = s.nfkc().collect();
    let folded = caseless::default_case_fold_str(&nfkc);
    folded.nfkc().collect()
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    pub display: String,
    pub key: String,
}

impl Username {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let display = raw.trim().nfkc().collect::<String>();
        let len = display.chars().count();
        if !(2..=64).contains(&len) {
            return Err(AppError::bad_input(field, "must be 2 to 64 characters"));
        }
        if has_control(&display) || display.chars().any(char::is_whitespace) || display.contains('@') {
            return Err(AppError::bad_input(field, "must not contain spaces, control characters or '@'"));
        }
        Ok(Self { key: fold_key(&display), display })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub display: String,
    pub key: String,
}

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let display = raw.trim().to_owned();
        let bad = || AppError::bad_input(field, "must be an email address like name@example.com");
        if display.chars().count() > 254 || has_control(&display) || display.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let (local, domain) = display.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || local.contains('@')
        {
            return Err(bad());
        }
        Ok(Self { key: fold_key(&display), display })
    }
}

pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 256;

/// A new password that meets the policy: 12 to 256 Unicode code points, used exactly
/// as given (never trimmed or truncated), not all one repeated character.
#[derive(Debug, Clone)]
pub struct NewPassword(Secret<String>);

impl NewPassword {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let n = raw.chars().count();
        if n < PASSWORD_MIN_CHARS {
            return Err(AppError::bad_input(field, format!("must be at least {PASSWORD_MIN_CHARS} characters")));
        }
        if n > PASSWORD_MAX_CHARS {
            return Err(AppError::bad_input(field, format!("must be at most {PASSWORD_MAX_CHARS} characters")));
        }
        if raw.contains('\0') {
            return Err(AppError::bad_input(field, "must not contain NUL characters"));
        }
        let mut chars = raw.chars();
        let first = chars.next();
        if chars.all(|c| Some(c) == first) {
            return Err(AppError::bad_input(field, "is too easy to guess"));
        }
        Ok(Self(Secret::new(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(pub String);

impl Slug {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        let ok = (2..=40).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if !ok {
            return Err(AppError::bad_input(field, "must be 2 to 40 characters of a-z, 0-9 and '-'"));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A free-text name (workspace, department, display name): trimmed, 1..=max code
/// points, no control characters.
pub fn parse_name(field: &str, raw: &str, max: usize) -> Result<String, AppError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > max || has_control(s) {
        return Err(AppError::bad_input(field, format!("must be 1 to {max} characters without control characters")));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_compare_after_nfkc_and_case_folding() {
        let a = Username::parse("u", "Owner").unwrap();
        let b = Username::parse("u", "ＯＷＮＥＲ").unwrap();
        let c = Username::parse("u", "straße").unwrap();
        let d = Username::parse("u", "STRASSE").unwrap();
        assert_eq!(a.key, b.key);
        assert_eq!(c.key, d.key);
        assert!(Username::parse("u", "a b").is_err());
        assert!(Username::parse("u", "x").is_err());
    }

    #[test]
    fn passwords_count_code_points_and_are_never_truncated() {
        assert!(NewPassword::parse("p", "short").is_err());
        // 12 code points, 36 bytes: long enough.
        assert!(NewPassword::parse("p", "密码密码密码密码密码密码").is_ok());
        assert!(NewPassword::parse("p", &"ab".repeat(128)).is_ok());
        assert!(NewPassword::parse("p", &"ab".repeat(129)).is_err());
        assert!(NewPassword::parse("p", "aaaaaaaaaaaaaaaa").is_err());
        let p = NewPassword::parse("p", "  spaces kept  ").unwrap();
        assert_eq!(p.expose(), "  spaces kept  ");
    }

    #[test]
    fn emails_and_slugs() {
        assert!(Email::parse("e", "a@example.com").is_ok());
        assert!(Email::parse("e", "no-at.example.com").is_err());
        assert!(Email::parse("e", "a@b").is_err());
        assert!(Slug::parse("s", "demo").is_ok());
        assert!(Slug::parse("s", "Demo").is_err());
        assert!(Slug::parse("s", "-x").is_err());
    }
}

/// Where a workspace is in its lifecycle (master admins move it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum WorkspaceStatus {
    /// In normal use.
    Active,
    /// Nobody may sign in; every session and stream has ended. Data untouched.
    Suspended,
    /// Read-only: sign-in and reads work, every change is refused.
    Archived,
    /// Soft-deleted: hidden and unusable, restorable until the retention period ends.
    Deleted,
}

impl WorkspaceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Archived => "archived",
            Self::Deleted => "deleted",
        }
    }

    /// Unknown values read as the most closed state.
    pub fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "archived" => Self::Archived,
            "deleted" => Self::Deleted,
            _ => Self::Suspended,
        }
    }

    /// Whether its users may hold sessions (and its API keys work).
    pub fn allows_sign_in(self) -> bool {
        matches!(self, Self::Active | Self::Archived)
    }
}

/// A stated reason (impersonation, lifecycle actions, overrides): trimmed, at least
/// `min` characters, at most 500, no control characters other than line breaks.
pub fn parse_reason(field: &str, raw: &str, min: usize) -> Result<String, AppError> {
    let text = raw.trim();
    let len = text.chars().count();
    if len < min {
        return Err(AppError::bad_input(field, format!("give a reason of at least {min} characters")));
    }
    if len > 500 {
        return Err(AppError::bad_input(field, "must be at most 500 characters"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::bad_input(field, "must not contain control characters"));
    }
    Ok(text.to_owned())
}

/// What a secret or sensitive value is replaced by wherever it must not appear (audit
/// before/after values, logs).
pub const REDACTED: &str = "[redacted]";
