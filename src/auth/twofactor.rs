//! Second-factor building blocks: TOTP (RFC 6238), recovery codes, e-mailed codes, and
//! the `SecretBox` that keeps TOTP secrets encrypted at rest.
//!
//! Guarantees: every secret, nonce and code comes from the operating system's CSPRNG
//! (falling back to rand's OS-seeded ChaCha generator only if the OS source reports an
//! error); a TOTP code is accepted for the current 30-second step or the one before it,
//! never a future one, and only for a step strictly later than the last one used, so a
//! code cannot be replayed; every comparison of a presented code with an expected one
//! runs in constant time; sealed values are authenticated (XChaCha20-Poly1305, random
//! 192-bit nonce, optional associated data such as the owner's id), so a tampered,
//! truncated, moved or foreign-key value fails to open with `AppError::Internal`
//! instead of decrypting to garbage; nothing here panics on caller input.
//! Assumes: the caller supplies a trustworthy `now_unix` and persists the step returned
//! by `verify_totp` (atomically, before answering) as the new `last_used_step`; the
//! server key given to `SecretBox::new` and `hash_email_code` is long, random and kept
//! out of the database; recovery-code and e-mail-code hashes are single-use records
//! that the caller deletes or marks used on success, and the caller rate-limits
//! attempts (a 6-digit TOTP or 8-digit e-mail code is only as strong as that limit).

use crate::error::{AppError, AppResult};
use crate::secret::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq as _};

/// TOTP time step (seconds), as RFC 6238 recommends and authenticator apps assume.
const TOTP_STEP_SECS: u64 = 30;
const TOTP_DIGITS: u8 = 6;
/// 160 bits, the length RFC 4226 recommends for HMAC-SHA-1 secrets.
const TOTP_SECRET_LEN: usize = 20;

const SECRETBOX_KEY_LABEL: &[u8] = b"palisade/secretbox/v1/key\0";
const SEALED_PREFIX: &str = "v1.";
const XNONCE_LEN: usize = 24;
/// What `seal` returns if the AEAD refuses: `!` is not base64url, so `open` fails.
const UNSEALABLE: &str = "v1.!unsealable";

const RECOVERY_CODE_COUNT: usize = 10;
const RECOVERY_CODE_LEN: usize = 10;
/// Digits and lowercase letters without the look-alikes 0/o, 1/l and i. That leaves
/// 31 symbols (the set cannot reach 32 without readmitting one of them), so each code
/// carries 10 * log2(31) ≈ 49.5 bits.
const RECOVERY_ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";
const RECOVERY_HASH_LABEL: &[u8] = b"palisade/recovery-code/v1\0";

const EMAIL_CODE_DIGITS: usize = 8;
const EMAIL_CODE_SPACE: u32 = 100_000_000;
const EMAIL_HASH_LABEL: &[u8] = b"palisade/email-code/v1\0";

// ---------------------------------------------------------------------------------
// Randomness and small helpers
// ---------------------------------------------------------------------------------

