//! The transaction capability of a mutation and the per-request record of what must be
//! audited.
//!
//! A `Tx` exists only while the gate (`graphql::gate`) holds the mutation's open
//! transaction: a use case reaches the database to change anything only through it, and
//! every audit event it records is written into that same transaction before it
//! commits (or, as a failure entry, when it does not). `RequestState` is the slot the
//! gate fills, one per request, plus what reads must leave on the record.

use super::{Actor, AuditEvent};
use crate::auth::RequestMeta;
use futures_util::future::BoxFuture;
use sea_orm::DatabaseTransaction;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

pub(crate) type Compensation = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) on_success: Vec<AuditEvent>,
    pub(crate) on_failure: Vec<AuditEvent>,
    pub(crate) compensations: Vec<Compensation>,
    pub(crate) after_commit: Vec<Compensation>,
}

/// Per-request slot for the open mutation transaction. The HTTP layer inserts a fresh
/// one into every request; only the gate fills it.
#[derive(Default)]
pub struct RequestState {
    pub(crate) tx: Mutex<Option<Arc<DatabaseTransaction>>>,
    /// The SQLite write lock taken for a mutation whose transaction the resolver opened
    /// itself (`Tx::open`).
    pub(crate) deferred_writer: Mutex<Option<OwnedMutexGuard<()>>>,
    /// Set while a mutation runs: if the request is dropped before the gate has written
    /// its outcome (the execution timeout fired, the client went away), `Drop` runs it
    /// to put a failure entry on the record in its place.
    pub(crate) cut_short: Mutex<Option<Compensation>>,
    pub(crate) pending: Mutex<Pending>,
    /// Sensitive fields this request was refused (answered null), audited once at the end.
    pub(crate) withheld: Mutex<std::collections::BTreeSet<&'static str>>,
    /// Values of read-audited fields this request showed, by field, audited once at the
    /// end (one entry per request and field set, however many rows).
    pub(crate) sensitive_reads: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Other reads a query records (explanations of access), written at the end too.
    pub(crate) read_events: Mutex<Vec<AuditEvent>>,
}

/// If a mutation is cancelled mid-flight (the execution timeout fired, the client went
/// away), its transaction is dropped uncommitted and the gate never reaches its
/// clean-up; the undo actions it had registered, and its failure entry, still run, from
/// here.
impl Drop for RequestState {
    fn drop(&mut self) {
        let undo = std::mem::take(&mut self.lock_pending().compensations);
        let cut_short = self.cut_short.lock().unwrap_or_else(|e| e.into_inner()).take();
        if (undo.is_empty() && cut_short.is_none()) || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        // The dropped transaction must release SQLite's write lock before the entry
        // below can be written.
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        drop(self.deferred_writer.lock().unwrap_or_else(|e| e.into_inner()).take());
        // In the request's span, so these log lines keep the request id.
        let task = async move {
            for f in undo {
                f().await;
            }
            if let Some(f) = cut_short {
                f().await;
            }
        };
        tokio::spawn(tracing::Instrument::instrument(task, tracing::Span::current()));
    }
}

impl RequestState {
    pub fn note_withheld(&self, field: &'static str) {
        self.withheld.lock().unwrap_or_else(|e| e.into_inner()).insert(field);
    }

    pub fn note_sensitive_read(&self, field: &'static str) {
        *self.sensitive_reads.lock().unwrap_or_else(|e| e.into_inner()).entry(field).or_default() += 1;
    }

    /// Records a read that must be on the record (a query's own audit event), written
    /// when the request ends.
    pub fn note_read(&self, event: AuditEvent) {
        self.read_events.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }

    pub(crate) fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The capability a mutation resolver needs to change anything: the gate's open
/// transaction plus the audit buffer that will be written into it. Made only by the
/// gate (`Tx::current`, `Tx::open` in `graphql::gate`).
pub struct Tx<'a> {
    db: Arc<DatabaseTransaction>,
    state: &'a RequestState,
    /// Who the entries written now (`audit_now`) are by, as the gate would write them.
    actor: Actor,
    meta: Option<RequestMeta>,
}

impl<'a> Tx<'a> {
    pub(crate) fn bind(db: Arc<DatabaseTransaction>, state: &'a RequestState, actor: Actor, meta: Option<RequestMeta>) -> Self {
        Self { db, state, actor, meta }
    }

    pub fn db(&self) -> &DatabaseTransaction {
        &self.db
    }

    /// Recorded in the log if (and only if) the mutation commits.
    pub fn audit(&self, event: AuditEvent) {
        self.state.lock_pending().on_success.push(event);
    }

    /// Writes `events` into `txn` (this mutation's transaction, or a savepoint of it)
    /// now rather than at commit, for an operation with more entries than it should
    /// hold in memory (an import). They stay on the record only if the mutation (and
    /// the savepoint) commits, like every other entry. Streams learn of them from the
    /// mutation's last entry, which the gate announces: they read what they missed from
    /// the log.
    pub async fn audit_now(
        &self,
        txn: &DatabaseTransaction,
        events: Vec<AuditEvent>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), sea_orm::DbErr> {
        let cx = super::writer::EntryContext { actor: self.actor.clone(), meta: self.meta.as_ref(), now };
        super::writer::write_many(txn, events.into_iter().map(AuditEvent::into_record).collect(), &cx).await
    }

    /// Recorded in the log if the mutation fails, instead of the generic refusal entry.
    pub fn audit_failure(&self, event: AuditEvent) {
        self.state.lock_pending().on_failure.push(event);
    }

    /// Runs once the transaction has committed (mail about what just happened), before
    /// the response leaves; never runs for a mutation that did not commit.
    pub fn after_commit(&self, f: impl FnOnce() -> BoxFuture<'static, ()> + Send + 'static) {
        self.state.lock_pending().after_commit.push(Box::new(f));
    }

    /// Undoes an effect outside the database if the transaction does not commit.
    pub fn on_rollback(&self, f: impl FnOnce() -> BoxFuture<'static, ()> + Send + 'static) {
        self.state.lock_pending().compensations.push(Box::new(f));
    }
}
