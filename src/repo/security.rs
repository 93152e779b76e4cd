//! Account-security rows: workspace settings, per-user overrides, TOTP seeds, recovery
//! codes and sign-in footprints. Every call takes the workspace id.

use entity::{login_footprint, recovery_code, user, workspace};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

type Now = chrono::DateTime<chrono::Utc>;

pub async fn set_workspace_settings(db: &impl ConnectionTrait, workspace_id: Uuid, json: String, now: Now) -> Result<(), DbErr> {
    workspace::Entity::update_many()
        .col_expr(workspace::Column::SecuritySettings, Expr::value(json))
        .col_expr(workspace::Column::UpdatedAt, Expr::value(now))
        .filter(workspace::Column::Id.eq(workspace_id))
        .exec(db)
        .await
        .map(|_| ())
}

fn user_update(workspace_id: Uuid, user_id: Uuid) -> sea_orm::UpdateMany<user::Entity> {
    user::Entity::update_many().filter(user::Column::WorkspaceId.eq(workspace_id)).filter(user::Column::Id.eq(user_id))
}

pub async fn set_override(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    user_id: Uuid,
    json: Option<String>,
    now: Now,
) -> Result<(), DbErr> {
    user_update(workspace_id, user_id)
        .col_expr(user::Column::SecurityOverride, Expr::value(json))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn users_with_overrides(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<Vec<user::Model>, DbErr> {
    use sea_orm::QueryOrder;
    user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .filter(user::Column::SecurityOverride.is_not_null())
        .order_by_asc(user::Column::UsernameKey)
        .all(db)
        .await
}

pub async fn set_totp_pending(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid, sealed: Option<String>) -> Result<(), DbErr> {
    user_update(workspace_id, user_id).col_expr(user::Column::TotpPendingSecret, Expr::value(sealed)).exec(db).await.map(|_| ())
}

/// Makes the pending seed the enrolled one; the step that confirmed it is spent.
pub async fn enable_totp(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    user_id: Uuid,
    sealed: String,
    step: u64,
    now: Now,
) -> Result<(), DbErr> {
    user_update(workspace_id, user_id)
        .col_expr(user::Column::TotpSecret, Expr::value(Some(sealed)))
        .col_expr(user::Column::TotpPendingSecret, Expr::value(Option::<String>::None))
        .col_expr(user::Column::TotpEnabledAt, Expr::value(Some(now)))
        .col_expr(user::Column::TotpLastStep, Expr::value(Some(i64::try_from(step).unwrap_or(i64::MAX))))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn disable_totp(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid, now: Now) -> Result<(), DbErr> {
    user_update(workspace_id, user_id)
        .col_expr(user::Column::TotpSecret, Expr::value(Option::<String>::None))
        .col_expr(user::Column::TotpPendingSecret, Expr::value(Option::<String>::None))
        .col_expr(user::Column::TotpEnabledAt, Expr::value(Option::<Now>::None))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .exec(db)
        .await
        .map(|_| ())
}

/// Spends a TOTP step: true only for the one caller that moved the last-used step
/// forward, so two concurrent uses of one code cannot both pass.
pub async fn claim_totp_step(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid, step: u64) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Condition;
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let res = user_update(workspace_id, user_id)
        .filter(Condition::any().add(user::Column::TotpLastStep.is_null()).add(user::Column::TotpLastStep.lt(step)))
        .col_expr(user::Column::TotpLastStep, Expr::value(Some(step)))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Replaces the user's recovery codes with a new set (the old ones stop working).
pub async fn replace_recovery_codes(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    user_id: Uuid,
    hashes: Vec<String>,
    now: Now,
) -> Result<(), DbErr> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::WorkspaceId.eq(workspace_id))
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    let rows = hashes.into_iter().map(|h| recovery_code::ActiveModel {
        id: Set(Uuid::now_v7()),
        workspace_id: Set(workspace_id),
        user_id: Set(user_id),
        code_hash: Set(h),
        created_at: Set(now),
        used_at: Set(None),
    });
    recovery_code::Entity::insert_many(rows).exec(db).await.map(|_| ())
}

/// Spends a recovery code; true only if it existed unused (and only for one caller).
pub async fn use_recovery_code(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid, hash: &str, now: Now) -> Result<bool, DbErr> {
    let res = recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Expr::value(Some(now)))
        .filter(recovery_code::Column::WorkspaceId.eq(workspace_id))
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::CodeHash.eq(hash))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn unused_recovery_codes(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid) -> Result<u64, DbErr> {
    recovery_code::Entity::find()
        .filter(recovery_code::Column::WorkspaceId.eq(workspace_id))
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::UsedAt.is_null())
        .count(db)
        .await
}

pub async fn has_footprints(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid) -> Result<bool, DbErr> {
    Ok(login_footprint::Entity::find()
        .filter(login_footprint::Column::WorkspaceId.eq(workspace_id))
        .filter(login_footprint::Column::UserId.eq(user_id))
        .count(db)
        .await?
        > 0)
}

pub async fn knows_footprint(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid, kind: &str, hash: &str) -> Result<bool, DbErr> {
    Ok(login_footprint::Entity::find()
        .filter(login_footprint::Column::WorkspaceId.eq(workspace_id))
        .filter(login_footprint::Column::UserId.eq(user_id))
        .filter(login_footprint::Column::Kind.eq(kind))
        .filter(login_footprint::Column::ValueHash.eq(hash))
        .count(db)
        .await?
        > 0)
}

pub async fn remember_footprint(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    user_id: Uuid,
    kind: &str,
    hash: &str,
    now: Now,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::OnConflict;
    // Concurrent first sign-ins may record the same footprint: the second insert is a
    // no-op instead of a unique violation (which would abort a PostgreSQL transaction).
    let row = login_footprint::ActiveModel {
        id: Set(Uuid::now_v7()),
        workspace_id: Set(workspace_id),
        user_id: Set(user_id),
        kind: Set(kind.to_owned()),
        value_hash: Set(hash.to_owned()),
        first_seen_at: Set(now),
        last_seen_at: Set(now),
    };
    let inserted = login_footprint::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([login_footprint::Column::UserId, login_footprint::Column::Kind, login_footprint::Column::ValueHash])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if inserted == 0 {
        login_footprint::Entity::update_many()
            .col_expr(login_footprint::Column::LastSeenAt, Expr::value(now))
            .filter(login_footprint::Column::WorkspaceId.eq(workspace_id))
            .filter(login_footprint::Column::UserId.eq(user_id))
            .filter(login_footprint::Column::Kind.eq(kind))
            .filter(login_footprint::Column::ValueHash.eq(hash))
            .exec(db)
            .await?;
    }
    Ok(())
}
