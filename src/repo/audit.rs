use entity::audit_entry;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

/// Written only through `audit::chain::append`, called by the gate's single writer
/// (see `graphql::gate::write_entry`).
pub(crate) async fn insert(db: &DatabaseTransaction, e: audit_entry::Model) -> Result<(), DbErr> {
    use sea_orm::ActiveValue::Set;
    let entry = audit_entry::ActiveModel {
        id: Set(e.id),
        workspace_id: Set(e.workspace_id),
        occurred_at: Set(e.occurred_at),
        actor_type: Set(e.actor_type),
        actor_id: Set(e.actor_id),
        actor_label: Set(e.actor_label),
        impersonator_id: Set(e.impersonator_id),
        ip: Set(e.ip),
        user_agent: Set(e.user_agent),
        request_id: Set(e.request_id),
        action: Set(e.action),
        module: Set(e.module),
        target_type: Set(e.target_type),
        target_id: Set(e.target_id),
        changes: Set(e.changes),
        outcome: Set(e.outcome),
        error_code: Set(e.error_code),
        reason: Set(e.reason),
        seq: Set(e.seq),
        prev_hash: Set(e.prev_hash),
        hash: Set(e.hash),
    };
    entry.insert(db).await.map(|_| ())
}

/// Entries of one hash chain: a workspace's, or (None) the platform chain.
fn chain(workspace_id: Option<Uuid>) -> Condition {
    use audit_entry::Column as C;
    let owner = match workspace_id {
        Some(w) => C::WorkspaceId.eq(w),
        None => C::WorkspaceId.is_null(),
    };
    Condition::all().add(owner).add(C::Seq.is_not_null())
}

/// Serialises appends to one chain until `db` commits or rolls back. PostgreSQL only:
/// on SQLite the single writer is serialised by the caller (`AppState::write_lock`).
pub(crate) async fn lock_chain(db: &DatabaseTransaction, namespace: i32, key: i32) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let stmt = Statement::from_sql_and_values(DbBackend::Postgres, "SELECT pg_advisory_xact_lock($1, $2)", [namespace.into(), key.into()]);
    db.execute_raw(stmt).await.map(|_| ())
}

/// The newest entry of a chain (highest `seq`).
pub(crate) async fn chain_head(db: &impl ConnectionTrait, workspace_id: Option<Uuid>) -> Result<Option<audit_entry::Model>, DbErr> {
    audit_entry::Entity::find().filter(chain(workspace_id)).order_by_desc(audit_entry::Column::Seq).one(db).await
}

/// The entry at `seq` of a chain.
pub(crate) async fn chain_entry(
    db: &impl ConnectionTrait,
    workspace_id: Option<Uuid>,
    seq: i64,
) -> Result<Option<audit_entry::Model>, DbErr> {
    audit_entry::Entity::find().filter(chain(workspace_id)).filter(audit_entry::Column::Seq.eq(seq)).one(db).await
}

/// Up to `limit` entries of a chain with `after` < seq <= `to`, in `seq` order.
pub(crate) async fn chain_page(
    db: &impl ConnectionTrait,
    workspace_id: Option<Uuid>,
    after: i64,
    to: i64,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    use audit_entry::Column as C;
    audit_entry::Entity::find()
        .filter(chain(workspace_id))
        .filter(C::Seq.gt(after))
        .filter(C::Seq.lte(to))
        .order_by_asc(C::Seq)
        .order_by_asc(C::Id)
        .limit(limit)
        .all(db)
        .await
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub module: Option<String>,
    pub outcome: Option<String>,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<String>,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

/// Newest first. `before` is the id of the last entry of the previous page (ids are
/// UUID v7, so id order is time order).
pub async fn list(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    f: &AuditFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    use audit_entry::Column as C;
    let mut q = audit_entry::Entity::find().filter(C::WorkspaceId.eq(workspace_id));
    if let Some(v) = &f.action {
        q = q.filter(C::Action.eq(v.as_str()));
    }
    if let Some(v) = &f.module {
        q = q.filter(C::Module.eq(v.as_str()));
    }
    if let Some(v) = &f.outcome {
        q = q.filter(C::Outcome.eq(v.as_str()));
    }
    if let Some(v) = f.actor_id {
        q = q.filter(C::ActorId.eq(v));
    }
    if let Some(v) = &f.target_id {
        q = q.filter(C::TargetId.eq(v.as_str()));
    }
    if let Some(v) = f.from {
        q = q.filter(C::OccurredAt.gte(v));
    }
    if let Some(v) = f.to {
        q = q.filter(C::OccurredAt.lt(v));
    }
    if let Some(b) = before {
        q = q.filter(C::Id.lt(b));
    }
    q.order_by_desc(C::Id).limit(limit).all(db).await
}

/// The newest entries (at most `per_record` each) about several records, by
/// (workspace, record id): one query for a whole page of records.
pub async fn history_of(db: &impl ConnectionTrait, keys: &[(Uuid, Uuid)], per_record: usize) -> Result<Vec<audit_entry::Model>, DbErr> {
    use audit_entry::Column as C;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let workspaces: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let targets: Vec<String> = keys.iter().map(|k| k.1.to_string()).collect();
    let rows = audit_entry::Entity::find()
        .filter(C::WorkspaceId.is_in(workspaces))
        .filter(C::TargetId.is_in(targets))
        .order_by_desc(C::Id)
        .all(db)
        .await?;
    let mut seen: std::collections::HashMap<(Option<Uuid>, Option<String>), usize> = std::collections::HashMap::new();
    Ok(rows
        .into_iter()
        .filter(|r| keys.iter().any(|k| Some(k.0) == r.workspace_id && r.target_id.as_deref() == Some(k.1.to_string().as_str())))
        .filter(|r| {
            let n = seen.entry((r.workspace_id, r.target_id.clone())).or_default();
            *n += 1;
            *n <= per_record
        })
        .collect())
}
