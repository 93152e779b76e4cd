//! Rate limits on sign-in, two-factor, API and e-mail code traffic.
//!
//! Guarantees: every bucket is a GCRA quota (a burst, then one request per interval)
//! kept in the store, so all instances sharing a Redis share one budget per key and agree
//! on it as far as their clocks agree; a refusal counts nothing and tells the caller how
//! long to wait (whole seconds, at least 1). Store keys carry a truncated SHA-256 of the
//! limited value, never the raw login or IP address, so their length is bounded. A store
//! error refuses the request (`Unavailable`): the limiter fails closed, never open. The
//! per-account sign-in budget cannot be configured above 100 attempts per hour.

use crate::clock::SharedClock;
use crate::error::ConfigError;
use crate::error::{AppError, AppResult};
use crate::store::{Quota, Store};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Sign-in attempts from one client address.
    SignInIp,
    /// Sign-in attempts against one account, from anywhere.
    SignInAccount,
    /// Second-factor attempts within one pending sign-in.
    TwoFactorChallenge,
    /// Second-factor attempts against one account.
    TwoFactorAccount,
    /// API requests made with one session.
    ApiSession,
    /// API requests made with one API key.
    ApiKey,
    /// E-mailed codes sent to one address.
    EmailCode,
    /// Requests without a valid credential, from one client address.
    AnonymousIp,
}

impl Bucket {
    pub const ALL: [Bucket; 8] = [
        Bucket::SignInIp,
        Bucket::SignInAccount,
        Bucket::TwoFactorChallenge,
        Bucket::TwoFactorAccount,
        Bucket::ApiSession,
        Bucket::ApiKey,
        Bucket::EmailCode,
        Bucket::AnonymousIp,
    ];

    /// Used in store keys, metric labels and (upper-cased) environment variable names.
    pub fn name(self) -> &'static str {
        match self {
            Self::SignInIp => "signin_ip",
            Self::SignInAccount => "signin_account",
            Self::TwoFactorChallenge => "two_factor_challenge",
            Self::TwoFactorAccount => "two_factor_account",
            Self::ApiSession => "api_session",
            Self::ApiKey => "api_key",
            Self::EmailCode => "email_code",
            Self::AnonymousIp => "anonymous_ip",
        }
    }

    /// The variable that overrides this bucket's quota, e.g. `PALISADE_RATE_SIGNIN_ACCOUNT`.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::SignInIp => "PALISADE_RATE_SIGNIN_IP",
            Self::SignInAccount => "PALISADE_RATE_SIGNIN_ACCOUNT",
            Self::TwoFactorChallenge => "PALISADE_RATE_TWO_FACTOR_CHALLENGE",
            Self::TwoFactorAccount => "PALISADE_RATE_TWO_FACTOR_ACCOUNT",
            Self::ApiSession => "PALISADE_RATE_API_SESSION",
            Self::ApiKey => "PALISADE_RATE_API_KEY",
            Self::EmailCode => "PALISADE_RATE_EMAIL_CODE",
            Self::AnonymousIp => "PALISADE_RATE_ANONYMOUS_IP",
        }
    }
}

/// The most sign-in attempts one account may receive in any hour, whatever is configured.
pub const SIGNIN_ACCOUNT_MAX_PER_HOUR: u64 = 100;

/// Bounds on configured values, to catch typos (a burst of 10^9, an interval of a week).
const MAX_BURST: u32 = 1_000_000;
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    pub signin_ip: Quota,
    pub signin_account: Quota,
    pub two_factor_challenge: Quota,
    pub two_factor_account: Quota,
    pub api_session: Quota,
    pub api_key: Quota,
    pub email_code: Quota,
    pub anonymous_ip: Quota,
}

const fn quota(burst: u32, interval: Duration) -> Quota {
    Quota { burst, interval }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            signin_ip: quota(30, Duration::from_secs(2)),
            // At most 10 + 3600 / 40 = 10 + 90 = 100 attempts in any hour: the cap
            // (SIGNIN_ACCOUNT_MAX_PER_HOUR), checked by a unit test below.
            signin_account: quota(10, Duration::from_secs(40)),
            two_factor_challenge: quota(5, Duration::from_secs(60)),
            two_factor_account: quota(10, Duration::from_secs(60)),
            api_session: quota(300, Duration::from_millis(100)),
            api_key: quota(300, Duration::from_millis(100)),
            email_code: quota(3, Duration::from_secs(60)),
            // Sign-in pages, GraphiQL and introspection from one address: generous
            // for an office behind one NAT, but a flood from one host is slowed.
            anonymous_ip: quota(120, Duration::from_millis(100)),
        }
    }
}

