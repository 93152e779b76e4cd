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
    /// Place in the entry's chain (one chain per workspace, one for platform entries),
    /// from 1 without gaps. None for entries written before the log was chained.
    pub seq: Option<i64>,
    /// The previous entry's `hash` (the genesis value for `seq` 1).
    pub prev_hash: Option<String>,
    /// Lowercase hex SHA-256 over `prev_hash` and the entry's canonical encoding; see
    /// `palisade::audit::chain`.
    pub hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
