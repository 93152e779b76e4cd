use entity::workspace;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

pub async fn by_slug(db: &impl ConnectionTrait, slug: &str) -> Result<Option<workspace::Model>, DbErr> {
    workspace::Entity::find().filter(workspace::Column::Slug.eq(slug)).one(db).await
}

pub async fn get(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<Option<workspace::Model>, DbErr> {
    workspace::Entity::find_by_id(workspace_id).one(db).await
}

pub struct NewWorkspace<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub seat_limit: i32,
    pub now: chrono::DateTime<chrono::Utc>,
}

pub async fn insert(db: &impl ConnectionTrait, w: NewWorkspace<'_>) -> Result<workspace::Model, DbErr> {
    workspace::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set(w.slug.to_owned()),
        name: Set(w.name.to_owned()),
        status: Set("active".into()),
        seat_limit: Set(w.seat_limit),
        permission_epoch: Set(0),
        security_settings: Set("{}".into()),
        created_at: Set(w.now),
        updated_at: Set(w.now),
        status_reason: Set(None),
        status_changed_at: Set(None),
        deleted_at: Set(None),
        support_access_staff: Set(true),
        support_access_owners: Set(false),
        audit_retention_days: Set(None),
    }
    .insert(db)
    .await
}

/// Every workspace that still exists (purged ones are gone), oldest first.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<workspace::Model>, DbErr> {
    use sea_orm::QueryOrder;
    workspace::Entity::find().order_by_asc(workspace::Column::Id).all(db).await
}

pub async fn set_audit_retention(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    days: Option<i32>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    workspace::Entity::update_many()
        .col_expr(workspace::Column::AuditRetentionDays, Expr::value(days))
        .col_expr(workspace::Column::UpdatedAt, Expr::value(now))
        .filter(workspace::Column::Id.eq(workspace_id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn set_support_access(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    staff: bool,
    owners: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    workspace::Entity::update_many()
        .col_expr(workspace::Column::SupportAccessStaff, Expr::value(staff))
        .col_expr(workspace::Column::SupportAccessOwners, Expr::value(owners))
        .col_expr(workspace::Column::UpdatedAt, Expr::value(now))
        .filter(workspace::Column::Id.eq(workspace_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Moves a workspace to `status` with the stated reason. `deleted_at` is set when it
/// is soft-deleted and cleared otherwise.
pub async fn set_status(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    status: crate::domain::WorkspaceStatus,
    reason: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let deleted_at = (status == crate::domain::WorkspaceStatus::Deleted).then_some(now);
    workspace::Entity::update_many()
        .col_expr(workspace::Column::Status, Expr::value(status.as_str()))
        .col_expr(workspace::Column::StatusReason, Expr::value(reason))
        .col_expr(workspace::Column::StatusChangedAt, Expr::value(now))
        .col_expr(workspace::Column::DeletedAt, Expr::value(deleted_at))
        .col_expr(workspace::Column::UpdatedAt, Expr::value(now))
        // Every session and grant decision cached under the old status is stale.
        .col_expr(workspace::Column::PermissionEpoch, Expr::col(workspace::Column::PermissionEpoch).add(1))
        .filter(workspace::Column::Id.eq(workspace_id))
        .exec(db)
        .await
        .map(|_| ())
}
