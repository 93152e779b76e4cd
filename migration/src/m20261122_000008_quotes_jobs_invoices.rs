use crate::m20261122_000003_customers::{crm_indexes, crm_table};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let customer_fk =
            |t: &'static str| ForeignKey::create().name(format!("fk_{t}_customer")).from(t, "customer_id").to("customers", "id").to_owned();
        m.create_table(
            crm_table("quotes")
                .col(uuid("customer_id"))
                .col(string_len("title", 200))
                .col(big_integer("amount_cents"))
                .col(string_len("status", 16))
                .foreign_key(&mut customer_fk("quotes"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            crm_table("jobs")
                .col(uuid_null("customer_id"))
                .col(string_len("title", 200))
                .col(string_len("status", 16))
                .col(timestamp_with_time_zone_null("scheduled_for"))
                .col(text_null("notes"))
                .foreign_key(&mut customer_fk("jobs"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            crm_table("invoices")
                .col(uuid("customer_id"))
                .col(string_len("number", 32))
                .col(big_integer("amount_cents"))
                .col(string_len("status", 16))
                .col(timestamp_with_time_zone_null("due_at"))
                .col(string_len_null("bank_details", 200))
                .foreign_key(&mut customer_fk("invoices"))
                .to_owned(),
        )
        .await?;
        for t in ["quotes", "jobs", "invoices"] {
            crm_indexes(m, t).await?;
        }
        m.create_index(
            Index::create().name("ux_invoices_workspace_number").table("invoices").col("workspace_id").col("number").unique().to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["invoices", "jobs", "quotes"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
