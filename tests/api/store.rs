//! One conformance suite for every store implementation: the memory store always, and
//! the test backend's store (Redis when PALISADE_TEST_REDIS_URL is set).

use crate::helpers::Backend;
use futures_util::StreamExt;
use palisade::clock::{Clock, ManualClock};
use palisade::store::{MemoryStore, Quota, Store};
use std::sync::Arc;
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

/// `clock` is the clock the memory store reads (the same one gives Redis its `now`).
async fn conformance(store: Arc<dyn Store>, clock: Arc<ManualClock>) {
    let s = store.as_ref();
    store.ping().await.unwrap();
    assert_eq!(s.get("k").await.unwrap(), None);
    s.set("k", "v1", MIN).await.unwrap();
    s.set("k", "v2", MIN).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("v2"));
    let ttl = s.ttl("k").await.unwrap().unwrap();
    assert!(ttl <= MIN && ttl > Duration::from_secs(50), "{ttl:?}");
    assert_eq!(s.ttl("missing").await.unwrap(), None);

    assert!(s.set_nx("once", "a", MIN).await.unwrap());
    assert!(!s.set_nx("once", "b", MIN).await.unwrap());
    assert_eq!(s.get("once").await.unwrap().as_deref(), Some("a"));

    assert!(!s.set_xx("absent", "a", MIN).await.unwrap(), "set_xx never creates");
    assert_eq!(s.get("absent").await.unwrap(), None);
    assert!(s.set_xx("once", "c", MIN).await.unwrap());
    assert_eq!(s.get("once").await.unwrap().as_deref(), Some("c"));

    assert!(s.del("k").await.unwrap());
    assert!(!s.del("k").await.unwrap());
    assert_eq!(s.get("k").await.unwrap(), None);

    assert_eq!(s.incr("n", 1, MIN).await.unwrap(), 1);
    assert_eq!(s.incr("n", 4, MIN * 10).await.unwrap(), 5);
    assert!(s.ttl("n").await.unwrap().unwrap() <= MIN, "a later increment must not extend the window");
    assert_eq!(s.incr("n", -5, MIN).await.unwrap(), 0);

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let st = store.clone();
            tokio::spawn(async move { st.incr("race", 1, MIN).await.unwrap() })
        })
        .collect();
    let mut results: Vec<i64> = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results.sort();
    assert_eq!(results, (1..=50).collect::<Vec<i64>>(), "increments must be atomic");

    s.sadd("set", "a", MIN).await.unwrap();
    s.sadd("set", "b", MIN).await.unwrap();
    s.sadd("set", "a", MIN).await.unwrap();
    let mut m = s.smembers("set").await.unwrap();
    m.sort();
    assert_eq!(m, ["a", "b"]);
    s.srem("set", "a").await.unwrap();
    assert_eq!(s.smembers("set").await.unwrap(), ["b"]);
    s.srem("set", "b").await.unwrap();
    assert!(s.smembers("set").await.unwrap().is_empty());
    assert!(s.smembers("no-set").await.unwrap().is_empty());

    s.sadd("typed", "x", MIN).await.unwrap();
    assert!(s.get("typed").await.is_err(), "reading a set as a string must fail");

    let mut sub = s.subscribe("chan").await.unwrap();
    let mut other = s.subscribe("other").await.unwrap();
    s.publish("chan", "first").await.unwrap();
    s.publish("chan", "second").await.unwrap();
    assert_eq!(next(&mut sub).await.as_deref(), Some("first"));
    assert_eq!(next(&mut sub).await.as_deref(), Some("second"));
    s.publish("other", "for-other").await.unwrap();
    assert_eq!(next(&mut other).await.as_deref(), Some("for-other"), "each channel gets only its own messages");

    gcra_conformance(s, &clock).await;
    metered_conformance(s, &clock).await;
}

/// `get_metered` reads like `get` (in order, missing keys as None, any number of them)
/// and meters like `gcra`, on the same buckets.
async fn metered_conformance(s: &dyn Store, clock: &ManualClock) {
    let q = Quota { burst: 2, interval: Duration::from_secs(10) };
    s.set("m:1", "one", MIN).await.unwrap();
    s.set("m:3", "three", MIN).await.unwrap();
    let keys: Vec<String> = ["m:1", "m:2", "m:3", "m:4"].map(String::from).into();
    let (values, wait) = s.get_metered(&keys, "rl:m", q, clock.now()).await.unwrap();
    assert_eq!(values, [Some("one".to_owned()), None, Some("three".to_owned()), None]);
    assert_eq!(wait, None);
    let (values, wait) = s.get_metered(&[], "rl:m", q, clock.now()).await.unwrap();
    assert!(values.is_empty());
    assert_eq!(wait, None, "the second of the burst");
    let (values, wait) = s.get_metered(&keys[..1], "rl:m", q, clock.now()).await.unwrap();
    assert_eq!(values, [Some("one".to_owned())], "a refused request still reads");
    assert!(wait.is_some_and(|w| w > Duration::ZERO && w <= q.interval), "{wait:?}");
    assert!(s.gcra("rl:m", q, clock.now()).await.unwrap().is_some(), "the same bucket as gcra's");
}

