use crate::m20261122_000003_customers::{crm_indexes, crm_table};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            crm_table("payments")
                .col(uuid_null("order_id"))
                .col(big_integer("amount_cents"))
                .col(string_len("method", 16))
                .col(string_len("status", 16))
                .col(string_len_null("reference", 100))
                .col(string_len_null("card_last4", 4))
                .col(string_len_null("iban", 34))
                .col(string_len_null("payer_email", 320))
                .foreign_key(ForeignKey::create().name("fk_payments_order").from("payments", "order_id").to("orders", "id"))
                .to_owned(),
        )
        .await?;
        crm_indexes(m, "payments").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("payments").to_owned()).await
    }
}
