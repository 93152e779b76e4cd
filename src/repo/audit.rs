use entity::audit_entry;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

fn active(e: audit_entry::Model) -> audit_entry::ActiveModel {
    use sea_orm::ActiveValue::Set;
    audit_entry::ActiveModel {
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
    }
}

/// Written only through `audit::chain::append`, called by the gate's single writer
/// (see `audit::writer::write_entry`).
pub(crate) async fn insert(db: &DatabaseTransaction, e: audit_entry::Model) -> Result<(), DbErr> {
    active(e).insert(db).await.map(|_| ())
}

/// Several entries in one statement (`audit::chain::append_many`).
pub(crate) async fn insert_many(db: &DatabaseTransaction, entries: Vec<audit_entry::Model>) -> Result<(), DbErr> {
    if entries.is_empty() {
        return Ok(());
    }
    audit_entry::Entity::insert_many(entries.into_iter().map(active)).exec_without_returning(db).await.map(|_| ())
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

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub module: Option<String>,
    pub outcome: Option<String>,
    pub actor_id: Option<Uuid>,
    pub impersonator_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// The modules the reader may see (`authz::catalog::audit_visibility`); None only
    /// for readers outside every workspace (master admins on the platform log).
    pub visible_modules: Option<Vec<String>>,
}

impl AuditFilter {
    /// The same conditions as `condition`, for one entry in memory (live streams).
    pub fn matches(&self, e: &audit_entry::Model) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let eq_opt = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
        eq(&self.action, &e.action)
            && eq(&self.module, &e.module)
            && eq(&self.outcome, &e.outcome)
            && self.actor_id.is_none_or(|a| e.actor_id == Some(a))
            && self.impersonator_id.is_none_or(|a| e.impersonator_id == Some(a))
            && eq_opt(&self.target_type, &e.target_type)
            && eq_opt(&self.target_id, &e.target_id)
            && self.from.is_none_or(|f| e.occurred_at >= f)
            && self.to.is_none_or(|t| e.occurred_at < t)
            && self.visible_modules.as_ref().is_none_or(|v| v.iter().any(|m| m == &e.module))
    }

    fn condition(&self) -> Condition {
        use audit_entry::Column as C;
        let mut c = Condition::all();
        if let Some(v) = &self.action {
            c = c.add(C::Action.eq(v.as_str()));
        }
        if let Some(v) = &self.module {
            c = c.add(C::Module.eq(v.as_str()));
        }
        if let Some(v) = &self.outcome {
            c = c.add(C::Outcome.eq(v.as_str()));
        }
        if let Some(v) = self.actor_id {
            c = c.add(C::ActorId.eq(v));
        }
        if let Some(v) = self.impersonator_id {
            c = c.add(C::ImpersonatorId.eq(v));
        }
        if let Some(v) = &self.target_type {
            c = c.add(C::TargetType.eq(v.as_str()));
        }
        if let Some(v) = &self.target_id {
            c = c.add(C::TargetId.eq(v.as_str()));
        }
        if let Some(v) = self.from {
            c = c.add(C::OccurredAt.gte(v));
        }
        if let Some(v) = self.to {
            c = c.add(C::OccurredAt.lt(v));
        }
        if let Some(v) = &self.visible_modules {
            c = c.add(C::Module.is_in(v.iter().map(String::as_str)));
        }
        c
    }
}

/// Newest first. `before` is the id of the last entry of the previous page (ids are
/// UUID v7, so id order is time order). `workspace_id` None lists the platform log.
pub async fn list(
    db: &impl ConnectionTrait,
    workspace_id: Option<Uuid>,
    f: &AuditFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    use audit_entry::Column as C;
    let owner = match workspace_id {
        Some(w) => C::WorkspaceId.eq(w),
        None => C::WorkspaceId.is_null(),
    };
    let mut q = audit_entry::Entity::find().filter(owner).filter(f.condition());
    if let Some(b) = before {
        q = q.filter(C::Id.lt(b));
    }
    q.order_by_desc(C::Id).limit(limit).all(db).await
}

