//! Where a purged audit chain now starts (see `palisade::audit::chain`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_anchors")]
pub struct Model {
    /// The workspace id (hyphenated) or "platform".
    #[sea_orm(primary_key, auto_increment = false)]
    pub chain: String,
    /// Entries with `seq` up to this one were purged.
    pub seq: i64,
    /// The stored hash of entry `seq`: what the first remaining entry links to.
    pub hash: String,
    pub purged_at: DateTimeUtc,
    /// Entries purged from this chain so far, in all purges.
    pub purged_total: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
