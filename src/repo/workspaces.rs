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

/// Tables holding a workspace's rows, children before the tables they point to.
const PURGE_ORDER: &[&str] = &[
    "order_lines",
    "payments",
    "tickets",
    "quotes",
    "jobs",
    "invoices",
    "orders",
    "products",
    "customers",
    "role_assignments",
    "api_keys",
    "impersonations",
    "recovery_codes",
    "login_footprints",
    "group_members",
    "users",
    "roles",
    "groups",
    "teams",
    "departments",
    "audit_entries",
];

/// Deletes a workspace and every row that belongs to it, in one transaction (the
/// caller's). Returns how many rows went.
pub async fn purge(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let mut total = 0;
    // Roles point at their parents: cut those links first so the order of deletion
    // within the table cannot matter.
    let unlink = Query::update()
        .table("roles")
        .values([("parent_id", Option::<Uuid>::None.into())])
        .and_where(Expr::col("workspace_id").eq(workspace_id))
        .to_owned();
    db.execute(&unlink).await?;
    for table in PURGE_ORDER {
        let stmt = Query::delete().from_table(*table).and_where(Expr::col("workspace_id").eq(workspace_id)).to_owned();
        total += db.execute(&stmt).await?.rows_affected();
    }
    let anchor = Query::delete()
        .from_table("audit_anchors")
        .and_where(Expr::col("chain").eq(super::audit::chain_name(Some(workspace_id))))
        .to_owned();
    db.execute(&anchor).await?;
    total += workspace::Entity::delete_by_id(workspace_id).exec(db).await?.rows_affected;
    Ok(total)
}
