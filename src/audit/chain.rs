//! The audit log's hash chains: tamper evidence for entries at rest.
//!
//! # Chains
//! Every workspace has its own chain; entries without a workspace (platform events: a
//! master admin sign-in, a sign-in to an unknown workspace) form one more, the platform
//! chain. Within a chain, entries carry `seq` 1, 2, 3, ... without gaps, `prev_hash`
//! (the hash of the entry with the previous `seq`, or [`GENESIS`] for `seq` 1) and
//! their own `hash`. Entries written before the chain existed have no `seq` and are
//! outside it.
//!
//! # Canonical encoding
//! `hash` is the lowercase hex SHA-256 of the UTF-8 bytes of this JSON array, written
//! compactly (no whitespace at all):
//!
//! ```text
//! ["palisade.audit.v1", prev_hash, id, workspace_id, seq, occurred_at,
//!  actor_type, actor_id, actor_label, impersonator_id, ip, user_agent, request_id,
//!  action, module, target_type, target_id, changes, outcome, error_code, reason]
//! ```
//!
//! - every element is present, in this order; an absent value is `null`, never `""`;
//! - ids (`id`, `workspace_id`, `actor_id`, `impersonator_id`) are lowercase hyphenated
//!   UUID strings; `seq` is a JSON integer;
//! - `occurred_at` is UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, always six fractional
//!   digits (entries are stored truncated to the microsecond, the precision both
//!   databases keep);
//! - `changes` is embedded as a JSON value (not a string) with the keys of every object
//!   sorted by their UTF-8 bytes, recursively; a JSON `null` is stored as absent;
//! - strings escape only `"`, `\` and control characters below U+0020 (`\b \t \n \f \r`
//!   short forms, others `\u00xx` lowercase); everything else is literal UTF-8. Numbers
//!   inside `changes` are printed as serde_json prints them (integers in decimal, other
//!   numbers in shortest round-trip form).
//!
//! A JSON array of typed values is self-delimiting, so no two different entries share
//! an encoding. The leading tag versions the scheme; `prev_hash` inside the encoding is
//! what links an entry to its predecessor, and `workspace_id` and `seq` inside it stop an
//! entry from being moved to another place or chain.
//!
//! # Appending
//! [`append`] runs inside the writing transaction and serialises appends per chain:
//! - PostgreSQL: a transaction-scoped advisory lock on the chain
//!   (`pg_advisory_xact_lock(namespace, key)`, key from the SHA-256 of the chain key;
//!   a collision only makes two chains share a lock), then the head is read and the
//!   entry inserted; the lock is held until commit or rollback, so the next writer reads
//!   the committed head (READ COMMITTED sees it, as each statement takes a new snapshot).
//! - SQLite: one writer per database. In this process the callers hold the
//!   `AppState::write_lock` (the gate for mutations and its own failure and
//!   withheld-field entries); another process that raced would fail on SQLite's stale
//!   snapshot rather than fork the chain.
//! - Both: a unique index on (workspace, seq), and a partial one on seq for the platform
//!   chain, refuse a second entry at the same place whatever happens.
//!
//! # Verification
//! [`verify`] walks a chain in `seq` order, a page of [`PAGE`] rows at a time, recomputes
//! each hash from the stored fields and checks the link to the previous entry's stored
//! hash. A range that starts mid-chain links to the stored hash of the entry before it.
//! Removing the newest entries of a chain (truncating its tail) leaves a valid shorter
//! chain; anchoring the head outside the database is what would catch that.
//!
//! # Retention
//! [`purge`] deletes a prefix of a workspace's chain (`seq` <= n: the entries written
//! before the first one still inside the retention period) and keeps the stored hash
//! of entry n as the chain's anchor (`audit_anchors`). The purge itself is recorded in
//! the chain by the caller, as an `audit.purged` entry naming `throughSeq` and
//! `anchorHash`. Verification of what is left starts from the anchor instead of
//! [`GENESIS`] and checks that the anchor matches the newest purge record, so an edited
//! anchor is caught like an edited entry; [`append`] continues from the anchor when
//! every entry is gone, so `seq` never restarts.

use crate::repo::audit as repo;
use crate::repo::audit::chain_name;
use entity::audit_entry::Model;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What the first entry of every chain links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Versions the encoding; part of every hash.
pub const SCHEME: &str = "palisade.audit.v1";

/// Rows read per query while verifying.
pub const PAGE: u64 = 1000;

/// First key of the two-key advisory lock: "AUDT", so the chain locks cannot collide
/// with other advisory locks of this application.
const LOCK_NAMESPACE: i32 = 0x4155_4454;

