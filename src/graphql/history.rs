//! Record history, batched: every `history` field of a page asks one loader, which
//! reads the entries of all those records in one query. No cache: a history is never
//! served stale.

use super::audit::AuditEntry;
use crate::error::{AppError, AppResult};
use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use uuid::Uuid;

pub struct HistoryLoader {
    pub db: DatabaseConnection,
}

pub const PER_RECORD: usize = 50;

impl Loader<(Uuid, Uuid)> for HistoryLoader {
    type Value = Vec<entity::audit_entry::Model>;
    type Error = AppError;

    async fn load(&self, keys: &[(Uuid, Uuid)]) -> Result<HashMap<(Uuid, Uuid), Self::Value>, Self::Error> {
        let rows = crate::repo::audit::history_of(&self.db, keys, PER_RECORD).await?;
        let mut out: HashMap<(Uuid, Uuid), Self::Value> = HashMap::new();
        for r in rows {
            if let (Some(ws), Some(Ok(target))) = (r.workspace_id, r.target_id.as_deref().map(Uuid::parse_str)) {
                out.entry((ws, target)).or_default().push(r);
            }
        }
        Ok(out)
    }
}

pub fn loader(db: DatabaseConnection) -> DataLoader<HistoryLoader> {
    DataLoader::new(HistoryLoader { db }, tokio::spawn)
}

/// The history of one record of the caller's workspace (the record itself was already
/// read through the caller's reach): the entries the caller may read, masked by their
/// field access, like `auditLog`.
pub async fn of(ctx: &Context<'_>, workspace_id: Uuid, id: Uuid) -> AppResult<Vec<AuditEntry>> {
    let p = super::context::user(ctx)?;
    let loader = ctx.data::<DataLoader<HistoryLoader>>().map_err(|_| AppError::internal("history loader missing"))?;
    let rows = loader.load_one((workspace_id, id)).await?.unwrap_or_default();
    let visible = crate::service::audit::reader_filter(Default::default(), &p.grants);
    Ok(rows.into_iter().filter(|r| visible.matches(r)).map(|r| AuditEntry::project(crate::service::audit::masked(r, &p.grants))).collect())
}
