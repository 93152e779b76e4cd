use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Bumped in the same transaction as every role, assignment or group change; a
        // principal cached under an older epoch is recomputed on the next request.
        m.alter_table(Table::alter().table("workspaces").add_column(big_integer("permission_epoch").default(0)).to_owned()).await?;

        m.create_table(
            Table::create()
                .table("roles")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(string_len("name", 100))
                .col(string_len("name_key", 400))
                .col(text("description"))
                .col(string_len_null("builtin", 16))
                .col(integer("rank"))
                .col(uuid_null("parent_id"))
                .col(json("permissions"))
                .col(json("denies"))
                .col(json("scopes"))
                .col(json("fields"))
                .col(json("denied_fields"))
                .col(json("restrictions"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(ForeignKey::create().name("fk_roles_workspace").from("roles", "workspace_id").to("workspaces", "id"))
                .foreign_key(ForeignKey::create().name("fk_roles_parent").from("roles", "parent_id").to("roles", "id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ux_roles_workspace_name").table("roles").col("workspace_id").col("name_key").unique().to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("role_assignments")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(uuid("role_id"))
                .col(uuid_null("user_id"))
                .col(uuid_null("group_id"))
                .col(timestamp_with_time_zone_null("valid_from"))
                .col(timestamp_with_time_zone_null("valid_until"))
                .col(json("networks"))
                .col(boolean("require_two_factor"))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(ForeignKey::create().name("fk_ra_workspace").from("role_assignments", "workspace_id").to("workspaces", "id"))
                .foreign_key(ForeignKey::create().name("fk_ra_role").from("role_assignments", "role_id").to("roles", "id"))
                .foreign_key(ForeignKey::create().name("fk_ra_user").from("role_assignments", "user_id").to("users", "id"))
                .foreign_key(ForeignKey::create().name("fk_ra_group").from("role_assignments", "group_id").to("groups", "id"))
                .to_owned(),
        )
        .await?;
        for (name, col) in [("ix_ra_user", "user_id"), ("ix_ra_group", "group_id"), ("ix_ra_role", "role_id")] {
            m.create_index(Index::create().name(name).table("role_assignments").col("workspace_id").col(col).to_owned()).await?;
        }
        m.create_index(Index::create().name("ix_group_members_user").table("group_members").col("workspace_id").col("user_id").to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("role_assignments").to_owned()).await?;
        m.drop_table(Table::drop().table("roles").to_owned()).await?;
        m.alter_table(Table::alter().table("workspaces").drop_column("permission_epoch").to_owned()).await
    }
}
