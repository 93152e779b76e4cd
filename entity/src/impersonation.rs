//! A master admin acting as a workspace user, with the stated reason.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "impersonations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub admin_id: Uuid,
    pub admin_email: String,
    pub reason: String,
    pub started_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    /// Who ended it early (the admin, or the user revoking the session); None when it
    /// ran out.
    pub ended_by: Option<Uuid>,
    /// Store key of the impersonation session (SHA-256 of its token).
    pub session_hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
