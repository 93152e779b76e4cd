//! In-process store for the embedded default. Expiry follows the injected clock, so
//! tests that move time see entries expire exactly as they would in Redis.

use super::{Store, StoreError, StoreFuture};
use crate::clock::SharedClock;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast;

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
    writes: std::sync::atomic::AtomicU64,
}

impl MemoryStore {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, data: Mutex::new(HashMap::new()), channels: Mutex::new(HashMap::new()), writes: Default::default() }
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
        let n = self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
