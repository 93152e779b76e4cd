use sea_orm::entity::prelude::*;

/// A role: what its holders may do. The grant columns are JSON in the catalog's own
/// vocabulary (`"customers.read"`, `{"customers": "team"}`, `{"customer.email": "masked"}`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "roles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub name_key: String,
    pub description: String,
    /// owner | manager | staff | guest for the built-in roles.
    pub builtin: Option<String>,
    pub rank: i32,
    pub parent_id: Option<Uuid>,
    pub permissions: Json,
    pub denies: Json,
    pub scopes: Json,
    pub fields: Json,
    pub denied_fields: Json,
    pub restrictions: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
