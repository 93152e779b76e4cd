//! The single writer of audit entries: every entry, from every path (a mutation's
//! transaction, a refusal, a read, the system), is appended to its workspace's hash
//! chain here (see `audit::chain`).
//!
//! On SQLite only one writer may run at a time: callers take `writer` (the process's
//! write lock) first, or run before the server serves (bootstrap).

use super::{Actor, AuditEvent, AuditRecord};
use crate::auth::RequestMeta;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Fields of one log entry that come from the request rather than the event.
pub struct EntryContext<'a> {
    pub actor: Actor,
    pub meta: Option<&'a RequestMeta>,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Appends one entry to its chain inside `txn`.
pub(crate) async fn write_entry(
    txn: &DatabaseTransaction,
    record: AuditRecord,
    cx: &EntryContext<'_>,
    outcome: &str,
    error_code: Option<&str>,
) -> Result<entity::audit_entry::Model, DbErr> {
    super::chain::append(txn, entry(record, cx, outcome, error_code)).await
}

/// Appends successful entries of one workspace to its chain inside `txn`, in one go.
pub(crate) async fn write_many(txn: &DatabaseTransaction, records: Vec<AuditRecord>, cx: &EntryContext<'_>) -> Result<(), DbErr> {
    super::chain::append_many(txn, records.into_iter().map(|r| entry(r, cx, "success", None)).collect()).await
}

/// The rows `outcomes` become, for `group::GroupWriter::write`.
pub(crate) fn entries(outcomes: Vec<Outcome>, cx: &EntryContext<'_>) -> Vec<entity::audit_entry::Model> {
    outcomes.into_iter().map(|(record, outcome, code)| entry(record, cx, outcome, code.as_deref())).collect()
}

fn entry(record: AuditRecord, cx: &EntryContext<'_>, outcome: &str, error_code: Option<&str>) -> entity::audit_entry::Model {
    let actor = record.actor.unwrap_or_else(|| cx.actor.clone());
    entity::audit_entry::Model {
        id: uuid::Uuid::now_v7(),
        workspace_id: record.workspace_id,
        occurred_at: cx.now,
        actor_type: actor.kind.as_str().into(),
        actor_id: actor.id,
        actor_label: actor.label,
        impersonator_id: actor.impersonator,
        ip: cx.meta.and_then(RequestMeta::ip_string),
        user_agent: cx.meta.and_then(|m| m.user_agent.clone()),
        request_id: cx.meta.map(|m| m.request_id.clone()),
        action: record.action.into(),
        module: record.module.into(),
        target_type: record.target_type.map(Into::into),
        target_id: record.target_id,
        changes: record.changes,
        outcome: outcome.into(),
        error_code: error_code.map(Into::into),
        reason: record.reason,
        seq: None,
        prev_hash: None,
        hash: None,
    }
}

/// Writes `events` as the `system` actor inside `txn`: for work outside any request
/// (command-line bootstrap, the retention sweeper).
pub(crate) async fn write_system(
    txn: &DatabaseTransaction,
    events: Vec<AuditEvent>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<entity::audit_entry::Model>, DbErr> {
    let cx = EntryContext { actor: Actor::system(), meta: None, now };
    let mut written = Vec::with_capacity(events.len());
    for ev in events {
        written.push(write_entry(txn, ev.into_record(), &cx, "success", None).await?);
    }
    Ok(written)
}

/// One entry to write with `write_batch`: the record, its outcome and error code.
pub(crate) type Outcome = (AuditRecord, &'static str, Option<String>);

/// Writes `entries` in one transaction of their own, holding the write lock (or the
/// guard the caller already holds) until it has committed.
pub(crate) async fn write_batch(
    db: &DatabaseConnection,
    lock: Option<&Arc<Mutex<()>>>,
    held: Option<OwnedMutexGuard<()>>,
    cx: &EntryContext<'_>,
    entries: Vec<Outcome>,
) -> Result<Vec<entity::audit_entry::Model>, DbErr> {
    let _writer = writer(lock, held).await;
    let txn = db.begin().await?;
    let mut written = Vec::with_capacity(entries.len());
    for (record, outcome, code) in entries {
        written.push(write_entry(&txn, record, cx, outcome, code.as_deref()).await?);
    }
    txn.commit().await?;
    Ok(written)
}

/// SQLite's single writer: waits for the process's write lock (`AppState::write_lock`)
/// unless `held` already is it; `None` on PostgreSQL.
pub(crate) async fn writer(lock: Option<&Arc<Mutex<()>>>, held: Option<OwnedMutexGuard<()>>) -> Option<OwnedMutexGuard<()>> {
    match (held, lock) {
        (Some(g), _) => Some(g),
        (None, Some(lock)) => Some(lock.clone().lock_owned().await),
        (None, None) => None,
    }
}
