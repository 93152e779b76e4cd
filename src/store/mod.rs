//! Key-value with expiry, atomic counters, sets and pub/sub behind one trait.
//!
//! Two implementations: `RedisStore` (production, shared by every instance) and
//! `MemoryStore` (the embedded default, one instance only). Both pass the same
//! conformance suite (`tests/api/store.rs`). Callers must treat every error as "the
//! store is unreachable" and fail closed: no session check ever passes on an error.

mod memory;
mod redis;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// A rate: up to `burst` requests at once, then one more every `interval` (GCRA, the
/// "leaky bucket as a meter"). Both stores apply the same bounds (see `clamped`), so a
/// quota means the same thing in memory and in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    pub burst: u32,
    pub interval: Duration,
}

impl Quota {
    /// The longest a full bucket may take to drain (`burst * interval`).
    const MAX_SPAN: Duration = Duration::from_secs(10 * 366 * 86_400);

    /// What the stores enforce: whole milliseconds (Redis counts in ms), burst 0 read as
    /// 1, a zero interval as 1 ms, and `burst * interval` at most ten years (the burst is
    /// lowered to fit), so no arithmetic on a stored time can overflow.
    pub(crate) fn clamped(self) -> Quota {
        let max_ms = Self::MAX_SPAN.as_millis() as u64;
        let interval_ms = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX).clamp(1, max_ms);
        let max_burst = u32::try_from(max_ms / interval_ms).unwrap_or(u32::MAX);
        Quota { burst: self.burst.clamp(1, max_burst.max(1)), interval: Duration::from_millis(interval_ms) }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

pub trait Store: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>>;
    /// Sets a value that disappears after `ttl`.
    fn set<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, ()>;
    /// Sets only if absent; true if this call set it. The basis of "use once" checks.
    fn set_nx<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, bool>;
    /// Sets only if present; true if this call set it. Refreshing a record that may have
    /// been deleted meanwhile (a session revoked by another request) must not bring it
    /// back.
    fn set_xx<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, bool>;
    /// Time left before `key` expires; None if it does not exist.
    fn ttl<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Duration>>;
    /// Deletes; true if something was there.
    fn del<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool>;
    /// Adds `by` atomically and returns the new value. The expiry is set when the
    /// counter is created and not extended by later increments (a fixed window).
    fn incr<'a>(&'a self, key: &'a str, by: i64, ttl: Duration) -> StoreFuture<'a, i64>;
    /// Adds a member and (re)sets the whole set's expiry to `ttl`.
    fn sadd<'a>(&'a self, key: &'a str, member: &'a str, ttl: Duration) -> StoreFuture<'a, ()>;
    fn srem<'a>(&'a self, key: &'a str, member: &'a str) -> StoreFuture<'a, ()>;
    fn smembers<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Vec<String>>;
    /// Rate limiting with GCRA on `key` at time `now` (the caller's injected clock; every
    /// instance agrees when their clocks agree): None when this request conforms to
    /// `quota` (it is counted), Some(retry_after) when it does not (nothing is counted;
    /// retry_after > 0 is how long until one request would conform). Atomic across
    /// instances sharing the store. A store may keep buckets apart from its other keys:
    /// touch a bucket only through this method, never with `get`, `set` or `del`.
    fn gcra<'a>(&'a self, key: &'a str, quota: Quota, now: DateTime<Utc>) -> StoreFuture<'a, Option<Duration>>;
    /// Reads `keys` and meters `bucket` exactly as `gcra` does, in one round trip: what a
    /// signed-in request needs from the store (its session, its workspace's principal
    /// epoch and its rate). Values come back in the order of `keys`.
    fn get_metered<'a>(
        &'a self,
        keys: &'a [String],
        bucket: &'a str,
        quota: Quota,
        now: DateTime<Utc>,
    ) -> StoreFuture<'a, (Vec<Option<String>>, Option<Duration>)>;
    fn publish<'a>(&'a self, channel: &'a str, message: &'a str) -> StoreFuture<'a, ()>;
    /// Messages published on `channel` after the returned future resolves.
    fn subscribe<'a>(&'a self, channel: &'a str) -> StoreFuture<'a, BoxStream<'static, String>>;
    fn ping(&self) -> StoreFuture<'_, ()>;
    /// "memory" or "redis", for /readyz and the start-up log.
    fn kind(&self) -> &'static str;
}

/// A store that counts the commands sent through it (for Redis each is one network
/// round trip): `palisade_store_calls` in /metrics, and the proof that a signed-in
/// request costs one.
pub struct Counted {
    inner: std::sync::Arc<dyn Store>,
    calls: prometheus_client::metrics::counter::Counter,
}

impl Counted {
    pub fn new(inner: std::sync::Arc<dyn Store>, calls: prometheus_client::metrics::counter::Counter) -> Self {
        Self { inner, calls }
    }

    fn count(&self) -> &dyn Store {
        self.calls.inc();
        self.inner.as_ref()
    }
}

impl Store for Counted {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
        self.count().get(key)
    }
    fn set<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        self.count().set(key, value, ttl)
    }
    fn set_nx<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        self.count().set_nx(key, value, ttl)
    }
    fn set_xx<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        self.count().set_xx(key, value, ttl)
    }
    fn ttl<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Duration>> {
        self.count().ttl(key)
    }
    fn del<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        self.count().del(key)
    }
    fn incr<'a>(&'a self, key: &'a str, by: i64, ttl: Duration) -> StoreFuture<'a, i64> {
        self.count().incr(key, by, ttl)
    }
    fn sadd<'a>(&'a self, key: &'a str, member: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        self.count().sadd(key, member, ttl)
    }
    fn srem<'a>(&'a self, key: &'a str, member: &'a str) -> StoreFuture<'a, ()> {
        self.count().srem(key, member)
    }
    fn smembers<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Vec<String>> {
        self.count().smembers(key)
    }
    fn gcra<'a>(&'a self, key: &'a str, quota: Quota, now: DateTime<Utc>) -> StoreFuture<'a, Option<Duration>> {
        self.count().gcra(key, quota, now)
    }
    fn get_metered<'a>(
        &'a self,
        keys: &'a [String],
        bucket: &'a str,
        quota: Quota,
        now: DateTime<Utc>,
    ) -> StoreFuture<'a, (Vec<Option<String>>, Option<Duration>)> {
        self.count().get_metered(keys, bucket, quota, now)
    }
    fn publish<'a>(&'a self, channel: &'a str, message: &'a str) -> StoreFuture<'a, ()> {
        self.count().publish(channel, message)
    }
    fn subscribe<'a>(&'a self, channel: &'a str) -> StoreFuture<'a, BoxStream<'static, String>> {
        self.count().subscribe(channel)
    }
    fn ping(&self) -> StoreFuture<'_, ()> {
        self.count().ping()
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
