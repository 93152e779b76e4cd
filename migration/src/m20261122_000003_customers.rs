use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns every CRM record carries: tenancy, placement (which scopes read) and
/// lifecycle. Scopes become SQL over these names, the same for every module.
pub fn crm_table(name: &'static str) -> TableCreateStatement {
    Table::create()
        .table(name)
        .col(pk_uuid("id"))
        .col(uuid("workspace_id"))
        .col(uuid("owner_id"))
        .col(uuid_null("department_id"))
        .col(uuid_null("team_id"))
        .col(uuid_null("group_id"))
        .col(uuid("created_by"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"))
        .col(timestamp_with_time_zone_null("deleted_at"))
        .foreign_key(ForeignKey::create().name(format!("fk_{name}_workspace")).from(name, "workspace_id").to("workspaces", "id"))
        .foreign_key(ForeignKey::create().name(format!("fk_{name}_owner")).from(name, "owner_id").to("users", "id"))
        .to_owned()
}

/// Indexes that serve each scope's condition.
pub async fn crm_indexes(m: &SchemaManager<'_>, name: &'static str) -> Result<(), DbErr> {
    for col in ["owner_id", "department_id", "team_id", "group_id"] {
        m.create_index(Index::create().name(format!("ix_{name}_{col}")).table(name).col("workspace_id").col(col).to_owned()).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            crm_table("customers")
                .col(string_len("name", 200))
                .col(string_len("status", 16))
                .col(string_len_null("email", 320))
                .col(string_len_null("phone", 64))
                .col(string_len_null("tax_id", 64))
                .col(text_null("notes"))
                .col(big_integer_null("credit_limit_cents"))
                .to_owned(),
        )
        .await?;
        crm_indexes(m, "customers").await?;
        m.create_index(Index::create().name("ix_customers_name").table("customers").col("workspace_id").col("name").to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("customers").to_owned()).await
    }
}
