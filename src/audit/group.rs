//! Group commit for the entries requests write after they have read (`gate::audit_reads`):
//! an Owner's page of customers shows tax ids, and that read is on the record before the
//! page leaves. One transaction per request would serialise every such request of a
//! workspace on its chain's head and pay a commit each; here one task takes whatever
//! requests are waiting, appends all their entries in one transaction (one lock and one
//! insert per chain) and answers each of them when it has committed.
//!
//! Guarantees: a request is answered only after its entries are committed, or with an
//! error (it must then withhold what it read); one bad batch does not fail requests that
//! could be written alone (a failed batch is retried request by request); nothing waits
//! longer than it would behind a lone writer, since a batch is whatever queued while the
//! previous one was being written.

use entity::audit_entry::Model;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// At most this many requests' entries go into one transaction.
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<Vec<Model>, DbErr>>;

/// The handle requests submit their entries to.
#[derive(Clone)]
pub struct GroupWriter {
    jobs: mpsc::Sender<(Vec<Model>, Reply)>,
}

impl GroupWriter {
    /// Starts the writing task. `lock` is SQLite's single-writer lock (None on
    /// PostgreSQL).
    pub fn start(db: DatabaseConnection, lock: Option<Arc<Mutex<()>>>) -> Self {
        let (jobs, mut queue) = mpsc::channel::<(Vec<Model>, Reply)>(1024);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                write(&db, lock.as_ref(), batch).await;
            }
        });
        Self { jobs }
    }

    /// Appends `entries` to their chains; returns them as stored once committed.
    pub async fn write(&self, entries: Vec<Model>) -> Result<Vec<Model>, DbErr> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send((entries, reply)).await.map_err(|_| DbErr::Custom("audit: the group writer has stopped".into()))?;
        answer.await.map_err(|_| DbErr::Custom("audit: the group writer dropped a request".into()))?
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
