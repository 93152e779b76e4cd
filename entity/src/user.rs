use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// As typed at creation, for display.
    pub username: String,
    /// NFKC + case folded; unique per workspace.
    pub username_key: String,
    pub email: String,
    /// Lower-cased; unique per workspace so that signing in by email is unambiguous.
    pub email_key: String,
    pub display_name: String,
    pub phone: Option<String>,
    pub active: bool,
    pub licensed: bool,
    pub licence_ends_at: Option<DateTimeUtc>,
    /// password | identity_provider
    pub auth_method: String,
    pub password_hash: Option<String>,
    pub department_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub primary_group_id: Option<Uuid>,
    /// The built-in role this user was created for (owner | manager | staff | guest).
    pub builtin_role: String,
    pub last_login_at: Option<DateTimeUtc>,
    pub last_login_ip: Option<String>,
    /// Sealed with the server key; never leaves the server.
    pub totp_secret: Option<String>,
    pub totp_pending_secret: Option<String>,
    pub totp_enabled_at: Option<DateTimeUtc>,
    pub totp_last_step: Option<i64>,
    /// JSON of `auth::policy::SecurityOverride`, or none.
    pub security_override: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
