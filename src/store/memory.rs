//! In-process store for the embedded default. Expiry follows the injected clock, so
//! tests that move time see entries expire exactly as they would in Redis. Rate limits
//! use governor's keyed GCRA limiters (one per distinct quota), driven by the same
//! injected clock.

use super::{Quota, Store, StoreError, StoreFuture};
use crate::clock::SharedClock;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// The injected clock as governor sees it: nanoseconds since the Unix epoch. A time
/// before 1970 reads as 0 and one past 2262 (beyond i64 nanoseconds) as i64::MAX, so the
/// reading always leaves room for a bounded quota's arithmetic (`Quota::clamped`). A clock
/// moved backwards is fine: governor subtracts saturating, so the bucket just looks
/// fuller until time catches up.
#[derive(Clone)]
struct InjectedClock(SharedClock);

impl governor::clock::Clock for InjectedClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let now = self.0.now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(if now.timestamp() < 0 { 0 } else { i64::MAX });
        Nanos::from(nanos.max(0).unsigned_abs())
    }
}

type Limiter = governor::RateLimiter<String, DefaultKeyedStateStore<String>, InjectedClock, NoOpMiddleware<Nanos>>;

/// Every this many rate-limit checks, keys whose buckets have refilled are dropped.
const RETAIN_EVERY: u64 = 4096;

enum Value {
    Str(String),
    Set(HashSet<String>),
}

struct Entry {
    value: Value,
    expires_at: DateTime<Utc>,
}

pub struct MemoryStore {
    clock: SharedClock,
    data: Mutex<HashMap<String, Entry>>,
    channels: Mutex<HashMap<String, broadcast::Sender<String>>>,
    writes: AtomicU64,
    limiters: Mutex<HashMap<Quota, Arc<Limiter>>>,
    limits_checked: AtomicU64,
}

impl MemoryStore {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            data: Mutex::new(HashMap::new()),
            channels: Mutex::new(HashMap::new()),
            writes: Default::default(),
            limiters: Mutex::new(HashMap::new()),
            limits_checked: Default::default(),
        }
    }

    /// The limiter for `quota` (already clamped), created on first use. Every
    /// RETAIN_EVERY-th rate-limit check (`sweep`) first drops, from every limiter, the
    /// keys whose buckets are full again.
    fn limiter(&self, quota: Quota, sweep: bool) -> Result<Arc<Limiter>, StoreError> {
        let mut limiters = self.limiters.lock().map_err(|_| StoreError("memory store poisoned".into()))?;
        if sweep && self.limits_checked.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            for limiter in limiters.values() {
                limiter.retain_recent();
            }
        }
        let limiter = limiters.entry(quota).or_insert_with(|| {
            let burst = NonZeroU32::new(quota.burst).unwrap_or(NonZeroU32::MIN);
            // `clamped` makes the interval at least 1 ms, so `with_period` cannot fail; the
            // fallback is never taken.
            let gq = governor::Quota::with_period(quota.interval)
                .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MIN))
                .allow_burst(burst);
            Arc::new(governor::RateLimiter::new(gq, DefaultKeyedStateStore::default(), InjectedClock(self.clock.clone())))
        });
        Ok(limiter.clone())
    }

    fn deadline(&self, ttl: Duration) -> DateTime<Utc> {
        self.clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
    }

    /// Runs `f` on the live map (expired entries removed first), sweeping the whole map
    /// now and then so that never-read keys do not accumulate.
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut HashMap<String, Entry>, DateTime<Utc>) -> T) -> Result<T, StoreError> {
        let now = self.clock.now();
        let mut data = self.data.lock().map_err(|_| StoreError("memory store poisoned".into()))?;
        if data.get(key).is_some_and(|e| e.expires_at <= now) {
            data.remove(key);
        }
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        if n % 4096 == 4095 {
            data.retain(|_, e| e.expires_at > now);
        }
        Ok(f(&mut data, now))
    }
}

