use entity::master_admin;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

pub async fn by_email_key(db: &impl ConnectionTrait, email_key: &str) -> Result<Option<master_admin::Model>, DbErr> {
    master_admin::Entity::find().filter(master_admin::Column::EmailKey.eq(email_key)).one(db).await
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<master_admin::Model>, DbErr> {
    master_admin::Entity::find_by_id(id).one(db).await
}

pub async fn insert(
    db: &impl ConnectionTrait,
    email: &crate::domain::Email,
    password_hash: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<master_admin::Model, DbErr> {
    master_admin::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.display.clone()),
        email_key: Set(email.key.clone()),
        password_hash: Set(password_hash),
        active: Set(true),
        created_at: Set(now),
    }
    .insert(db)
    .await
}
