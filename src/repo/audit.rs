use entity::audit_entry;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// Written only by the mutation gate (see `graphql::gate`).
pub(crate) async fn insert(db: &impl ConnectionTrait, entry: audit_entry::ActiveModel) -> Result<(), DbErr> {
    entry.insert(db).await.map(|_| ())
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
