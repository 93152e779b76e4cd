//! Argon2id password hashing.
//!
//! Guarantees: hashes use Argon2id m=19456 KiB, t=2, p=1 with a fresh salt; hashing and
//! verification run on the blocking pool behind a semaphore, so a flood of sign-ins
//! queues instead of starving the async runtime; verifying against a missing account
//! costs the same as against a real one (a dummy hash made at start-up).

use crate::domain::NewPassword;
use crate::error::{AppError, AppResult};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
}

fn argon2() -> AppResult<Argon2<'static>> {
    let params = Params::new(19_456, 2, 1, None).map_err(AppError::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &[u8]) -> AppResult<String> {
    Ok(argon2()?.hash_password(password).map_err(AppError::internal)?.to_string())
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> AppResult<Self> {
        let mut seed = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
        Ok(Self { permits: Arc::new(Semaphore::new(concurrency.max(1))), dummy_hash: Arc::new(hash_blocking(&seed)?) })
    }

    pub async fn hash(&self, password: &NewPassword) -> AppResult<String> {
        let pw = password.expose().as_bytes().to_vec();
        self.run(move || hash_blocking(&pw)).await
    }

    /// True only if `hash` is present and matches. With `None` (no such account, or an
    /// account without a password) the dummy hash is verified instead and the answer
    /// is false, taking the same time.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> AppResult<bool> {
        let pw = password.as_bytes().to_vec();
        let real = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.as_str().to_owned(), str::to_owned);
        let matched = self
            .run(move || {
                let parsed = PasswordHash::new(&hash).map_err(AppError::internal)?;
                Ok(argon2()?.verify_password(&pw, &parsed).is_ok())
            })
            .await?;
        Ok(real && matched)
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> AppResult<T> + Send + 'static) -> AppResult<T> {
        let permit = self.permits.clone().acquire_owned().await.map_err(AppError::internal)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(AppError::internal)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_documented_parameters() {
        let h = PasswordHasher::new(2).unwrap();
        let pw = NewPassword::parse("p", "correct horse battery").unwrap();
        let hash = h.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(h.verify("correct horse battery", Some(&hash)).await.unwrap());
        assert!(!h.verify("correct horse batterY", Some(&hash)).await.unwrap());
        assert!(!h.verify("correct horse battery", None).await.unwrap());
    }
}
