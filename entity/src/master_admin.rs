use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "master_admins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email: String,
    #[sea_orm(unique)]
    pub email_key: String,
    pub password_hash: String,
    pub active: bool,
    pub created_at: DateTimeUtc,
    /// The TOTP seed, sealed with the server key (the admin id as associated data).
    pub totp_secret: Option<String>,
    pub totp_last_step: Option<i64>,
    pub totp_enabled_at: Option<DateTimeUtc>,
    /// JSON array of SHA-256 hashes of unused recovery codes.
    pub recovery_codes: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
