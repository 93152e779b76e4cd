//! Redis store: shared by every instance of a deployment. All keys carry the configured
//! prefix so that several deployments (or test runs) can share one Redis. Commands go
//! through a `ConnectionManager` that reconnects by itself; every call has a timeout,
//! so an unreachable Redis turns into a prompt error (and a closed door), not a hang.

use super::{Quota, Store, StoreError, StoreFuture};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    incr_script: redis::Script,
    gcra_script: redis::Script,
    metered_script: redis::Script,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// Connects lazily: the server starts even while Redis is down, reports it on
    /// /readyz, and refuses what needs the store until it is back.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = client.get_connection_manager_lazy(config).map_err(err)?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
            // INCRBY and the first expiry must be one step, or a crash between them
            // leaves a counter that never expires.
            incr_script: redis::Script::new(
                "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) \
                 if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
                 return v",
            ),
            gcra_script: redis::Script::new(&format!("{GCRA_FN}return meter()")),
            metered_script: redis::Script::new(&format!("{GCRA_FN}{GET_METERED_TAIL}")),
        })
    }

    fn key(&self, k: &str) -> String {
        format!("{}{}", self.prefix, k)
    }
}

/// GCRA in one atomic step. KEYS[1] holds the bucket's theoretical arrival time (TAT,
/// ms since the epoch); ARGV: now (ms), interval (ms), burst. A request conforms when
/// now >= TAT - (burst - 1) * interval: the TAT then moves to max(TAT, now) + interval and
/// the key expires when the bucket is full again (at the new TAT). Otherwise nothing is
/// written and the reply is the wait in ms (> 0); the reply 0 means "conforms".
const GCRA_FN: &str = "\
local function meter()
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local allow_at = tat - (burst - 1) * interval
if now < allow_at then return allow_at - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat)
redis.call('PEXPIRE', KEYS[1], new_tat - now)
return 0
end
";

/// After `GCRA_FN`: meters KEYS[1], then reads KEYS[2..]; replies `{wait, {values...}}`
/// (a missing key reads as nil).
const GET_METERED_TAIL: &str = "\
local wait = meter()
local values = {}
for i = 2, #KEYS do values[i - 1] = redis.call('GET', KEYS[i]) end
return {wait, values}";

async fn timed<T>(f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, StoreError> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(r) => r.map_err(err),
        Err(_) => Err(StoreError("timed out".into())),
    }
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            timed(c.get(self.key(key))).await
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            timed(c.pset_ex(self.key(key), value, ms(ttl))).await
        })
    }

    fn set_nx<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let reply: Option<String> =
                timed(redis::cmd("SET").arg(self.key(key)).arg(value).arg("NX").arg("PX").arg(ms(ttl)).query_async(&mut c)).await?;
            Ok(reply.is_some())
        })
    }

    fn set_xx<'a>(&'a self, key: &'a str, value: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let reply: Option<String> =
                timed(redis::cmd("SET").arg(self.key(key)).arg(value).arg("XX").arg("PX").arg(ms(ttl)).query_async(&mut c)).await?;
            Ok(reply.is_some())
        })
    }

    fn ttl<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Duration>> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let ms: i64 = timed(c.pttl(self.key(key))).await?;
            // -2: no such key; -1: no expiry (never set by this store).
            Ok(match ms {
                -2 => None,
                -1 => Some(Duration::MAX),
                n => Some(Duration::from_millis(n.max(0) as u64)),
            })
        })
    }

    fn del<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let n: i64 = timed(c.del(self.key(key))).await?;
            Ok(n > 0)
        })
    }

    fn incr<'a>(&'a self, key: &'a str, by: i64, ttl: Duration) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            timed(self.incr_script.key(self.key(key)).arg(by).arg(ms(ttl)).invoke_async(&mut c)).await
        })
    }

    fn sadd<'a>(&'a self, key: &'a str, member: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let k = self.key(key);
            timed(redis::pipe().atomic().sadd(&k, member).ignore().pexpire(&k, ms(ttl) as i64).ignore().query_async(&mut c)).await
        })
    }

    fn srem<'a>(&'a self, key: &'a str, member: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let _: i64 = timed(c.srem(self.key(key), member)).await?;
            Ok(())
        })
    }

    fn smembers<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            timed(c.smembers(self.key(key))).await
        })
    }

    fn gcra<'a>(&'a self, key: &'a str, quota: Quota, now: DateTime<Utc>) -> StoreFuture<'a, Option<Duration>> {
        Box::pin(async move {
            let q = quota.clamped();
            let mut c = self.conn.clone();
            let wait_ms: i64 = timed(
                self.gcra_script.key(self.key(key)).arg(now.timestamp_millis()).arg(ms(q.interval)).arg(q.burst).invoke_async(&mut c),
            )
            .await?;
            Ok(u64::try_from(wait_ms).ok().filter(|&w| w > 0).map(Duration::from_millis))
        })
    }

    fn get_metered<'a>(
        &'a self,
        keys: &'a [String],
        bucket: &'a str,
        quota: Quota,
        now: DateTime<Utc>,
    ) -> StoreFuture<'a, (Vec<Option<String>>, Option<Duration>)> {
        Box::pin(async move {
            let q = quota.clamped();
            let mut c = self.conn.clone();
            let mut inv = self.metered_script.key(self.key(bucket));
            for k in keys {
                inv.key(self.key(k));
            }
            inv.arg(now.timestamp_millis()).arg(ms(q.interval)).arg(q.burst);
            let (wait_ms, mut values): (i64, Vec<Option<String>>) = timed(inv.invoke_async(&mut c)).await?;
            // A missing key is `false` in Lua and nil in the reply, so there is one value
            // per key; a shorter reply would mean "not found" for the rest.
            values.resize(keys.len(), None);
            Ok((values, u64::try_from(wait_ms).ok().filter(|&w| w > 0).map(Duration::from_millis)))
        })
    }

    fn publish<'a>(&'a self, channel: &'a str, message: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let _: i64 = timed(c.publish(self.key(channel), message)).await?;
            Ok(())
        })
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> StoreFuture<'a, BoxStream<'static, String>> {
        Box::pin(async move {
            let mut pubsub = timed(self.client.get_async_pubsub()).await?;
            timed(pubsub.subscribe(self.key(channel))).await?;
            let stream = pubsub.into_on_message().filter_map(|msg| async move { msg.get_payload::<String>().ok() });
            Ok(stream.boxed())
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let _: String = timed(redis::cmd("PING").query_async(&mut c)).await?;
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