fn lock_key(workspace_id: Option<Uuid>) -> i32 {
    let d = Sha256::digest(chain_name(workspace_id).as_bytes());
    i32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The stored precision: both databases keep microseconds.
pub fn truncate_time(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    let micros = t.nanosecond() / 1_000 * 1_000;
    t.with_nanosecond(micros).unwrap_or(t)
}

pub fn canonical_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The same value with every object's keys in byte order (whatever the map type keeps).
pub fn canonical_json(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), canonical_json(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_json).collect()),
        other => other.clone(),
    }
}

/// The canonical encoding of `entry` linked to `prev_hash` (see the module doc). The
/// entry's own `prev_hash` and `hash` fields are not read.
pub fn encode(prev_hash: &str, e: &Model) -> String {
    let id = |u: Option<Uuid>| u.map_or(Value::Null, |u| Value::String(u.to_string()));
    let text = |s: &Option<String>| s.as_ref().map_or(Value::Null, |s| Value::String(s.clone()));
    let fields = vec![
        Value::String(SCHEME.to_owned()),
        Value::String(prev_hash.to_owned()),
        Value::String(e.id.to_string()),
        id(e.workspace_id),
        e.seq.map_or(Value::Null, Value::from),
        Value::String(canonical_time(e.occurred_at)),
        Value::String(e.actor_type.clone()),
        id(e.actor_id),
        text(&e.actor_label),
        id(e.impersonator_id),
        text(&e.ip),
        text(&e.user_agent),
        text(&e.request_id),
        Value::String(e.action.clone()),
        Value::String(e.module.clone()),
        text(&e.target_type),
        text(&e.target_id),
        e.changes.as_ref().map_or(Value::Null, canonical_json),
        Value::String(e.outcome.clone()),
        text(&e.error_code),
        text(&e.reason),
    ];
    Value::Array(fields).to_string()
}

/// Lowercase hex SHA-256 of [`encode`].
pub fn entry_hash(prev_hash: &str, e: &Model) -> String {
    format!("{:x}", Sha256::digest(encode(prev_hash, e).as_bytes()))
}

/// Appends `entry` to its chain inside `txn`: serialises with other writers of the same
/// chain, reads the head, fills `seq`, `prev_hash` and `hash`, inserts. Normalises the
/// time to stored precision and a JSON-null `changes` to absent first, so what is hashed
/// is exactly what is read back.
pub(crate) async fn append(txn: &DatabaseTransaction, entry: Model) -> Result<Model, DbErr> {
    let mut linked = link(txn, entry.workspace_id, vec![entry]).await?;
    let entry = linked.pop().ok_or_else(|| DbErr::Custom("audit: nothing to append".into()))?;
    repo::insert(txn, entry.clone()).await?;
    Ok(entry)
}

/// Appends `entries`, all of one chain, as `append` would one by one, with one lock,
/// one read of the head and one insert (an import's thousands of entries).
pub(crate) async fn append_many(txn: &DatabaseTransaction, entries: Vec<Model>) -> Result<(), DbErr> {
    let Some(first) = entries.first() else { return Ok(()) };
    let chain = first.workspace_id;
    if entries.iter().any(|e| e.workspace_id != chain) {
        return Err(DbErr::Custom("audit: one batch spans several chains".into()));
    }
    let linked = link(txn, chain, entries).await?;
    repo::insert_many(txn, linked).await
}

/// Appends `entries` of any chains, each chain's in the order given, with one lock, one
/// read of the head and one insert per chain: a batch of requests' entries (the group
/// writer). Chains are locked in one fixed order, so two such batches cannot deadlock.
/// Returns the entries as stored, in the order given.
pub(crate) async fn append_all(txn: &DatabaseTransaction, entries: Vec<Model>) -> Result<Vec<Model>, DbErr> {
    let mut chains: Vec<(i32, Option<Uuid>)> = entries.iter().map(|e| (lock_key(e.workspace_id), e.workspace_id)).collect();
    chains.sort_unstable();
    chains.dedup();
    let mut stored: std::collections::HashMap<Uuid, Model> = std::collections::HashMap::with_capacity(entries.len());
    for (_, chain) in chains {
        let of_chain: Vec<Model> = entries.iter().filter(|e| e.workspace_id == chain).cloned().collect();
        let linked = link(txn, chain, of_chain).await?;
        repo::insert_many(txn, linked.clone()).await?;
        stored.extend(linked.into_iter().map(|e| (e.id, e)));
    }
    entries.iter().map(|e| stored.remove(&e.id).ok_or_else(|| DbErr::Custom("audit: an entry was not appended".into()))).collect()
}

