//! Indexes that let every list page walk an index range instead of sorting the
//! workspace: `(workspace_id, <sort key>, id)` over live rows, for each order a list
//! offers (creation is the v7 id; update time; and the customers' and products' own
//! keys). The assigned scope (staff who see their own records) gets
//! `(workspace_id, owner_id, id)` so that its newest-first pages do not scan others'.
//!
//! Partial indexes (`WHERE deleted_at IS NULL`) match the scope condition every list
//! carries, and are the same SQL on SQLite and PostgreSQL. The credit-limit key must
//! stay the expression `repo::seek` sorts by.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 8] = ["customers", "products", "orders", "payments", "quotes", "tickets", "jobs", "invoices"];

fn indexes() -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    for t in TABLES {
        out.push((format!("ix_{t}_live_id"), t, "workspace_id, id".to_owned()));
        out.push((format!("ix_{t}_live_updated"), t, "workspace_id, updated_at, id".to_owned()));
        out.push((format!("ix_{t}_live_owner"), t, "workspace_id, owner_id, id".to_owned()));
    }
    out.push(("ix_customers_live_name".to_owned(), "customers", "workspace_id, name, id".to_owned()));
    out.push(("ix_customers_live_credit".to_owned(), "customers", "workspace_id, (COALESCE(\"credit_limit_cents\", -1)), id".to_owned()));
    out.push(("ix_products_live_name".to_owned(), "products", "workspace_id, name, id".to_owned()));
    out
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for (name, table, cols) in indexes() {
            db.execute_unprepared(&format!("CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols}) WHERE deleted_at IS NULL")).await?;
        }
        // Superseded by the live (workspace_id, name, id) index.
        m.drop_index(Index::drop().name("ix_customers_name").table("customers").to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(Index::create().name("ix_customers_name").table("customers").col("workspace_id").col("name").to_owned()).await?;
        for (name, table, _) in indexes() {
            m.drop_index(Index::drop().name(name).table(table).to_owned()).await?;
        }
        Ok(())
    }
}
