//! Group commit for the entries requests write after they have read (`gate::audit_reads`):
//! an Owner's page of customers shows tax ids, and that read is on the record before the
//! page leaves. One transaction per request would serialise every such request of a
//! workspace on its chain's head and pay a commit each; here one task takes whatever
//! requests of a workspace are waiting, appends all their entries in one transaction
//! (one lock and one insert) and answers each of them when it has committed.
//!
//! Each chain (workspace) has its own writer task, started when needed and ended when
//! idle: one tenant's held chain never delays another's requests.
//!
//! Guarantees: a request is answered only after its entries are committed, or with an
//! error (it must then withhold what it read); one bad batch does not fail requests that
//! could be written alone (a failed batch is retried request by request); nothing waits
//! longer than it would behind a lone writer, since a batch is whatever queued while the
//! previous one was being written.

use entity::audit_entry::Model;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

/// At most this many requests' entries go into one transaction.
const MAX_BATCH: usize = 64;

/// A chain's writer ends after this long without work (and starts again when needed).
const IDLE: std::time::Duration = std::time::Duration::from_secs(30);

type Reply = oneshot::Sender<Result<Vec<Model>, DbErr>>;
type Job = (Vec<Model>, Reply);

/// The handle requests submit their entries to. Each chain (workspace) has a writer
/// of its own, so that a workspace whose chain head is held (a long import) delays only
/// its own requests, never another tenant's.
#[derive(Clone)]
pub struct GroupWriter {
    db: DatabaseConnection,
    lock: Option<Arc<Mutex<()>>>,
    chains: Arc<std::sync::Mutex<HashMap<Option<Uuid>, mpsc::Sender<Job>>>>,
}

impl GroupWriter {
    /// `lock` is SQLite's single-writer lock (None on PostgreSQL).
    pub fn new(db: DatabaseConnection, lock: Option<Arc<Mutex<()>>>) -> Self {
        Self { db, lock, chains: Default::default() }
    }

    /// Appends `entries` to their chains; returns them as stored once committed.
    pub async fn write(&self, entries: Vec<Model>) -> Result<Vec<Model>, DbErr> {
        let Some(chain) = entries.first().map(|e| e.workspace_id) else { return Ok(Vec::new()) };
        if entries.iter().any(|e| e.workspace_id != chain) {
            // Not one chain's: on its own (requests write to their own workspace).
            return commit(&self.db, self.lock.as_ref(), entries).await;
        }
        let (reply, answer) = oneshot::channel();
        let mut job = (entries, reply);
        loop {
            let queue = self.queue(chain);
            match queue.send(job).await {
                Ok(()) => break,
                // That writer ended while idle: forget it and start another.
                Err(mpsc::error::SendError(back)) => {
                    job = back;
                    let mut chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
                    if chains.get(&chain).is_some_and(|q| q.same_channel(&queue)) {
                        chains.remove(&chain);
                    }
                }
            }
        }
        answer.await.map_err(|_| DbErr::Custom("audit: the group writer dropped a request".into()))?
    }

    /// The queue of `chain`'s writer, started if it is not running.
    fn queue(&self, chain: Option<Uuid>) -> mpsc::Sender<Job> {
        let mut chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = chains.get(&chain).filter(|q| !q.is_closed()) {
            return q.clone();
        }
        let (jobs, mut queue) = mpsc::channel::<Job>(1024);
        let (db, lock) = (self.db.clone(), self.lock.clone());
        tokio::spawn(async move {
            while let Ok(Some(first)) = tokio::time::timeout(IDLE, queue.recv()).await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                write(&db, lock.as_ref(), batch).await;
            }
            // Idle: stop taking work; whatever was queued meanwhile is still written.
            queue.close();
            while let Some(job) = queue.recv().await {
                write(&db, lock.as_ref(), vec![job]).await;
            }
        });
        chains.insert(chain, jobs.clone());
        jobs
    }
}

async fn write(db: &DatabaseConnection, lock: Option<&Arc<Mutex<()>>>, batch: Vec<(Vec<Model>, Reply)>) {
    let all: Vec<Model> = batch.iter().flat_map(|(entries, _)| entries.iter().cloned()).collect();
    match commit(db, lock, all).await {
        Ok(mut stored) => {
            for (entries, reply) in batch {
                let rest = stored.split_off(entries.len());
                let _ = reply.send(Ok(std::mem::replace(&mut stored, rest)));
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some((_, reply)) = batch.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(_) => {
            // Whatever broke the batch, each request gets its own chance.
            for (entries, reply) in batch {
                let _ = reply.send(commit(db, lock, entries).await);
            }
        }
    }
}

async fn commit(db: &DatabaseConnection, lock: Option<&Arc<Mutex<()>>>, entries: Vec<Model>) -> Result<Vec<Model>, DbErr> {
    let _writer = super::writer::writer(lock, None).await;
    let txn = db.begin().await?;
    let stored = super::chain::append_all(&txn, entries).await?;
    txn.commit().await?;
    Ok(stored)
}
