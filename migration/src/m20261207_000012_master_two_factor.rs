//! Master admins' mandatory second factor: their TOTP seed (sealed with the server key),
//! the last step used (so a code works once), when it was enrolled, and their recovery
//! codes (SHA-256 hashes, each usable once).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one column at a time.
        let add = |c: ColumnDef| Table::alter().table("master_admins").add_column(c).to_owned();
        m.alter_table(add(text_null("totp_secret"))).await?;
        m.alter_table(add(big_integer_null("totp_last_step"))).await?;
        m.alter_table(add(timestamp_with_time_zone_null("totp_enabled_at"))).await?;
        // A JSON array of hashes; replaced as a whole with a compare-and-set.
        m.alter_table(add(text("recovery_codes").default("[]").to_owned())).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for c in ["recovery_codes", "totp_enabled_at", "totp_last_step", "totp_secret"] {
            m.alter_table(Table::alter().table("master_admins").drop_column(c).to_owned()).await?;
        }
        Ok(())
    }
}
