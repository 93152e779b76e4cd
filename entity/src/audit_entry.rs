use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_entries")]
pub struct Model {
    /// UUID v7: time ordered, so it doubles as the pagination key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// None for platform-level events (a master admin sign-in, an unknown workspace).
    pub workspace_id: Option<Uuid>,
    pub occurred_at: DateTimeUtc,
    /// user | master_admin | anonymous
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    pub actor_label: Option<String>,
    pub impersonator_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub module: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// `{ field: { before, after } }`, sensitive values already redacted.
    pub changes: Option<Json>,
    /// success | denied | failed
    pub outcome: String,
    pub error_code: Option<String>,
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
