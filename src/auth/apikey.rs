//! Partner API keys: the secret's format, hashing and verification.
//!
//! Guarantees: a key is `pk_<prefix>_<secret>`: the prefix is 12 random lowercase
//! letters and digits (public: it names the key in lists and logs), the secret 256 bits
//! from the OS CSPRNG. Only the SHA-256 of the whole key is stored, and it is compared
//! in constant time. A key authenticates only while it is neither revoked nor expired,
//! and only for a workspace that allows sign-in; what it may then do comes from its one
//! role (see `auth::authenticate`). Assumes the prefix is unique (a unique index).

use crate::secret::Secret;
use base64::Engine;
use subtle::ConstantTimeEq;

pub const KEY_PREFIX: &str = "pk_";
const PREFIX_LEN: usize = 12;
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A new key: (prefix, the whole key to show once, its hash to store).
pub fn generate() -> (String, Secret<String>, String) {
    let mut rng = rand::rng();
    let prefix: String = (0..PREFIX_LEN).map(|_| ALPHABET[rand::RngExt::random_range(&mut rng, 0..ALPHABET.len())] as char).collect();
    let mut bytes = [0u8; 32];
    rand::Rng::fill_bytes(&mut rng, &mut bytes);
    let key = format!("{KEY_PREFIX}{prefix}_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&key);
    (prefix, Secret::new(key), hash)
}

pub fn hash(key: &str) -> String {
    crate::auth::session::hash_token(key)
}

/// The prefix of a presented key, if it has the key's shape at all.
pub fn prefix_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == PREFIX_LEN && prefix.bytes().all(|b| ALPHABET.contains(&b)) && (40..=64).contains(&secret.len())).then_some(prefix)
}

pub fn is_key(token: &str) -> bool {
    token.starts_with(KEY_PREFIX)
}

/// Whether `key` is the key stored as `stored_hash`.
pub fn matches(key: &str, stored_hash: &str) -> bool {
    hash(key).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_their_shape_and_verify_only_themselves() {
        let (prefix, key, hash) = generate();
        assert_eq!(prefix_of(key.expose()), Some(prefix.as_str()));
        assert!(matches(key.expose(), &hash));
        let mut other = key.expose().clone();
        other.pop();
        other.push(if key.expose().ends_with('A') { 'B' } else { 'A' });
        assert!(!matches(&other, &hash));
        assert_eq!(prefix_of("pk_short_abc"), None);
        assert_eq!(prefix_of("pal_whatever"), None);
        let (p2, _, _) = generate();
        assert_ne!(prefix, p2);
    }
}
