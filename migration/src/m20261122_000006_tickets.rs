use crate::m20261122_000003_customers::{crm_indexes, crm_table};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            crm_table("tickets")
                .col(uuid_null("customer_id"))
                .col(string_len("subject", 200))
                .col(string_len("status", 16))
                .col(string_len("priority", 16))
                .col(text_null("description"))
                .col(text_null("internal_notes"))
                .foreign_key(ForeignKey::create().name("fk_tickets_customer").from("tickets", "customer_id").to("customers", "id"))
                .to_owned(),
        )
        .await?;
        crm_indexes(m, "tickets").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("tickets").to_owned()).await
    }
}
