//! Hash-chains the audit log: each entry gets its chain's next sequence number, the
//! previous entry's hash and its own hash (see `palisade::audit::chain`). Entries written
//! before this migration keep `seq` NULL and stay outside the chain.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one column at a time.
        m.alter_table(Table::alter().table("audit_entries").add_column(big_integer_null("seq")).to_owned()).await?;
        m.alter_table(Table::alter().table("audit_entries").add_column(text_null("prev_hash")).to_owned()).await?;
        m.alter_table(Table::alter().table("audit_entries").add_column(text_null("hash")).to_owned()).await?;
        // A backstop behind the per-chain write serialisation: two entries can never take
        // the same place in a chain. Also the index the chain head and verification read.
        m.create_index(
            Index::create().name("ux_audit_entries_chain_seq").table("audit_entries").col("workspace_id").col("seq").unique().to_owned(),
        )
        .await?;
        // NULLs are distinct in a unique index, so the platform chain (no workspace) needs
        // its own (partial) index. Same syntax on SQLite and PostgreSQL.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_audit_entries_platform_seq ON audit_entries (seq) WHERE workspace_id IS NULL AND seq IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ux_audit_entries_platform_seq").table("audit_entries").to_owned()).await?;
        m.drop_index(Index::drop().name("ux_audit_entries_chain_seq").table("audit_entries").to_owned()).await?;
        for c in ["hash", "prev_hash", "seq"] {
            m.alter_table(Table::alter().table("audit_entries").drop_column(c).to_owned()).await?;
        }
        Ok(())
    }
}
