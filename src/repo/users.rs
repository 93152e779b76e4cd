use entity::{user, workspace};
use sea_orm::sea_query::Condition;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

type Now = chrono::DateTime<chrono::Utc>;

/// The user a sign-in names, by username or email (both compared as folded keys).
pub async fn find_for_login(db: &impl ConnectionTrait, workspace_id: Uuid, login_key: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .filter(Condition::any().add(user::Column::UsernameKey.eq(login_key)).add(user::Column::EmailKey.eq(login_key)))
        .one(db)
        .await
}

pub async fn get(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(user_id).filter(user::Column::WorkspaceId.eq(workspace_id)).one(db).await
}

pub async fn get_with_workspace(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    user_id: Uuid,
) -> Result<Option<(user::Model, workspace::Model)>, DbErr> {
    use sea_orm::{JoinType, QuerySelect};
    // One round trip: the user's row with its workspace's.
    let to_workspace = user::Entity::belongs_to(workspace::Entity).from(user::Column::WorkspaceId).to(workspace::Column::Id).into();
    let found = user::Entity::find_by_id(user_id)
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .join(JoinType::InnerJoin, to_workspace)
        .select_also(workspace::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(u, w)| w.map(|w| (u, w))))
}

pub struct NewUser<'a> {
    pub username: &'a crate::domain::Username,
    pub email: &'a crate::domain::Email,
    pub display_name: &'a str,
    pub password_hash: Option<String>,
    pub builtin_role: crate::authz::builtin::BuiltinRole,
    pub department_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub primary_group_id: Option<Uuid>,
    pub active: bool,
    pub licensed: bool,
    pub licence_ends_at: Option<Now>,
    pub now: Now,
}

pub async fn insert(db: &impl ConnectionTrait, workspace_id: Uuid, u: NewUser<'_>) -> Result<user::Model, DbErr> {
    user::ActiveModel {
        id: Set(Uuid::now_v7()),
        workspace_id: Set(workspace_id),
        username: Set(u.username.display.clone()),
        username_key: Set(u.username.key.clone()),
        email: Set(u.email.display.clone()),
        email_key: Set(u.email.key.clone()),
        display_name: Set(u.display_name.to_owned()),
        phone: Set(None),
        active: Set(u.active),
        licensed: Set(u.licensed),
        licence_ends_at: Set(u.licence_ends_at),
        auth_method: Set("password".into()),
        password_hash: Set(u.password_hash),
        department_id: Set(u.department_id),
        team_id: Set(u.team_id),
        primary_group_id: Set(u.primary_group_id),
        builtin_role: Set(u.builtin_role.as_str().into()),
        last_login_at: Set(None),
        last_login_ip: Set(None),
        totp_secret: Set(None),
        totp_pending_secret: Set(None),
        totp_enabled_at: Set(None),
        totp_last_step: Set(None),
        security_override: Set(None),
        created_at: Set(u.now),
        updated_at: Set(u.now),
    }
    .insert(db)
    .await
}

pub async fn set_password_hash(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid, hash: String, now: Now) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, hash.into())
        .col_expr(user::Column::UpdatedAt, now.into())
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn record_login(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid, ip: Option<String>, now: Now) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::LastLoginAt, Some(now).into())
        .col_expr(user::Column::LastLoginIp, ip.into())
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Users whose primary group or other groups include `group_id`.
pub async fn in_group(db: &impl ConnectionTrait, workspace_id: Uuid, group_id: Uuid) -> Result<Vec<user::Model>, DbErr> {
    let members: Vec<Uuid> = entity::group_member::Entity::find()
        .filter(entity::group_member::Column::WorkspaceId.eq(workspace_id))
        .filter(entity::group_member::Column::GroupId.eq(group_id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .filter(Condition::any().add(user::Column::PrimaryGroupId.eq(group_id)).add(user::Column::Id.is_in(members)))
        .all(db)
        .await
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub search: Option<String>,
    pub active: Option<bool>,
    pub department_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
}

fn user_condition(workspace_id: Uuid, f: &UserFilter) -> Condition {
    use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
    let mut c = Condition::all().add(user::Column::WorkspaceId.eq(workspace_id));
    if let Some(s) = &f.search {
        let escaped = crate::domain::fold_key(s).replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        c =
            c.add(Condition::any().add(user::Column::UsernameKey.like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))).add(
                Expr::expr(Func::lower(Expr::col(user::Column::DisplayName))).like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
            ));
    }
    if let Some(a) = f.active {
        c = c.add(user::Column::Active.eq(a));
    }
    if let Some(d) = f.department_id {
        c = c.add(user::Column::DepartmentId.eq(d));
    }
    if let Some(t) = f.team_id {
        c = c.add(user::Column::TeamId.eq(t));
    }
    c
}

/// Users by sign-in name (see `seek`); `limit` one more than shown.
pub async fn list(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    f: &UserFilter,
    after: Option<&super::seek::Seek>,
    limit: u64,
) -> Result<Vec<user::Model>, DbErr> {
    use sea_orm::QuerySelect;
    let q = user::Entity::find().filter(user_condition(workspace_id, f));
    super::seek::apply(q, "users", USERS_ORDER, after).limit(limit).all(db).await
}

/// The users list's one order: by normalised username (unique in a workspace).
pub const USERS_ORDER: super::seek::Order = super::seek::Order::asc(super::seek::SortKey::Column("username_key"));

pub async fn count(db: &impl ConnectionTrait, workspace_id: Uuid, f: &UserFilter) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    user::Entity::find().filter(user_condition(workspace_id, f)).count(db).await
}

/// Users holding a seat: active and licensed.
pub async fn seats_used(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .filter(user::Column::Active.eq(true))
        .filter(user::Column::Licensed.eq(true))
        .count(db)
        .await
}

/// Writes the mutable fields of a user read in the same transaction.
pub async fn save(db: &impl ConnectionTrait, m: &user::Model) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    user::Entity::update_many()
        .col_expr(user::Column::DisplayName, Expr::value(m.display_name.clone()))
        .col_expr(user::Column::Email, Expr::value(m.email.clone()))
        .col_expr(user::Column::EmailKey, Expr::value(m.email_key.clone()))
        .col_expr(user::Column::Phone, Expr::value(m.phone.clone()))
        .col_expr(user::Column::Active, Expr::value(m.active))
        .col_expr(user::Column::Licensed, Expr::value(m.licensed))
        .col_expr(user::Column::LicenceEndsAt, Expr::value(m.licence_ends_at))
        .col_expr(user::Column::DepartmentId, Expr::value(m.department_id))
        .col_expr(user::Column::TeamId, Expr::value(m.team_id))
        .col_expr(user::Column::PrimaryGroupId, Expr::value(m.primary_group_id))
        .col_expr(user::Column::UpdatedAt, Expr::value(m.updated_at))
        .filter(user::Column::WorkspaceId.eq(m.workspace_id))
        .filter(user::Column::Id.eq(m.id))
        .exec(db)
        .await
        .map(|_| ())
}

/// The ids of every user of a workspace (to end their sessions).
pub async fn ids(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<Vec<Uuid>, DbErr> {
    use sea_orm::QuerySelect;
    user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .into_tuple()
        .all(db)
        .await
}

/// Every user of a workspace, by username (platform support).
pub async fn all(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<Vec<user::Model>, DbErr> {
    use sea_orm::QueryOrder;
    user::Entity::find().filter(user::Column::WorkspaceId.eq(workspace_id)).order_by_asc(user::Column::UsernameKey).all(db).await
}