/// Fills `buf` from the OS CSPRNG (getrandom). Should the OS source fail (it does not
/// on supported platforms), falls back to rand's thread-local ChaCha12 generator,
/// which is itself seeded from the OS, rather than failing or panicking here.
fn fill_random(buf: &mut [u8]) {
    use rand::TryRng as _;
    if rand::rngs::SysRng.try_fill_bytes(buf).is_err() {
        rand::Rng::fill_bytes(&mut rand::rng(), buf);
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    fill_random(&mut b);
    u32::from_le_bytes(b)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Feeds `data` to the hash preceded by its length, so that adjacent fields cannot
/// be shifted into one another.
fn update_framed(hasher: &mut Sha256, data: &[u8]) {
    hasher.update((data.len() as u64).to_be_bytes());
    hasher.update(data);
}

/// Constant-time string equality. The running time depends only on the lengths (a
/// length mismatch answers false at once), never on where the contents differ; use it
/// for values of public, fixed length such as hex digests and codes.
pub fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

// ---------------------------------------------------------------------------------
// SecretBox: authenticated encryption of secrets at rest
// ---------------------------------------------------------------------------------

/// Seals small secrets (TOTP seeds) for storage with XChaCha20-Poly1305. The key is
/// SHA-256 over a fixed domain label and the server key material, so the same
/// material used elsewhere yields an unrelated key here.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    pub fn new(key_material: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(SECRETBOX_KEY_LABEL);
        hasher.update(key_material);
        let key = hasher.finalize();
        Self { cipher: XChaCha20Poly1305::new(&key) }
    }

    /// `"v1." + base64url(nonce || ciphertext || tag)` with a fresh random 24-byte
    /// nonce. `aad` (e.g. the owning user's id) is authenticated, not stored: `open`
    /// must be given the same bytes.
    ///
    /// Infallible by signature: the AEAD refuses only plaintexts beyond its ~256 GiB
    /// limit, and in that case this returns `UNSEALABLE`, a value `open` always
    /// rejects, so the failure surfaces (closed) when the value is used. Call
    /// `try_seal` to get the error instead.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        self.try_seal(plaintext, aad).unwrap_or_else(|_| UNSEALABLE.to_owned())
    }

    /// `seal`, reporting an AEAD refusal as `AppError::Internal`.
    pub fn try_seal(&self, plaintext: &[u8], aad: &[u8]) -> AppResult<String> {
        let mut nonce = [0u8; XNONCE_LEN];
        fill_random(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad })
            .map_err(|_| AppError::internal("secretbox: encryption failed"))?;
        let mut raw = Vec::with_capacity(XNONCE_LEN + ciphertext.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    /// The plaintext of a value made by `seal` with the same key and `aad`. Any other
    /// input (unknown version, bad encoding, truncated, tampered, wrong key or aad) is
    /// `AppError::Internal`; the detail says which stage failed, never the content.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> AppResult<Vec<u8>> {
        let body = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(|| AppError::internal("secretbox: unknown format version"))?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| AppError::internal("secretbox: malformed encoding"))?;
        let (nonce, ciphertext) = raw.split_first_chunk::<XNONCE_LEN>().ok_or_else(|| AppError::internal("secretbox: value too short"))?;
        self.cipher
            .decrypt(&XNonce::from(*nonce), Payload { msg: ciphertext, aad })
            .map_err(|_| AppError::internal("secretbox: authentication failed (wrong key, context or tampered value)"))
    }
}

// ---------------------------------------------------------------------------------
// TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps)
// ---------------------------------------------------------------------------------

/// A fresh 160-bit TOTP secret from the OS CSPRNG.
pub fn new_totp_secret() -> Vec<u8> {
    let mut secret = vec![0u8; TOTP_SECRET_LEN];
    fill_random(&mut secret);
    secret
}

/// The secret in unpadded RFC 4648 base32, as authenticator apps expect for manual
/// entry (and as used in the `otpauth://` URI).
pub fn base32_secret(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret).to_base32()
}

/// Percent-encodes everything outside RFC 3986's unreserved set (so a space is `%20`,
/// never `+`, which some authenticator apps would show literally).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Makes a string safe as one half of an otpauth label: the label separator `:` and
/// control characters become spaces, whitespace runs collapse to one space, and the
/// ends are trimmed.
fn label_part(s: &str) -> String {
    s.chars().map(|c| if c == ':' || c.is_control() { ' ' } else { c }).collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `otpauth://totp/Issuer:account?secret=...&issuer=Issuer&algorithm=SHA1&digits=6&period=30`
/// (Key Uri Format), every part percent-encoded. Built here rather than with totp-rs,
/// whose `to_url` omits the default parameters and validates names on its own terms.
/// A `:` in the issuer or account (which would split the label) becomes a space; an
/// issuer that is empty after that is left out.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let issuer = percent_encode(&label_part(issuer));
    let account = percent_encode(&label_part(account));
    let secret = base32_secret(secret);
    let params = format!("algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}");
    if issuer.is_empty() {
        format!("otpauth://totp/{account}?secret={secret}&{params}")
    } else {
        format!("otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&{params}")
    }
}

