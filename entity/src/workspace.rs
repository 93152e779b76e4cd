use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workspaces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    /// active | suspended | archived | deleted
    pub status: String,
    pub seat_limit: i32,
    pub permission_epoch: i64,
    /// JSON of `auth::policy::SecuritySettings`.
    pub security_settings: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Why the status last changed (a master admin's stated reason).
    pub status_reason: Option<String>,
    pub status_changed_at: Option<DateTimeUtc>,
    /// Set while soft-deleted; purging is allowed once the retention period has passed.
    pub deleted_at: Option<DateTimeUtc>,
    /// Whether master admins may impersonate staff below Owner rank.
    pub support_access_staff: bool,
    /// Whether master admins may impersonate Owners.
    pub support_access_owners: bool,
    /// Days audit entries are kept; None: the server default.
    pub audit_retention_days: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