/// The most requests a quota lets through in any one hour (a full burst, then one per
/// interval).
pub fn max_per_hour(q: Quota) -> u64 {
    let interval_ms = q.interval.as_millis().max(1);
    u64::from(q.burst.max(1)).saturating_add(u64::try_from(3_600_000 / interval_ms).unwrap_or(u64::MAX))
}

impl RateLimits {
    pub fn quota(&self, b: Bucket) -> Quota {
        *self.slot(b)
    }

    fn slot(&self, b: Bucket) -> &Quota {
        match b {
            Bucket::SignInIp => &self.signin_ip,
            Bucket::SignInAccount => &self.signin_account,
            Bucket::TwoFactorChallenge => &self.two_factor_challenge,
            Bucket::TwoFactorAccount => &self.two_factor_account,
            Bucket::ApiSession => &self.api_session,
            Bucket::ApiKey => &self.api_key,
            Bucket::EmailCode => &self.email_code,
            Bucket::AnonymousIp => &self.anonymous_ip,
        }
    }

    fn slot_mut(&mut self, b: Bucket) -> &mut Quota {
        match b {
            Bucket::SignInIp => &mut self.signin_ip,
            Bucket::SignInAccount => &mut self.signin_account,
            Bucket::TwoFactorChallenge => &mut self.two_factor_challenge,
            Bucket::TwoFactorAccount => &mut self.two_factor_account,
            Bucket::ApiSession => &mut self.api_session,
            Bucket::ApiKey => &mut self.api_key,
            Bucket::EmailCode => &mut self.email_code,
            Bucket::AnonymousIp => &mut self.anonymous_ip,
        }
    }

    /// The defaults, each overridable by `PALISADE_RATE_<BUCKET>` (see `Bucket::env_var`)
    /// as `<burst>/<interval>`, the interval a whole number with unit ms, s, m or h:
    /// `10/40s`, `300/100ms`. Empty values are ignored.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<RateLimits, ConfigError> {
        let mut limits = RateLimits::default();
        for b in Bucket::ALL {
            let variable = b.env_var();
            let Some(raw) = get(variable).filter(|v| !v.trim().is_empty()) else { continue };
            let q = parse_quota(raw.trim()).map_err(|message| ConfigError { variable, message })?;
            *limits.slot_mut(b) = q;
        }
        if max_per_hour(limits.signin_account) > SIGNIN_ACCOUNT_MAX_PER_HOUR {
            return Err(ConfigError {
                variable: Bucket::SignInAccount.env_var(),
                message: format!(
                    "allows {} sign-in attempts per account per hour (burst + 3600s / interval); the cap is {SIGNIN_ACCOUNT_MAX_PER_HOUR}",
                    max_per_hour(limits.signin_account)
                ),
            });
        }
        Ok(limits)
    }
}

fn parse_quota(raw: &str) -> Result<Quota, String> {
    const FORM: &str = "expected <burst>/<interval>, e.g. 10/40s or 300/100ms (units ms, s, m, h)";
    let (burst, interval) = raw.split_once('/').ok_or_else(|| FORM.to_owned())?;
    let burst: u32 = burst.trim().parse().map_err(|_| format!("burst is not a whole number; {FORM}"))?;
    if !(1..=MAX_BURST).contains(&burst) {
        return Err(format!("burst must be between 1 and {MAX_BURST}"));
    }
    let interval = interval.trim();
    let split = interval.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| format!("interval has no unit; {FORM}"))?;
    let (number, unit) = interval.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("interval is not a whole number; {FORM}"))?;
    let interval = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("unknown interval unit {unit:?}; {FORM}")),
    };
    if interval.is_zero() || interval > MAX_INTERVAL {
        return Err("interval must be between 1ms and 24h".into());
    }
    Ok(Quota { burst, interval })
}

/// The store key of `key` in `bucket`: the value itself never reaches the store, only
/// the first 128 bits of its SHA-256, in hex.
fn store_key(bucket: Bucket, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hashed: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("rl:{}:{}", bucket.name(), hashed)
}

