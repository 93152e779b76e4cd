use crate::m20261122_000003_customers::{crm_indexes, crm_table};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            crm_table("products")
                .col(string_len("name", 200))
                .col(string_len("sku", 64))
                .col(big_integer("price_cents"))
                .col(big_integer_null("cost_price_cents"))
                .col(string_len_null("supplier", 200))
                .col(integer("stock"))
                .col(boolean("active"))
                .to_owned(),
        )
        .await?;
        crm_indexes(m, "products").await?;
        m.create_index(
            Index::create().name("ux_products_workspace_sku").table("products").col("workspace_id").col("sku").unique().to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("products").to_owned()).await
    }
}
