//! Departments, teams and groups: the organisation that scopes will be built on.
use entity::{department, group, group_member, team};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

type Now = chrono::DateTime<chrono::Utc>;

pub async fn insert_department(db: &impl ConnectionTrait, workspace_id: Uuid, name: &str, now: Now) -> Result<department::Model, DbErr> {
    department::ActiveModel { id: Set(Uuid::now_v7()), workspace_id: Set(workspace_id), name: Set(name.into()), created_at: Set(now) }
        .insert(db)
        .await
}

pub async fn insert_team(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    department_id: Option<Uuid>,
    name: &str,
    now: Now,
) -> Result<team::Model, DbErr> {
    team::ActiveModel {
        id: Set(Uuid::now_v7()),
        workspace_id: Set(workspace_id),
        department_id: Set(department_id),
        name: Set(name.into()),
        created_at: Set(now),
    }
    .insert(db)
    .await
}

pub async fn insert_group(db: &impl ConnectionTrait, workspace_id: Uuid, name: &str, now: Now) -> Result<group::Model, DbErr> {
    group::ActiveModel { id: Set(Uuid::now_v7()), workspace_id: Set(workspace_id), name: Set(name.into()), created_at: Set(now) }
        .insert(db)
        .await
}

pub async fn add_member(db: &impl ConnectionTrait, workspace_id: Uuid, group_id: Uuid, user_id: Uuid) -> Result<(), DbErr> {
    group_member::ActiveModel { group_id: Set(group_id), user_id: Set(user_id), workspace_id: Set(workspace_id) }
        .insert(db)
        .await
        .map(|_| ())
}

pub async fn department(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid) -> Result<Option<department::Model>, DbErr> {
    department::Entity::find_by_id(id).filter(department::Column::WorkspaceId.eq(workspace_id)).one(db).await
}

pub async fn team(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid) -> Result<Option<team::Model>, DbErr> {
    team::Entity::find_by_id(id).filter(team::Column::WorkspaceId.eq(workspace_id)).one(db).await
}

pub async fn groups_of(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid) -> Result<Vec<group::Model>, DbErr> {
    let ids: Vec<Uuid> = group_member::Entity::find()
        .filter(group_member::Column::WorkspaceId.eq(workspace_id))
        .filter(group_member::Column::UserId.eq(user_id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.group_id)
        .collect();
    group::Entity::find().filter(group::Column::WorkspaceId.eq(workspace_id)).filter(group::Column::Id.is_in(ids)).all(db).await
}

pub async fn group(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid) -> Result<Option<group::Model>, DbErr> {
    group::Entity::find_by_id(id).filter(group::Column::WorkspaceId.eq(workspace_id)).one(db).await
}

pub async fn departments(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<Vec<department::Model>, DbErr> {
    use sea_orm::QueryOrder;
    department::Entity::find().filter(department::Column::WorkspaceId.eq(workspace_id)).order_by_asc(department::Column::Name).all(db).await
}

pub async fn teams(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<Vec<team::Model>, DbErr> {
    use sea_orm::QueryOrder;
    team::Entity::find().filter(team::Column::WorkspaceId.eq(workspace_id)).order_by_asc(team::Column::Name).all(db).await
}

pub async fn groups(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<Vec<group::Model>, DbErr> {
    use sea_orm::QueryOrder;
    group::Entity::find().filter(group::Column::WorkspaceId.eq(workspace_id)).order_by_asc(group::Column::Name).all(db).await
}

/// Replaces a user's other-group memberships.
pub async fn set_memberships(db: &impl ConnectionTrait, workspace_id: Uuid, user_id: Uuid, group_ids: &[Uuid]) -> Result<(), DbErr> {
    group_member::Entity::delete_many()
        .filter(group_member::Column::WorkspaceId.eq(workspace_id))
        .filter(group_member::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    for g in group_ids {
        add_member(db, workspace_id, *g, user_id).await?;
    }
    Ok(())
}

/// Other-group memberships of several users at once.
pub async fn memberships_of(db: &impl ConnectionTrait, workspace_id: Uuid, user_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(group_member::Entity::find()
        .filter(group_member::Column::WorkspaceId.eq(workspace_id))
        .filter(group_member::Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.user_id, m.group_id))
        .collect())
}
