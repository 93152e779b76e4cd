//! Impersonation records (master admins acting as workspace users).

use entity::impersonation;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

type Now = chrono::DateTime<chrono::Utc>;

pub async fn insert(db: &impl ConnectionTrait, m: impersonation::Model) -> Result<impersonation::Model, DbErr> {
    impersonation::ActiveModel {
        id: Set(m.id),
        workspace_id: Set(m.workspace_id),
        user_id: Set(m.user_id),
        admin_id: Set(m.admin_id),
        admin_email: Set(m.admin_email),
        reason: Set(m.reason),
        started_at: Set(m.started_at),
        expires_at: Set(m.expires_at),
        ended_at: Set(None),
        ended_by: Set(None),
        session_hash: Set(m.session_hash),
    }
    .insert(db)
    .await
}

/// One record, looked up without a workspace: only master admins (platform staff)
/// and the impersonation session itself reach this.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<impersonation::Model>, DbErr> {
    impersonation::Entity::find_by_id(id).one(db).await
}

/// The admin's impersonations that have not ended or run out by `now`.
pub async fn open_for_admin(db: &impl ConnectionTrait, admin_id: Uuid, now: Now) -> Result<Vec<impersonation::Model>, DbErr> {
    impersonation::Entity::find()
        .filter(impersonation::Column::AdminId.eq(admin_id))
        .filter(impersonation::Column::EndedAt.is_null())
        .filter(impersonation::Column::ExpiresAt.gt(now))
        .all(db)
        .await
}

/// Marks it ended; false if it had already ended.
pub async fn end(db: &impl ConnectionTrait, id: Uuid, by: Option<Uuid>, now: Now) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let res = impersonation::Entity::update_many()
        .col_expr(impersonation::Column::EndedAt, Expr::value(now))
        .col_expr(impersonation::Column::EndedBy, Expr::value(by))
        .filter(impersonation::Column::Id.eq(id))
        .filter(impersonation::Column::EndedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Newest first; `workspace_id` None lists every workspace's.
pub async fn list(db: &impl ConnectionTrait, workspace_id: Option<Uuid>, limit: u64) -> Result<Vec<impersonation::Model>, DbErr> {
    let mut q = impersonation::Entity::find();
    if let Some(w) = workspace_id {
        q = q.filter(impersonation::Column::WorkspaceId.eq(w));
    }
    q.order_by_desc(impersonation::Column::Id).limit(limit).all(db).await
}