/// `text` (normally an otpauth URI) as a QR code in SVG, wrapped as a
/// `data:image/svg+xml;base64,...` URI for an `<img src>`. Uses error-correction level
/// M, dropping to L for long text; text too long for any QR code (over ~2.9 kB) yields
/// a small SVG asking for manual entry of the key instead (`base32_secret`).
pub fn qr_svg_data_uri(text: &str) -> String {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .or_else(|_| qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L));
    let svg = match code {
        Ok(code) => code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(256, 256).quiet_zone(true).build(),
        Err(_) => QR_UNAVAILABLE_SVG.to_owned(),
    };
    format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg))
}

const QR_UNAVAILABLE_SVG: &str = concat!(
    r#"<?xml version="1.0" standalone="yes"?><svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="256" height="256" viewBox="0 0 256 256">"#,
    r##"<rect width="256" height="256" fill="#fff"/><text x="128" y="128" font-size="14" text-anchor="middle" fill="#000">"##,
    "QR code unavailable: enter the key manually</text></svg>"
);

/// The RFC 6238 code for the step containing `unix`, with `digits` digits (clamped to
/// the RFC's 6..=8, which also keeps totp-rs away from its internal overflow panic).
fn totp_code_with_digits(secret: &[u8], unix: u64, digits: u8) -> String {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(digits.clamp(6, 8))
        .with_step_duration(TOTP_STEP_SECS)
        .with_skew(0)
        .with_secret(secret)
        // `build()` would also insist on a >= 128-bit secret; our secrets are 160 bits
        // and the RFC test vectors are too, so the unchecked build is only about not
        // having an error path for a function that cannot fail.
        .build_noncompliant()
        .generate(unix)
        .to_string()
}

/// The 6-digit code for the step containing `unix` (for tests, benches and fixtures).
pub fn totp_code_at(secret: &[u8], unix: u64) -> String {
    totp_code_with_digits(secret, unix, TOTP_DIGITS)
}

/// Exactly six ASCII digits, after trimming surrounding whitespace and allowing one
/// inner space ("123 456").
fn parse_totp_code(code: &str) -> Option<[u8; 6]> {
    let mut digits = [0u8; 6];
    let mut n = 0usize;
    let mut spaces = 0usize;
    for b in code.trim().bytes() {
        if b.is_ascii_digit() {
            *digits.get_mut(n)? = b;
            n += 1;
        } else if b == b' ' && spaces == 0 {
            spaces += 1;
        } else {
            return None;
        }
    }
    (n == digits.len()).then_some(digits)
}

fn totp_step_matches(secret: &[u8], step: u64, presented: &[u8; 6]) -> Choice {
    let expected = totp_code_with_digits(secret, step.saturating_mul(TOTP_STEP_SECS), TOTP_DIGITS);
    expected.as_bytes().ct_eq(presented)
}

/// Checks a presented TOTP code. Accepts the current step or the previous one (clock
/// drift and typing time), never the next, and only a step strictly greater than
/// `last_used_step`. Returns the matched step, which the caller must store as the new
/// `last_used_step`. Both candidate steps are always computed and compared in
/// constant time.
pub fn verify_totp(secret: &[u8], code: &str, now_unix: u64, last_used_step: Option<u64>) -> Option<u64> {
    let presented = parse_totp_code(code)?;
    let current = now_unix / TOTP_STEP_SECS;
    let previous = current.checked_sub(1);
    let fresh = |step: u64| Choice::from(u8::from(last_used_step.is_none_or(|last| step > last)));

    let current_ok = totp_step_matches(secret, current, &presented) & fresh(current);
    let previous_ok = match previous {
        Some(step) => totp_step_matches(secret, step, &presented) & fresh(step),
        None => Choice::from(0),
    };
    if bool::from(current_ok) {
        Some(current)
    } else if bool::from(previous_ok) {
        previous
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------
// Recovery codes
// ---------------------------------------------------------------------------------

/// Ten fresh recovery codes, each ten symbols of `RECOVERY_ALPHABET` shown as
/// `xxxxx-xxxxx`. Symbols are drawn by rejection sampling, so each is uniform.
pub fn new_recovery_codes() -> Vec<Secret<String>> {
    // 248 = 8 * 31: bytes at or above it are redrawn so `b % 31` has no bias.
    const LIMIT: u8 = 248;
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let mut code = String::with_capacity(RECOVERY_CODE_LEN + 1);
            let mut produced = 0usize;
            let mut pool = [0u8; 32];
            while produced < RECOVERY_CODE_LEN {
                fill_random(&mut pool);
                for &b in pool.iter().filter(|&&b| b < LIMIT) {
                    if produced == RECOVERY_CODE_LEN {
                        break;
                    }
                    if produced == RECOVERY_CODE_LEN / 2 {
                        code.push('-');
                    }
                    code.push(char::from(RECOVERY_ALPHABET[usize::from(b % 31)]));
                    produced += 1;
                }
            }
            Secret::new(code)
        })
        .collect()
}