fn wrong_type() -> StoreError {
    StoreError("wrong type for key".into())
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            self.with(key, |d, _| match d.get(key) {
                None => Ok(None),
                Some(Entry { value: Value::Str(s), .. }) => Ok(Some(s.clone())),
                Some(_) => Err(wrong_type()),
            })?
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let expires_at = self.deadline(ttl);
            self.with(key, |d, _| {
                d.insert(key.to_owned(), Entry { value: Value::Str(value.to_owned()), expires_at });
            })
        })
    }

    fn set_nx<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let expires_at = self.deadline(ttl);
            self.with(key, |d, _| {
                if d.contains_key(key) {
                    return false;
                }
                d.insert(key.to_owned(), Entry { value: Value::Str(value.to_owned()), expires_at });
                true
            })
        })
    }

    fn set_xx<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let expires_at = self.deadline(ttl);
            self.with(key, |d, _| match d.get_mut(key) {
                Some(e @ Entry { value: Value::Str(_), .. }) => {
                    *e = Entry { value: Value::Str(value.to_owned()), expires_at };
                    Ok(true)
                }
                Some(_) => Err(wrong_type()),
                None => Ok(false),
            })?
        })
    }

    fn ttl<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Duration>> {
        Box::pin(async move { self.with(key, |d, now| d.get(key).map(|e| (e.expires_at - now).to_std().unwrap_or_default())) })
    }

    fn del<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.with(key, |d, _| d.remove(key).is_some()) })
    }

    fn incr<'a>(&'a self, key: &'a str, by: i64, ttl: Duration) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let expires_at = self.deadline(ttl);
            self.with(key, |d, _| {
                let entry = d.entry(key.to_owned()).or_insert_with(|| Entry { value: Value::Str("0".into()), expires_at });
                let Value::Str(s) = &mut entry.value else { return Err(wrong_type()) };
                let n = s.parse::<i64>().map_err(|_| wrong_type())?.saturating_add(by);
                *s = n.to_string();
                Ok(n)
            })?
        })
    }

    fn sadd<'a>(&'a self, key: &'a str, member: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let expires_at = self.deadline(ttl);
            self.with(key, |d, _| {
                let entry = d.entry(key.to_owned()).or_insert_with(|| Entry { value: Value::Set(HashSet::new()), expires_at });
                let Value::Set(set) = &mut entry.value else { return Err(wrong_type()) };
                set.insert(member.to_owned());
                entry.expires_at = expires_at;
                Ok(())
            })?
        })
    }

    fn srem<'a>(&'a self, key: &'a str, member: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.with(key, |d, _| {
                let now_empty = match d.get_mut(key) {
                    None => return Ok(()),
                    Some(Entry { value: Value::Set(set), .. }) => {
                        set.remove(member);
                        set.is_empty()
                    }
                    Some(_) => return Err(wrong_type()),
                };
                if now_empty {
                    d.remove(key);
                }
                Ok(())
            })?
        })
    }

    fn smembers<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            self.with(key, |d, _| match d.get(key) {
                None => Ok(Vec::new()),
                Some(Entry { value: Value::Set(set), .. }) => Ok(set.iter().cloned().collect()),
                Some(_) => Err(wrong_type()),
            })?
        })
    }

    fn gcra<'a>(&'a self, key: &'a str, quota: Quota, _now: DateTime<Utc>) -> StoreFuture<'a, Option<Duration>> {
        // `now` is not used: governor reads the time itself, from this store's clock, which
        // is the application's injected clock, the very one callers take `now` from.
        Box::pin(async move {
            let limiter = self.limiter(quota.clamped(), true)?;
            match limiter.check_key(&key.to_owned()) {
                Ok(()) => Ok(None),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
                    // Zero only if the clock moved on between the check and this reading.
                    Ok(Some(wait.max(Duration::from_millis(1))))
                }
            }
        })
    }

    fn get_metered<'a>(
        &'a self,
        keys: &'a [String],
        bucket: &'a str,
        quota: Quota,
        now: DateTime<Utc>,
    ) -> StoreFuture<'a, (Vec<Option<String>>, Option<Duration>)> {
        // In memory there is no round trip to save: the same two steps, in order.
        Box::pin(async move {
            let wait = self.gcra(bucket, quota, now).await?;
            let mut values = Vec::with_capacity(keys.len());
            for k in keys {
                values.push(self.get(k).await?);
            }
            Ok((values, wait))
        })
    }

    fn publish<'a>(&'a self, channel: &'a str, message: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let channels = self.channels.lock().map_err(|_| StoreError("memory store poisoned".into()))?;
            if let Some(tx) = channels.get(channel) {
                // No receivers is not an error: nobody is listening right now.
                let _ = tx.send(message.to_owned());
            }
            Ok(())
        })
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> StoreFuture<'a, BoxStream<'static, String>> {
        Box::pin(async move {
            let mut channels = self.channels.lock().map_err(|_| StoreError("memory store poisoned".into()))?;
            channels.retain(|_, tx| tx.receiver_count() > 0);
            let rx = channels.entry(channel.to_owned()).or_insert_with(|| broadcast::channel(1024).0).subscribe();
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(msg) => return Some((msg, rx)),
                        // A slow subscriber skips what it missed; consumers that must
                        // not miss anything resume from their own cursor.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
            Ok(stream.boxed())
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[tokio::test]
    async fn idle_rate_limit_keys_are_dropped() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let store = MemoryStore::new(clock.clone());
        let q = Quota { burst: 1, interval: Duration::from_secs(1) };
        for i in 0..RETAIN_EVERY - 1 {
            assert_eq!(store.gcra(&format!("k{i}"), q, clock.now()).await.unwrap(), None);
        }
        let limiter = store.limiter(q.clamped(), false).unwrap();
        assert_eq!(limiter.len(), (RETAIN_EVERY - 1) as usize);
        clock.advance(chrono::Duration::seconds(3));
        // This call is the RETAIN_EVERY-th: it sweeps before counting itself.
        assert_eq!(store.gcra("fresh", q, clock.now()).await.unwrap(), None);
        assert_eq!(limiter.len(), 1);
    }

    #[tokio::test]
    async fn a_clock_set_back_before_the_epoch_does_not_panic() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let store = MemoryStore::new(clock.clone());
        let q = Quota { burst: 1, interval: Duration::from_secs(60) };
        assert_eq!(store.gcra("k", q, clock.now()).await.unwrap(), None);
        clock.set(DateTime::<Utc>::MIN_UTC);
        let wait = store.gcra("k", q, clock.now()).await.unwrap().unwrap();
        assert!(wait > Duration::ZERO);
        clock.set(DateTime::<Utc>::MAX_UTC);
        assert_eq!(store.gcra("k", q, clock.now()).await.unwrap(), None);
        assert!(store.gcra("k", q, clock.now()).await.unwrap().is_some());
    }
}
