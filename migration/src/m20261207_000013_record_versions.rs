//! Every CRM record carries a version that each change bumps. Updates and transitions
//! are compare-and-set on it, and clients pass it back as `expectedVersion` so that a
//! save over someone else's newer change is refused instead of silently merged.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 8] = ["customers", "products", "orders", "payments", "quotes", "tickets", "jobs", "invoices"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            m.alter_table(Table::alter().table(t).add_column(big_integer("version").default(1).to_owned()).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            m.alter_table(Table::alter().table(t).drop_column("version").to_owned()).await?;
        }
        Ok(())
    }
}