/// The canonical form of a typed recovery code: lowercase, without whitespace or
/// dashes. Hash this, not the raw input.
pub fn normalize_recovery_code(input: &str) -> String {
    input.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect()
}

/// Hex SHA-256 of a normalized recovery code under a domain label. A fast, unkeyed
/// hash is acceptable only because the codes are random (≈49.5 bits each) and
/// single-use: a guess costs an online, rate-limited attempt. It does not resist an
/// attacker holding a database dump and GPU time (and, unsalted, one search covers
/// every stored code), which is why a recovery code alone never signs anyone in: it
/// replaces the second factor, never the password.
pub fn hash_recovery_code(normalized: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(RECOVERY_HASH_LABEL);
    hasher.update(normalized.as_bytes());
    hex(&hasher.finalize())
}

// ---------------------------------------------------------------------------------
// E-mailed one-time codes
// ---------------------------------------------------------------------------------

/// A fresh 8-digit code, uniform over 00000000..=99999999 (rejection sampling: u32
/// values at or above 42 * 10^8 are redrawn, so `% 10^8` has no bias).
pub fn new_email_code() -> Secret<String> {
    const LIMIT: u32 = (u32::MAX / EMAIL_CODE_SPACE) * EMAIL_CODE_SPACE;
    loop {
        let x = random_u32();
        if x < LIMIT {
            return Secret::new(format!("{:0width$}", x % EMAIL_CODE_SPACE, width = EMAIL_CODE_DIGITS));
        }
    }
}

/// Keyed hash of an e-mail code, bound to its challenge: hex SHA-256 over a domain
/// label, the server key, the challenge id and the code's digits (each length-framed;
/// non-digits in `code` are ignored). Without the server key a stolen hash cannot be
/// brute-forced over the 10^8 possible codes.
pub fn hash_email_code(server_key: &[u8], challenge_id: &str, code: &str) -> String {
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    let mut hasher = Sha256::new();
    hasher.update(EMAIL_HASH_LABEL);
    update_framed(&mut hasher, server_key);
    update_framed(&mut hasher, challenge_id.as_bytes());
    update_framed(&mut hasher, digits.as_bytes());
    hex(&hasher.finalize())
}

