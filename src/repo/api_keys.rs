//! Partner API keys. Every lookup but `by_prefix` (authentication, before a workspace
//! is known) takes the workspace id.

use entity::api_key;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

type Now = chrono::DateTime<chrono::Utc>;

/// The key whose public prefix is `prefix`, in any workspace: authentication reads the
/// workspace from it, then checks the secret.
pub async fn by_prefix(db: &impl ConnectionTrait, prefix: &str) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find().filter(api_key::Column::Prefix.eq(prefix)).one(db).await
}

pub async fn get(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find_by_id(id).filter(api_key::Column::WorkspaceId.eq(workspace_id)).one(db).await
}

/// Every key of a workspace, newest first (revoked and expired ones too: they are the
/// record of who had access).
pub async fn list(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<Vec<api_key::Model>, DbErr> {
    api_key::Entity::find().filter(api_key::Column::WorkspaceId.eq(workspace_id)).order_by_desc(api_key::Column::Id).all(db).await
}

pub struct NewKey<'a> {
    pub name: &'a str,
    pub role_id: Uuid,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub created_by: Uuid,
    pub expires_at: Option<Now>,
    pub now: Now,
}

pub async fn insert(db: &impl ConnectionTrait, workspace_id: Uuid, k: NewKey<'_>) -> Result<api_key::Model, DbErr> {
    api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        workspace_id: Set(workspace_id),
        name: Set(k.name.to_owned()),
        role_id: Set(k.role_id),
        prefix: Set(k.prefix.to_owned()),
        secret_hash: Set(k.secret_hash.to_owned()),
        created_by: Set(k.created_by),
        created_at: Set(k.now),
        expires_at: Set(k.expires_at),
        revoked_at: Set(None),
        revoked_by: Set(None),
        last_used_at: Set(None),
        last_used_ip: Set(None),
    }
    .insert(db)
    .await
}

/// Marks a live key revoked; false if it was already revoked (or is not there).
pub async fn revoke(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid, by: Uuid, now: Now) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let res = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(now))
        .col_expr(api_key::Column::RevokedBy, Expr::value(by))
        .filter(api_key::Column::WorkspaceId.eq(workspace_id))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Records a use (throttled by the caller: this is not audited and not part of any
/// mutation).
pub async fn touch(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid, ip: Option<String>, now: Now) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
        .col_expr(api_key::Column::LastUsedIp, Expr::value(ip))
        .filter(api_key::Column::WorkspaceId.eq(workspace_id))
        .filter(api_key::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}
