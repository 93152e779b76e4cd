use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub owner_id: Uuid,
    pub department_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
    /// Bumped by every change; updates and transitions are compare-and-set on it.
    pub version: i64,
    pub customer_id: Option<Uuid>,
    pub subject: String,
    /// open | pending | closed
    pub status: String,
    /// low | normal | high | urgent
    pub priority: String,
    pub description: Option<String>,
    pub internal_notes: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
