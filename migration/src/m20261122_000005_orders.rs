use crate::m20261122_000003_customers::{crm_indexes, crm_table};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            crm_table("orders")
                .col(uuid("customer_id"))
                .col(string_len("status", 16))
                .col(big_integer("total_cents"))
                .col(text_null("internal_notes"))
                .foreign_key(ForeignKey::create().name("fk_orders_customer").from("orders", "customer_id").to("customers", "id"))
                .to_owned(),
        )
        .await?;
        crm_indexes(m, "orders").await?;
        m.create_index(Index::create().name("ix_orders_customer").table("orders").col("workspace_id").col("customer_id").to_owned())
            .await?;
        m.create_table(
            Table::create()
                .table("order_lines")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(uuid("order_id"))
                .col(uuid("product_id"))
                .col(integer("quantity"))
                .col(big_integer("unit_price_cents"))
                .foreign_key(ForeignKey::create().name("fk_order_lines_order").from("order_lines", "order_id").to("orders", "id"))
                .foreign_key(ForeignKey::create().name("fk_order_lines_product").from("order_lines", "product_id").to("products", "id"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_order_lines_order").table("order_lines").col("workspace_id").col("order_id").to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("order_lines").to_owned()).await?;
        m.drop_table(Table::drop().table("orders").to_owned()).await
    }
}