/// Whether `presented` (spaces and dashes ignored; otherwise exactly 8 ASCII digits)
/// is the code behind `expected_hash` for this challenge. The hash comparison is
/// constant time.
pub fn email_code_matches(expected_hash: &str, server_key: &[u8], challenge_id: &str, presented: &str) -> bool {
    let cleaned: String = presented.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if cleaned.len() != EMAIL_CODE_DIGITS || !cleaned.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    ct_eq(expected_hash, &hash_email_code(server_key, challenge_id, &cleaned))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        let vectors: [(u64, &str); 6] = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, expected) in vectors {
            assert_eq!(totp_code_with_digits(RFC_SECRET, t, 8), expected, "T = {t}");
        }
        // The 6-digit code is the low six digits of the same truncated value.
        assert_eq!(totp_code_at(RFC_SECRET, 59), "287082");
        assert_eq!(totp_code_at(RFC_SECRET, 1_111_111_109), "081804");
    }

    #[test]
    fn current_and_previous_step_accepted() {
        let secret = new_totp_secret();
        let now = 1_700_000_015; // mid-step
        let step = now / 30;
        assert_eq!(verify_totp(&secret, &totp_code_at(&secret, now), now, None), Some(step));
        // The first and last second of the current step.
        assert_eq!(verify_totp(&secret, &totp_code_at(&secret, step * 30), step * 30 + 29, None), Some(step));
        assert_eq!(verify_totp(&secret, &totp_code_at(&secret, now - 30), now, None), Some(step - 1));
    }

    #[test]
    fn two_steps_back_and_next_step_refused() {
        let secret = new_totp_secret();
        let now = 1_700_000_015;
        let old = totp_code_at(&secret, now - 60);
        let next = totp_code_at(&secret, now + 30);
        // Guard against an (astronomically unlikely) code collision making the test flaky.
        if old != totp_code_at(&secret, now) && old != totp_code_at(&secret, now - 30) {
            assert_eq!(verify_totp(&secret, &old, now, None), None);
        }
        if next != totp_code_at(&secret, now) && next != totp_code_at(&secret, now - 30) {
            assert_eq!(verify_totp(&secret, &next, now, None), None);
        }
    }

    #[test]
    fn fixed_secret_window_edges() {
        // Deterministic variant with the RFC secret: steps 37037036..38 around T=1111111111.
        let now = 1_111_111_111;
        let step = now / 30;
        let code = |s: u64| totp_code_at(RFC_SECRET, s * 30);
        assert_eq!(verify_totp(RFC_SECRET, &code(step), now, None), Some(step));
        assert_eq!(verify_totp(RFC_SECRET, &code(step - 1), now, None), Some(step - 1));
        assert_eq!(verify_totp(RFC_SECRET, &code(step - 2), now, None), None);
        assert_eq!(verify_totp(RFC_SECRET, &code(step + 1), now, None), None);
    }

    #[test]
    fn replay_refused() {
        let secret = new_totp_secret();
        let now = 1_700_000_015;
        let step = now / 30;
        let current = totp_code_at(&secret, now);
        let previous = totp_code_at(&secret, now - 30);
        assert_eq!(verify_totp(&secret, &current, now, Some(step)), None, "same step twice");
        assert_eq!(verify_totp(&secret, &current, now + 10, Some(step)), None, "same step later in the window");
        if previous != current {
            assert_eq!(verify_totp(&secret, &previous, now, Some(step)), None, "earlier step after a later one");
            assert_eq!(verify_totp(&secret, &previous, now, Some(step - 1)), None, "previous step already used");
        }
        assert_eq!(verify_totp(&secret, &current, now, Some(step - 1)), Some(step), "later step still fine");
    }

    #[test]
    fn code_formats() {
        let now = 1_111_111_111;
        let code = totp_code_at(RFC_SECRET, now);
        let step = Some(now / 30);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify_totp(RFC_SECRET, &spaced, now, None), step);
        assert_eq!(verify_totp(RFC_SECRET, &format!("  {code}\n"), now, None), step);
        assert_eq!(verify_totp(RFC_SECRET, &format!(" {spaced}\t"), now, None), step);
        for bad in [
            String::new(),
            "      ".into(),
            code[..5].to_string(),
            format!("{code}0"),
            format!("0{code}"),
            format!("{} {}", &code[..2], &code[2..]).replacen(' ', "  ", 1),
            format!("{} {} {}", &code[..2], &code[2..4], &code[4..]),
            format!("{}-{}", &code[..3], &code[3..]),
            format!("+{}", &code[1..]),
            "abcdef".into(),
            "１２３４５６".into(),
            totp_code_with_digits(RFC_SECRET, now, 8),
        ] {
            assert_eq!(verify_totp(RFC_SECRET, &bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn very_early_time_has_no_previous_step() {
        let code = totp_code_at(RFC_SECRET, 0);
        assert_eq!(verify_totp(RFC_SECRET, &code, 5, None), Some(0));
        assert_eq!(verify_totp(RFC_SECRET, &code, 5, Some(0)), None);
    }

    #[test]
    fn totp_secret_is_160_random_bits() {
        let a = new_totp_secret();
        assert_eq!(a.len(), 20);
        assert_ne!(a, new_totp_secret());
        assert_eq!(base32_secret(&a).len(), 32);
        assert_eq!(base32_secret(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn otpauth_uri_is_encoded_and_parseable() {
        let uri = otpauth_uri(RFC_SECRET, "Palisade CRM", "owner@demo");
        assert_eq!(
            uri,
            "otpauth://totp/Palisade%20CRM:owner%40demo?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Palisade%20CRM&algorithm=SHA1&digits=6&period=30"
        );
        let parsed = totp_rs::Totp::from_url(&uri).unwrap();
        assert_eq!(parsed.issuer(), Some("Palisade CRM"));
        assert_eq!(parsed.account_name(), "owner@demo");
        assert_eq!(parsed.secret().as_bytes(), RFC_SECRET);
        assert_eq!((parsed.digits(), parsed.step()), (6, 30));
        assert_eq!(parsed.generate(59).to_string(), "287082");

        let odd = otpauth_uri(RFC_SECRET, "Acme: Sales & Co/?", "a:b c+d#é");
        let parsed = totp_rs::Totp::from_url(&odd).unwrap();
        assert_eq!(parsed.issuer(), Some("Acme Sales & Co/?"));
        assert_eq!(parsed.account_name(), "a b c+d#é");
        assert!(!odd.contains(' ') && !odd.contains('+') && !odd.contains('#'), "{odd}");

        let no_issuer = otpauth_uri(RFC_SECRET, " : ", "owner");
        assert!(no_issuer.starts_with("otpauth://totp/owner?secret=") && !no_issuer.contains("issuer="), "{no_issuer}");
    }

    #[test]
    fn qr_data_uri() {
        let svg_of = |uri: String| {
            let b64 = uri.strip_prefix("data:image/svg+xml;base64,").unwrap().to_owned();
            String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()
        };
        let svg = svg_of(qr_svg_data_uri(&otpauth_uri(RFC_SECRET, "Palisade", "owner@demo")));
        assert!(svg.contains("<svg") && svg.contains("</svg>") && svg.contains("<path"), "{svg}");
        // Too long for level M but fine at L.
        assert!(svg_of(qr_svg_data_uri(&"x".repeat(2_600))).contains("<path"));
        let fallback = svg_of(qr_svg_data_uri(&"x".repeat(10_000)));
        assert!(fallback.contains("enter the key manually") && !fallback.contains("xxxx"), "{fallback}");
    }

    #[test]
    fn secretbox_round_trip() {
        let sb = SecretBox::new(b"server key material, long and random");
        let sealed = sb.seal(b"totp seed", b"user-1");
        assert!(sealed.starts_with("v1."));
        assert_eq!(sb.open(&sb.try_seal(b"x", b"u").unwrap(), b"u").unwrap(), b"x");
        assert!(!sealed[3..].contains(['+', '/', '=']), "base64url without padding: {sealed}");
        assert_eq!(sb.open(&sealed, b"user-1").unwrap(), b"totp seed");
        assert_ne!(sb.seal(b"totp seed", b"user-1"), sealed, "fresh nonce each time");
        let empty = sb.seal(b"", b"");
        assert_eq!(sb.open(&empty, b"").unwrap(), b"");
        assert_eq!(format!("{sb:?}"), "SecretBox([redacted])");
    }

    #[test]
    fn secretbox_refuses_tampering_wrong_key_and_wrong_aad() {
        let sb = SecretBox::new(b"key one");
        let sealed = sb.seal(b"totp seed", b"user-1");
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        for i in [0, XNONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let tampered = format!("v1.{}", URL_SAFE_NO_PAD.encode(&raw));
            assert!(matches!(sb.open(&tampered, b"user-1"), Err(AppError::Internal(_))), "byte {i}");
            raw[i] ^= 1;
        }
        let truncated = format!("v1.{}", URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]));
        assert!(sb.open(&truncated, b"user-1").is_err());
        assert!(SecretBox::new(b"key two").open(&sealed, b"user-1").is_err(), "wrong key");
        assert!(sb.open(&sealed, b"user-2").is_err(), "wrong aad");
        assert!(sb.open(&sealed, b"").is_err(), "missing aad");
        for junk in ["", "v1.", "v1.AAAA", "v2.", UNSEALABLE, &sealed[3..], "v1.!!!!", &sealed.replacen("v1.", "v2.", 1)] {
            assert!(sb.open(junk, b"user-1").is_err(), "{junk:?}");
        }
    }

    #[test]
    fn recovery_codes_format_and_hash() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut seen = std::collections::HashSet::new();
        for c in &codes {
            let c = c.expose();
            assert_eq!(c.len(), 11, "{c}");
            assert_eq!(&c[5..6], "-");
            assert!(c.bytes().enumerate().all(|(i, b)| i == 5 || RECOVERY_ALPHABET.contains(&b)), "{c}");
            assert!(!c.contains(['0', 'o', '1', 'l', 'i']));
            assert!(seen.insert(c.clone()), "duplicate {c}");
        }
        assert_eq!(format!("{:?}", codes[0]), "[redacted]");
        assert_eq!(normalize_recovery_code(" ABCDE-fghjk "), "abcdefghjk");
        assert_eq!(normalize_recovery_code("abc de-fg hjk"), "abcdefghjk");
        let h = hash_recovery_code(&normalize_recovery_code(codes[0].expose()));
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(h, hash_recovery_code(&normalize_recovery_code(&codes[0].expose().to_uppercase().replace('-', " "))));
        assert_ne!(h, hash_recovery_code(&normalize_recovery_code(codes[1].expose())));
    }

    #[test]
    fn recovery_alphabet_is_roughly_uniform() {
        let mut counts = [0usize; 31];
        for _ in 0..60 {
            for c in new_recovery_codes() {
                for b in c.expose().bytes().filter(|&b| b != b'-') {
                    counts[RECOVERY_ALPHABET.iter().position(|&a| a == b).unwrap()] += 1;
                }
            }
        }
        // 6000 symbols, 31 classes: expect ~193.5 each; every symbol must show up.
        assert!(counts.iter().all(|&n| n > 100 && n < 300), "{counts:?}");
    }

    #[test]
    fn email_codes() {
        let key = b"server key";
        let code = new_email_code();
        let code = code.expose();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let h = hash_email_code(key, "challenge-1", code);
        assert_eq!(h.len(), 64);
        assert!(email_code_matches(&h, key, "challenge-1", code));
        let spaced = format!(" {}-{} ", &code[..4], &code[4..]);
        assert!(email_code_matches(&h, key, "challenge-1", &spaced));
        assert!(email_code_matches(&h, key, "challenge-1", &format!("{} {}", &code[..4], &code[4..])));
        assert!(!email_code_matches(&h, key, "challenge-2", code), "bound to the challenge");
        assert!(!email_code_matches(&h, b"other key", "challenge-1", code), "keyed");
        let other = format!("{:08}", (code.parse::<u32>().unwrap() + 1) % 100_000_000);
        assert!(!email_code_matches(&h, key, "challenge-1", &other));
        for bad in ["", &code[..7], &format!("{code}0"), &format!("{}x", &code[..7]), &format!("{code}x")] {
            assert!(!email_code_matches(&h, key, "challenge-1", bad), "{bad:?}");
        }
        // Framing: moving bytes between the challenge id and the key changes the hash.
        assert_ne!(hash_email_code(b"ab", "c", "12345678"), hash_email_code(b"a", "bc", "12345678"));
    }

    #[test]
    fn email_codes_cover_the_range() {
        let mut first_digits = [0usize; 10];
        for _ in 0..2000 {
            let c = new_email_code();
            first_digits[usize::from(c.expose().as_bytes()[0] - b'0')] += 1;
        }
        // Leading zeros must be kept and every leading digit must occur (~200 each).
        assert!(first_digits.iter().all(|&n| n > 100 && n < 320), "{first_digits:?}");
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq("abc", "abc"));
        assert!(ct_eq("", ""));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
