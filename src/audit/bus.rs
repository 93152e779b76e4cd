//! The audit event bus: every committed audit entry, announced to every instance.
//!
//! Guarantees: after an entry's transaction commits, the writer publishes it on the
//! store's pub/sub channel (`audit`); each instance holds one subscription to that
//! channel (opened with its first local subscriber, reopened when it drops) and fans
//! the entries out to its local subscribers. Pub/sub delivery is best effort (a dropped
//! connection or a slow subscriber loses messages), so the bus is only a doorbell with
//! the entry attached: subscribers keep their own position in each chain (`seq`), read
//! whatever they missed from the database, and ignore what they already have, so they
//! never skip and never repeat an entry. After a (re)subscription the bus tells its
//! subscribers to look at the database (`Resync`), since messages may have been lost
//! while it was away.

use crate::store::Store;
use chrono::{DateTime, Utc};
use entity::audit_entry::Model;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

const CHANNEL: &str = "audit";
/// Entries buffered per local subscriber before it must catch up from the database.
const LOCAL_BUFFER: usize = 4096;

#[derive(Debug, Clone)]
pub enum BusMessage {
    Entry(Arc<Model>),
    /// Something may have been missed: check the database.
    Resync,
}

/// An entry as it travels between instances (the stored row, hashes included).
#[derive(Serialize, Deserialize)]
struct Wire {
    id: Uuid,
    workspace_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    actor_type: String,
    actor_id: Option<Uuid>,
    actor_label: Option<String>,
    impersonator_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    action: String,
    module: String,
    target_type: Option<String>,
    target_id: Option<String>,
    changes: Option<serde_json::Value>,
    outcome: String,
    error_code: Option<String>,
    reason: Option<String>,
    seq: Option<i64>,
    prev_hash: Option<String>,
    hash: Option<String>,
}

impl From<&Model> for Wire {
    fn from(m: &Model) -> Self {
        Self {
            id: m.id,
            workspace_id: m.workspace_id,
            occurred_at: m.occurred_at,
            actor_type: m.actor_type.clone(),
            actor_id: m.actor_id,
            actor_label: m.actor_label.clone(),
            impersonator_id: m.impersonator_id,
            ip: m.ip.clone(),
            user_agent: m.user_agent.clone(),
            request_id: m.request_id.clone(),
            action: m.action.clone(),
            module: m.module.clone(),
            target_type: m.target_type.clone(),
            target_id: m.target_id.clone(),
            changes: m.changes.clone(),
            outcome: m.outcome.clone(),
            error_code: m.error_code.clone(),
            reason: m.reason.clone(),
            seq: m.seq,
            prev_hash: m.prev_hash.clone(),
            hash: m.hash.clone(),
        }
    }
}

impl From<Wire> for Model {
    fn from(w: Wire) -> Self {
        Self {
            id: w.id,
            workspace_id: w.workspace_id,
            occurred_at: w.occurred_at,
            actor_type: w.actor_type,
            actor_id: w.actor_id,
            actor_label: w.actor_label,
            impersonator_id: w.impersonator_id,
            ip: w.ip,
            user_agent: w.user_agent,
            request_id: w.request_id,
            action: w.action,
            module: w.module,
            target_type: w.target_type,
            target_id: w.target_id,
            changes: w.changes,
            outcome: w.outcome,
            error_code: w.error_code,
            reason: w.reason,
            seq: w.seq,
            prev_hash: w.prev_hash,
            hash: w.hash,
        }
    }
}

pub struct AuditBus {
    store: Arc<dyn Store>,
    local: broadcast::Sender<BusMessage>,
    listening: AtomicBool,
}

impl AuditBus {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, local: broadcast::channel(LOCAL_BUFFER).0, listening: AtomicBool::new(false) }
    }

    /// Announces committed entries to every instance, in the background: the answer
    /// to the request that wrote them does not wait for the store. A failure is
    /// logged, not raised: the entries are committed, and subscribers find them in the
    /// database.
    pub fn announce(&self, entries: Vec<Model>) {
        if entries.is_empty() {
            return;
        }
        let store = Arc::clone(&self.store);
        // In the announcing request's span, so a failure is logged with its request id.
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                for e in entries {
                    let Ok(json) = serde_json::to_string(&Wire::from(&e)) else { continue };
                    if let Err(err) = store.publish(CHANNEL, &json).await {
                        tracing::warn!(error = %err, "could not announce an audit entry; subscribers will read it from the database");
                        return;
                    }
                }
            },
            span,
        ));
    }

    /// A receiver of every entry announced from now on (on any instance).
    pub fn subscribe(self: &Arc<Self>) -> broadcast::Receiver<BusMessage> {
        let rx = self.local.subscribe();
        if !self.listening.swap(true, Ordering::SeqCst) {
            let bus = Arc::clone(self);
            tokio::spawn(async move { bus.listen().await });
        }
        rx
    }

    /// Subscribers on this instance right now.
    pub fn local_subscribers(&self) -> usize {
        self.local.receiver_count()
    }

    async fn listen(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.store.subscribe(CHANNEL).await {
                Ok(mut stream) => {
                    backoff = Duration::from_millis(100);
                    let _ = self.local.send(BusMessage::Resync);
                    while let Some(text) = stream.next().await {
                        match serde_json::from_str::<Wire>(&text) {
                            Ok(w) => {
                                let _ = self.local.send(BusMessage::Entry(Arc::new(w.into())));
                            }
                            Err(e) => tracing::warn!(error = %e, "ignored an unreadable audit announcement"),
                        }
                    }
                    tracing::warn!("the audit announcement channel closed; reopening");
                }
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to audit announcements; retrying"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
