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

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

pub trait Store: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>>;
    /// Sets a value that disappears after `ttl`.
    fn set<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, ()>;
    /// Sets only if absent; true if this call set it. The basis of "use once" checks.
    fn set_nx<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, bool>;
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
    fn publish<'a>(&'a self, channel: &'a str, message: &'a str) -> StoreFuture<'a, ()>;
    /// Messages published on `channel` after the returned future resolves.
    fn subscribe<'a>(&'a self, channel: &'a str) -> StoreFuture<'a, BoxStream<'static, String>>;
    fn ping(&self) -> StoreFuture<'_, ()>;
    /// "memory" or "redis", for /readyz and the start-up log.
    fn kind(&self) -> &'static str;
}