/// `entries` normalised and linked after the head of `chain`, which stays locked until
/// `txn` ends.
async fn link(txn: &DatabaseTransaction, chain: Option<Uuid>, entries: Vec<Model>) -> Result<Vec<Model>, DbErr> {
    repo::lock_chain(txn, LOCK_NAMESPACE, lock_key(chain)).await?;
    let (mut seq, mut prev) = match repo::chain_head(txn, chain).await? {
        Some(head) => (head.seq.unwrap_or(0), head.hash.unwrap_or_default()),
        None => match repo::anchor(txn, &chain_name(chain)).await? {
            Some(a) => (a.seq, a.hash),
            None => (0, GENESIS.to_owned()),
        },
    };
    let mut out = Vec::with_capacity(entries.len());
    for mut entry in entries {
        entry.occurred_at = truncate_time(entry.occurred_at);
        entry.changes = entry.changes.filter(|c| !c.is_null());
        seq += 1;
        entry.seq = Some(seq);
        let hash = entry_hash(&prev, &entry);
        entry.prev_hash = Some(std::mem::replace(&mut prev, hash.clone()));
        entry.hash = Some(hash);
        out.push(entry);
    }
    Ok(out)
}

pub const GAP: &str = "missing entry (gap in sequence)";
pub const OUT_OF_ORDER: &str = "sequence out of order";
pub const HASH_MISMATCH: &str = "hash mismatch";
pub const BROKEN_LINK: &str = "broken link";
pub const ANCHOR_MISMATCH: &str = "retention anchor does not match the purge record";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries whose hash and link were checked and found intact.
    pub checked: i64,
    /// The first sequence number that is wrong, and how; None when all is intact.
    pub broken: Option<(i64, &'static str)>,
    /// Entries up to this sequence number were purged by retention (not checked).
    pub purged_through: Option<i64>,
}

/// What a purge removed, and where the chain now starts.
pub struct Purged {
    pub through_seq: i64,
    pub anchor_hash: String,
    pub entries: u64,
}