async fn gcra_conformance(s: &dyn Store, clock: &ManualClock) {
    let q = Quota { burst: 3, interval: Duration::from_secs(10) };
    for i in 0..3 {
        assert_eq!(s.gcra("rl:a", q, clock.now()).await.unwrap(), None, "request {i} of the burst");
    }
    let wait = s.gcra("rl:a", q, clock.now()).await.unwrap().expect("the burst is spent");
    assert!(wait > Duration::ZERO && wait <= q.interval, "{wait:?}");
    let again = s.gcra("rl:a", q, clock.now()).await.unwrap().expect("still spent");
    assert_eq!(again, wait, "a refusal counts nothing");
    assert_eq!(s.gcra("rl:b", q, clock.now()).await.unwrap(), None, "distinct keys are independent");

    clock.advance(chrono::Duration::from_std(wait).unwrap() - chrono::Duration::milliseconds(1));
    assert!(s.gcra("rl:a", q, clock.now()).await.unwrap().is_some(), "not before retry_after");
    clock.advance(chrono::Duration::milliseconds(1));
    assert_eq!(s.gcra("rl:a", q, clock.now()).await.unwrap(), None, "one more after retry_after");
    let wait = s.gcra("rl:a", q, clock.now()).await.unwrap().expect("and only one");
    assert_eq!(wait, q.interval);

    // Idle for a full refill: the whole burst is back.
    clock.advance(chrono::Duration::seconds(30));
    for _ in 0..3 {
        assert_eq!(s.gcra("rl:a", q, clock.now()).await.unwrap(), None);
    }
    assert!(s.gcra("rl:a", q, clock.now()).await.unwrap().is_some());

    // Sub-second intervals, and degenerate quotas that must not panic.
    let fast = Quota { burst: 2, interval: Duration::from_millis(100) };
    assert_eq!(s.gcra("rl:fast", fast, clock.now()).await.unwrap(), None);
    assert_eq!(s.gcra("rl:fast", fast, clock.now()).await.unwrap(), None);
    let wait = s.gcra("rl:fast", fast, clock.now()).await.unwrap().unwrap();
    assert!(wait > Duration::ZERO && wait <= fast.interval, "{wait:?}");
    let no_burst = Quota { burst: 0, interval: Duration::from_secs(60) };
    assert_eq!(s.gcra("rl:no-burst", no_burst, clock.now()).await.unwrap(), None, "burst 0 reads as 1");
    assert!(s.gcra("rl:no-burst", no_burst, clock.now()).await.unwrap().is_some());
    // A zero interval reads as 1 ms (Redis may expire such a bucket on its own clock
    // before the manual clock moves, so only the absence of errors is checked).
    let no_interval = Quota { burst: 1, interval: Duration::ZERO };
    assert_eq!(s.gcra("rl:no-interval", no_interval, clock.now()).await.unwrap(), None);
    s.gcra("rl:no-interval", no_interval, clock.now()).await.unwrap();
    let huge = Quota { burst: u32::MAX, interval: Duration::MAX };
    assert_eq!(s.gcra("rl:huge", huge, clock.now()).await.unwrap(), None);

    // Concurrent requests: exactly the burst gets through.
    let burst = Quota { burst: 20, interval: Duration::from_secs(3600) };
    let now = clock.now();
    let results = futures_util::future::join_all((0..50).map(|_| s.gcra("rl:race", burst, now))).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(None))).count(), 20, "{results:?}");

    // A clock moved backwards refuses (the bucket looks fuller) rather than panicking.
    clock.advance(-chrono::Duration::hours(2));
    assert!(s.gcra("rl:a", q, clock.now()).await.unwrap().is_some());
    clock.advance(chrono::Duration::hours(2));
}

async fn next(st: &mut futures_util::stream::BoxStream<'static, String>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(5), st.next()).await.ok().flatten()
}

#[tokio::test]
async fn memory_store_conforms() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    conformance(Arc::new(MemoryStore::new(clock.clone())), clock).await;
}

#[tokio::test]
async fn memory_store_expires_on_the_injected_clock() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let s = MemoryStore::new(clock.clone());
    s.set("k", "v", Duration::from_secs(10)).await.unwrap();
    s.sadd("set", "m", Duration::from_secs(10)).await.unwrap();
    s.incr("n", 1, Duration::from_secs(10)).await.unwrap();
    clock.advance(chrono::Duration::seconds(9));
    assert!(s.get("k").await.unwrap().is_some());
    clock.advance(chrono::Duration::seconds(2));
    assert_eq!(s.get("k").await.unwrap(), None);
    assert!(s.smembers("set").await.unwrap().is_empty());
    assert_eq!(s.incr("n", 1, Duration::from_secs(10)).await.unwrap(), 1, "an expired counter starts again");
}

#[tokio::test]
async fn the_test_backend_store_conforms() {
    let backend = Backend::new().await;
    conformance(backend.store(), backend.clock.clone()).await;

    // Two instances (two connections on Redis, the one shared store in memory mode)
    // draw from one bucket.
    let (one, two) = (backend.store(), backend.store());
    let q = Quota { burst: 2, interval: Duration::from_secs(60) };
    let now = backend.clock.now();
    assert_eq!(one.gcra("rl:shared", q, now).await.unwrap(), None);
    assert_eq!(two.gcra("rl:shared", q, now).await.unwrap(), None);
    assert!(one.gcra("rl:shared", q, now).await.unwrap().is_some(), "the second instance's request counted");
    assert!(two.gcra("rl:shared", q, now).await.unwrap().is_some());

    if backend.redis_url.is_some() {
        // Keys of one prefix are invisible under another.
        let mine = backend.store();
        mine.set("isolated", "x", MIN).await.unwrap();
        let url = backend.redis_url.clone().unwrap();
        let other = palisade::store::RedisStore::connect(&url, &format!("{}other:", backend.redis_prefix)).unwrap();
        assert_eq!(other.get("isolated").await.unwrap(), None);
        assert_eq!(other.gcra("rl:shared", q, now).await.unwrap(), None, "buckets of one prefix are invisible under another");
        assert_eq!(other.kind(), "redis");
    }
}