/// Whole seconds, rounded up, at least 1: a client that waits that long will conform.
fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)).max(1)
}

pub struct RateLimiter {
    store: Arc<dyn Store>,
    clock: SharedClock,
    limits: RateLimits,
}

impl RateLimiter {
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, limits: RateLimits) -> Self {
        Self { store, clock, limits }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The bucket `check` would meter, for a store call that meters it along with its
    /// reads (`Store::get_metered`); `verdict` reads the answer.
    pub fn meter(&self, bucket: Bucket, key: &str) -> super::session::Meter {
        super::session::Meter { key: store_key(bucket, key), quota: self.limits.quota(bucket), now: self.clock.now() }
    }

    /// What `check` answers, from a metered store call's wait.
    pub fn verdict(wait: Option<std::time::Duration>) -> AppResult<()> {
        match wait {
            None => Ok(()),
            Some(wait) => Err(AppError::RateLimited { retry_after_secs: retry_after_secs(wait) }),
        }
    }

    /// Counts one request for `key` in `bucket`. `Err(RateLimited)` when over the quota
    /// (nothing counted), `Err(Unavailable)` when the store cannot answer.
    pub async fn check(&self, bucket: Bucket, key: &str) -> AppResult<()> {
        let refused = self.store.gcra(&store_key(bucket, key), self.limits.quota(bucket), self.clock.now()).await?;
        Self::verdict(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryStore;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_as_documented() {
        let d = RateLimits::default();
        assert_eq!(d.quota(Bucket::SignInIp), quota(30, Duration::from_secs(2)));
        assert_eq!(d.quota(Bucket::SignInAccount), quota(10, Duration::from_secs(40)));
        assert_eq!(d.quota(Bucket::TwoFactorChallenge), quota(5, Duration::from_secs(60)));
        assert_eq!(d.quota(Bucket::TwoFactorAccount), quota(10, Duration::from_secs(60)));
        assert_eq!(d.quota(Bucket::ApiSession), quota(300, Duration::from_millis(100)));
        assert_eq!(d.quota(Bucket::ApiKey), quota(300, Duration::from_millis(100)));
        assert_eq!(d.quota(Bucket::EmailCode), quota(3, Duration::from_secs(60)));
        assert_eq!(d.quota(Bucket::AnonymousIp), quota(120, Duration::from_millis(100)));
        assert_eq!(RateLimits::from_lookup(&lookup(&[])).unwrap(), d);
    }

    #[test]
    fn default_signin_account_budget_is_at_most_100_per_hour() {
        let q = RateLimits::default().signin_account;
        // burst + 3600 / interval = 10 + 3600 / 40 = 100.
        assert!(u64::from(q.burst) + 3600 / q.interval.as_secs() <= SIGNIN_ACCOUNT_MAX_PER_HOUR);
        assert_eq!(max_per_hour(q), 100);
    }

    #[test]
    fn signin_account_above_100_per_hour_is_refused() {
        for value in ["11/40s", "10/39s", "1/30s", "100/1h", "10/100ms"] {
            let e = RateLimits::from_lookup(&lookup(&[("PALISADE_RATE_SIGNIN_ACCOUNT", value)])).unwrap_err();
            assert_eq!(e.variable, "PALISADE_RATE_SIGNIN_ACCOUNT", "{value}");
            assert!(e.message.contains("100"), "{value}: {}", e.message);
        }
        for value in ["10/40s", "99/1h", "1/37s", "5/1m"] {
            RateLimits::from_lookup(&lookup(&[("PALISADE_RATE_SIGNIN_ACCOUNT", value)])).unwrap();
        }
        // Other buckets have no such cap.
        let l = RateLimits::from_lookup(&lookup(&[("PALISADE_RATE_SIGNIN_IP", "1000/1ms")])).unwrap();
        assert_eq!(l.signin_ip, quota(1000, Duration::from_millis(1)));
    }

    #[test]
    fn values_parse_with_every_unit() {
        let l = RateLimits::from_lookup(&lookup(&[
            ("PALISADE_RATE_SIGNIN_IP", "20/3s"),
            ("PALISADE_RATE_SIGNIN_ACCOUNT", " 5/2m "),
            ("PALISADE_RATE_TWO_FACTOR_CHALLENGE", "3/1h"),
            ("PALISADE_RATE_TWO_FACTOR_ACCOUNT", "4 / 90s"),
            ("PALISADE_RATE_API_SESSION", "300/100ms"),
            ("PALISADE_RATE_API_KEY", ""),
            ("PALISADE_RATE_EMAIL_CODE", "1/24h"),
        ]))
        .unwrap();
        assert_eq!(l.signin_ip, quota(20, Duration::from_secs(3)));
        assert_eq!(l.signin_account, quota(5, Duration::from_secs(120)));
        assert_eq!(l.two_factor_challenge, quota(3, Duration::from_secs(3600)));
        assert_eq!(l.two_factor_account, quota(4, Duration::from_secs(90)));
        assert_eq!(l.api_session, quota(300, Duration::from_millis(100)));
        assert_eq!(l.api_key, RateLimits::default().api_key, "an empty value keeps the default");
        assert_eq!(l.email_code, quota(1, Duration::from_secs(86_400)));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for value in [
            "10",
            "/40s",
            "10/",
            "x/40s",
            "-1/40s",
            "0/40s",
            "10/40",
            "10/s",
            "10/40d",
            "10/4.5s",
            "10/-4s",
            "10/0s",
            "10/0ms",
            "10/25h",
            "2000000/1s",
            "10/40s/3",
            "1e3/1s",
        ] {
            for b in Bucket::ALL {
                let e = RateLimits::from_lookup(&lookup(&[(b.env_var(), value)])).unwrap_err();
                assert_eq!(e.variable, b.env_var(), "{value}");
                assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn names_and_variables_are_distinct_and_consistent() {
        let names: std::collections::HashSet<_> = Bucket::ALL.iter().map(|b| b.name()).collect();
        assert_eq!(names.len(), Bucket::ALL.len());
        for b in Bucket::ALL {
            assert_eq!(b.env_var(), format!("PALISADE_RATE_{}", b.name().to_uppercase()));
            assert!(b.name().bytes().all(|c| c.is_ascii_lowercase() || c == b'_'), "{}", b.name());
        }
        assert_eq!(Bucket::SignInIp.name(), "signin_ip");
        assert_eq!(Bucket::SignInAccount.env_var(), "PALISADE_RATE_SIGNIN_ACCOUNT");
    }

    #[test]
    fn store_keys_hide_the_value_and_are_bounded() {
        let long = "alice@example.com".repeat(1000);
        let k = store_key(Bucket::SignInAccount, &long);
        assert!(k.starts_with("rl:signin_account:") && !k.contains("alice"));
        assert_eq!(k.len(), "rl:signin_account:".len() + 32);
        assert_ne!(store_key(Bucket::SignInIp, "203.0.113.9"), store_key(Bucket::SignInIp, "203.0.113.8"));
        assert_ne!(store_key(Bucket::SignInIp, "x"), store_key(Bucket::SignInAccount, "x"));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(40)), 40);
        assert_eq!(retry_after_secs(Duration::from_millis(40_001)), 41);
    }

    #[tokio::test]
    async fn check_refuses_over_quota_and_recovers() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let store = Arc::new(MemoryStore::new(clock.clone()));
        let limits = RateLimits { email_code: quota(2, Duration::from_millis(1500)), ..RateLimits::default() };
        let rl = RateLimiter::new(store, clock.clone(), limits.clone());
        assert_eq!(rl.limits(), &limits);
        rl.check(Bucket::EmailCode, "a@example.com").await.unwrap();
        rl.check(Bucket::EmailCode, "a@example.com").await.unwrap();
        assert_eq!(rl.check(Bucket::EmailCode, "a@example.com").await, Err(AppError::RateLimited { retry_after_secs: 2 }));
        rl.check(Bucket::EmailCode, "b@example.com").await.unwrap();
        rl.check(Bucket::SignInAccount, "a@example.com").await.unwrap();
        clock.advance(chrono::Duration::milliseconds(1500));
        rl.check(Bucket::EmailCode, "a@example.com").await.unwrap();
        assert!(rl.check(Bucket::EmailCode, "a@example.com").await.is_err());
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_closed() {
        let store = Arc::new(crate::store::RedisStore::connect("redis://127.0.0.1:1", "rl-test:").unwrap());
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let rl = RateLimiter::new(store, clock, RateLimits::default());
        assert_eq!(rl.check(Bucket::SignInIp, "203.0.113.9").await, Err(AppError::Unavailable));
    }
}