/// Deletes the entries of `workspace_id`'s chain written before `cutoff` (the prefix up
/// to the first entry at or after it) inside `txn`, and moves the chain's anchor to the
/// last deleted entry. None when nothing is old enough. The caller records the purge in
/// the chain (an `audit.purged` event naming `through_seq` and `anchor_hash`) in the same
/// transaction; on SQLite it must hold the writer lock.
pub(crate) async fn purge(
    txn: &DatabaseTransaction,
    workspace_id: Uuid,
    cutoff: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Purged>, DbErr> {
    repo::lock_chain(txn, LOCK_NAMESPACE, lock_key(Some(workspace_id))).await?;
    let Some(head) = repo::chain_head(txn, Some(workspace_id)).await?.and_then(|h| h.seq) else { return Ok(None) };
    let through = match repo::first_seq_since(txn, workspace_id, cutoff).await? {
        Some(first_kept) => first_kept - 1,
        None => head,
    };
    let name = chain_name(Some(workspace_id));
    let previous = repo::anchor(txn, &name).await?;
    if through < 1 || previous.as_ref().is_some_and(|a| through <= a.seq) {
        return Ok(None);
    }
    let Some(last) = repo::chain_entry(txn, Some(workspace_id), through).await? else { return Ok(None) };
    let anchor_hash = last.hash.unwrap_or_default();
    let entries = repo::delete_through(txn, workspace_id, through, cutoff).await?;
    repo::save_anchor(
        txn,
        entity::audit_anchor::Model {
            chain: name,
            seq: through,
            hash: anchor_hash.clone(),
            purged_at: truncate_time(now),
            purged_total: previous.map_or(0, |a| a.purged_total) + i64::try_from(entries).unwrap_or(i64::MAX),
        },
    )
    .await?;
    Ok(Some(Purged { through_seq: through, anchor_hash, entries }))
}

/// Whether the anchor is the one the chain's newest purge record names.
async fn anchor_recorded(db: &impl ConnectionTrait, workspace_id: Option<Uuid>, a: &entity::audit_anchor::Model) -> Result<bool, DbErr> {
    let Some(record) = repo::latest_with_action(db, workspace_id, "audit.purged").await? else { return Ok(false) };
    let changes = record.changes.unwrap_or_default();
    Ok(changes["throughSeq"]["after"].as_i64() == Some(a.seq) && changes["anchorHash"]["after"].as_str() == Some(a.hash.as_str()))
}

/// Checks the chain of `workspace_id` (None: the platform chain) from `from` to `to`
/// (sequence numbers, inclusive; default: all of it). For each entry in order:
/// - its `seq` is the next one (else [`GAP`] at the missing number, or [`OUT_OF_ORDER`]
///   for a repeated one);
/// - its stored hash is the hash of its stored fields and stored `prev_hash`
///   ([`HASH_MISMATCH`]: the entry was edited);
/// - its `prev_hash` is the previous entry's stored hash, or [`GENESIS`] for `seq` 1
///   ([`BROKEN_LINK`]: the previous entry was replaced, or this one moved).
///
/// Stops at the first problem.
pub async fn verify(
    db: &impl ConnectionTrait,
    workspace_id: Option<Uuid>,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Verification, DbErr> {
    let anchor = repo::anchor(db, &chain_name(workspace_id)).await?;
    let purged_through = anchor.as_ref().map(|a| a.seq);
    let done = |checked, broken| Ok(Verification { checked, broken, purged_through });
    // What retention purged is gone: checking starts after the anchor.
    let from = from.unwrap_or(1).max(1).max(purged_through.map_or(1, |s| s + 1));
    let Some(head) = repo::chain_head(db, workspace_id).await?.and_then(|h| h.seq) else {
        return done(0, None);
    };
    if let Some(a) = &anchor
        && !anchor_recorded(db, workspace_id, a).await?
    {
        return done(0, Some((a.seq + 1, ANCHOR_MISMATCH)));
    }
    // Entries appended while this runs are not part of the answer.
    let to = to.map_or(head, |t| t.min(head));
    if from > to {
        return done(0, None);
    }
    let mut expected_prev = match &anchor {
        Some(a) if from == a.seq + 1 => a.hash.clone(),
        _ if from == 1 => GENESIS.to_owned(),
        _ => match repo::chain_entry(db, workspace_id, from - 1).await? {
            Some(e) => e.hash.unwrap_or_default(),
            None => return done(0, Some((from - 1, GAP))),
        },
    };
    let mut expected_seq = from;
    let mut checked = 0;
    loop {
        let rows = repo::chain_page(db, workspace_id, expected_seq - 1, to, PAGE).await?;
        let Some(last) = rows.last().and_then(|r| r.seq) else { break };
        for row in &rows {
            let seq = row.seq.unwrap_or_default();
            let problem = if seq < expected_seq {
                Some((seq, OUT_OF_ORDER))
            } else if seq > expected_seq {
                Some((expected_seq, GAP))
            } else {
                let stored_prev = row.prev_hash.as_deref().unwrap_or_default();
                let stored_hash = row.hash.as_deref().unwrap_or_default();
                if entry_hash(stored_prev, row) != stored_hash {
                    Some((seq, HASH_MISMATCH))
                } else if stored_prev != expected_prev {
                    Some((seq, BROKEN_LINK))
                } else {
                    None
                }
            };
            if let Some(broken) = problem {
                return done(checked, Some(broken));
            }
            expected_prev = row.hash.clone().unwrap_or_default();
            expected_seq += 1;
            checked += 1;
        }
        if last >= to || (rows.len() as u64) < PAGE {
            break;
        }
    }
    if expected_seq <= to {
        // The head was there when we started and is gone now: entries were removed.
        return done(checked, Some((expected_seq, GAP)));
    }
    done(checked, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry() -> Model {
        Model {
            id: Uuid::nil(),
            workspace_id: None,
            occurred_at: chrono::Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
            actor_type: "system".into(),
            actor_id: None,
            actor_label: None,
            impersonator_id: None,
            ip: None,
            user_agent: None,
            request_id: None,
            action: "a".into(),
            module: "m".into(),
            target_type: None,
            target_id: None,
            changes: Some(serde_json::json!({ "b": 1, "a": { "d": [true, null], "c": "x\n" } })),
            outcome: "success".into(),
            error_code: None,
            reason: Some("why".into()),
            seq: Some(1),
            prev_hash: None,
            hash: None,
        }
    }

    #[test]
    fn the_encoding_is_fixed() {
        assert_eq!(
            encode(GENESIS, &entry()),
            format!(
                "[\"palisade.audit.v1\",\"{GENESIS}\",\"00000000-0000-0000-0000-000000000000\",null,1,\"2026-11-22T10:00:00.000000Z\",\
                 \"system\",null,null,null,null,null,null,\"a\",\"m\",null,null,{{\"a\":{{\"c\":\"x\\n\",\"d\":[true,null]}},\"b\":1}},\
                 \"success\",null,\"why\"]"
            )
        );
    }

    #[test]
    fn null_and_empty_string_differ_and_every_field_counts() {
        let a = entry();
        let mut b = entry();
        b.actor_label = Some(String::new());
        assert_ne!(entry_hash(GENESIS, &a), entry_hash(GENESIS, &b));
        let mut c = entry();
        c.seq = Some(2);
        assert_ne!(entry_hash(GENESIS, &a), entry_hash(GENESIS, &c));
        assert_ne!(entry_hash(GENESIS, &a), entry_hash(&"1".repeat(64), &a));
        assert_eq!(entry_hash(GENESIS, &a).len(), 64);
    }

    #[test]
    fn time_is_kept_to_the_microsecond() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(canonical_time(truncate_time(t)), "2026-01-02T03:04:05.123456Z");
    }
}