/// How many entries of a workspace match `f`.
pub async fn count(db: &impl ConnectionTrait, workspace_id: Uuid, f: &AuditFilter) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    audit_entry::Entity::find().filter(audit_entry::Column::WorkspaceId.eq(workspace_id)).filter(f.condition()).count(db).await
}

/// Up to `limit` entries of a workspace's chain after `after_seq`, in chain order (for
/// streams resuming from a cursor). Unfiltered: the caller decides what it may show, and
/// its position moves past what it may not.
pub async fn chain_after(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    after_seq: i64,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    use audit_entry::Column as C;
    audit_entry::Entity::find()
        .filter(chain(Some(workspace_id)))
        .filter(C::Seq.gt(after_seq))
        .order_by_asc(C::Seq)
        .limit(limit)
        .all(db)
        .await
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

/// Where a purged chain starts now (None: nothing was ever purged from it).
pub(crate) async fn anchor(db: &impl ConnectionTrait, chain_key: &str) -> Result<Option<entity::audit_anchor::Model>, DbErr> {
    entity::audit_anchor::Entity::find_by_id(chain_key.to_owned()).one(db).await
}

pub(crate) async fn save_anchor(db: &DatabaseTransaction, a: entity::audit_anchor::Model) -> Result<(), DbErr> {
    use sea_orm::ActiveValue::Set;
    let exists = anchor(db, &a.chain).await?.is_some();
    let model = entity::audit_anchor::ActiveModel {
        chain: Set(a.chain),
        seq: Set(a.seq),
        hash: Set(a.hash),
        purged_at: Set(a.purged_at),
        purged_total: Set(a.purged_total),
    };
    if exists {
        model.update(db).await?;
    } else {
        model.insert(db).await?;
    }
    Ok(())
}

/// The lowest `seq` of a chain written at or after `since` (the first entry a purge
/// keeps).
pub(crate) async fn first_seq_since(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Option<i64>, DbErr> {
    use audit_entry::Column as C;
    let row =
        audit_entry::Entity::find().filter(chain(Some(workspace_id))).filter(C::OccurredAt.gte(since)).order_by_asc(C::Seq).one(db).await?;
    Ok(row.and_then(|r| r.seq))
}

/// Deletes a workspace's chain entries up to `through` (inclusive), and its entries
/// from before the chain existed that are older than `before`. Returns how many went.
pub(crate) async fn delete_through(
    db: &DatabaseTransaction,
    workspace_id: Uuid,
    through: i64,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbErr> {
    use audit_entry::Column as C;
    let chained = audit_entry::Entity::delete_many().filter(chain(Some(workspace_id))).filter(C::Seq.lte(through)).exec(db).await?;
    let unchained = audit_entry::Entity::delete_many()
        .filter(C::WorkspaceId.eq(workspace_id))
        .filter(C::Seq.is_null())
        .filter(C::OccurredAt.lt(before))
        .exec(db)
        .await?;
    Ok(chained.rows_affected + unchained.rows_affected)
}

/// The newest entry of a chain with this action (the last purge record).
pub(crate) async fn latest_with_action(
    db: &impl ConnectionTrait,
    workspace_id: Option<Uuid>,
    action: &str,
) -> Result<Option<audit_entry::Model>, DbErr> {
    audit_entry::Entity::find()
        .filter(chain(workspace_id))
        .filter(audit_entry::Column::Action.eq(action))
        .order_by_desc(audit_entry::Column::Seq)
        .one(db)
        .await
}

/// The name of a workspace's audit chain (its id), or `platform` for the platform log.
pub fn chain_name(workspace_id: Option<Uuid>) -> String {
    match workspace_id {
        Some(w) => w.to_string(),
        None => "platform".to_owned(),
    }
}
