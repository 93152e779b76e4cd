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
    }
    .insert(db)
    .await
}
