use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn ts(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone(name)
}

fn fk(table: &'static str, col: &'static str, to: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create().name(format!("fk_{table}_{col}")).from(table, col).to(to, "id").on_delete(ForeignKeyAction::Restrict).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("workspaces")
                .col(pk_uuid("id"))
                .col(string_len_uniq("slug", 64))
                .col(string_len("name", 200))
                .col(string_len("status", 16))
                .col(integer("seat_limit"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("departments")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(string_len("name", 200))
                .col(ts("created_at"))
                .foreign_key(&mut fk("departments", "workspace_id", "workspaces"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("teams")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(uuid_null("department_id"))
                .col(string_len("name", 200))
                .col(ts("created_at"))
                .foreign_key(&mut fk("teams", "workspace_id", "workspaces"))
                .foreign_key(&mut fk("teams", "department_id", "departments"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("groups")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(string_len("name", 200))
                .col(ts("created_at"))
                .foreign_key(&mut fk("groups", "workspace_id", "workspaces"))
                .to_owned(),
        )
        .await?;
        for t in ["departments", "teams", "groups"] {
            m.create_index(
                Index::create().name(format!("ux_{t}_workspace_name")).table(t).col("workspace_id").col("name").unique().to_owned(),
            )
            .await?;
        }

        m.create_table(
            Table::create()
                .table("users")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(string_len("username", 128))
                .col(string_len("username_key", 512))
                .col(string_len("email", 320))
                .col(string_len("email_key", 320))
                .col(string_len("display_name", 200))
                .col(string_len_null("phone", 64))
                .col(boolean("active"))
                .col(boolean("licensed"))
                .col(timestamp_with_time_zone_null("licence_ends_at"))
                .col(string_len("auth_method", 32))
                .col(text_null("password_hash"))
                .col(uuid_null("department_id"))
                .col(uuid_null("team_id"))
                .col(uuid_null("primary_group_id"))
                .col(string_len("builtin_role", 16))
                .col(timestamp_with_time_zone_null("last_login_at"))
                .col(string_len_null("last_login_ip", 64))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("users", "workspace_id", "workspaces"))
                .foreign_key(&mut fk("users", "department_id", "departments"))
                .foreign_key(&mut fk("users", "team_id", "teams"))
                .foreign_key(&mut fk("users", "primary_group_id", "groups"))
                .to_owned(),
        )
        .await?;
        for (name, col) in [("ux_users_workspace_username", "username_key"), ("ux_users_workspace_email", "email_key")] {
            m.create_index(Index::create().name(name).table("users").col("workspace_id").col(col).unique().to_owned()).await?;
        }

        m.create_table(
            Table::create()
                .table("group_members")
                .col(uuid("group_id"))
                .col(uuid("user_id"))
                .col(uuid("workspace_id"))
                .primary_key(Index::create().col("group_id").col("user_id"))
                .foreign_key(&mut fk("group_members", "group_id", "groups"))
                .foreign_key(&mut fk("group_members", "user_id", "users"))
                .foreign_key(&mut fk("group_members", "workspace_id", "workspaces"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("master_admins")
                .col(pk_uuid("id"))
                .col(string_len("email", 320))
                .col(string_len_uniq("email_key", 320))
                .col(text("password_hash"))
                .col(boolean("active"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;

        // No foreign key on workspace_id: entries of a purged workspace must outlive it.
        m.create_table(
            Table::create()
                .table("audit_entries")
                .col(pk_uuid("id"))
                .col(uuid_null("workspace_id"))
                .col(ts("occurred_at"))
                .col(string_len("actor_type", 16))
                .col(uuid_null("actor_id"))
                .col(string_len_null("actor_label", 400))
                .col(uuid_null("impersonator_id"))
                .col(string_len_null("ip", 64))
                .col(string_len_null("user_agent", 512))
                .col(string_len_null("request_id", 64))
                .col(string_len("action", 64))
                .col(string_len("module", 32))
                .col(string_len_null("target_type", 32))
                .col(string_len_null("target_id", 64))
                .col(json_null("changes"))
                .col(string_len("outcome", 16))
                .col(string_len_null("error_code", 32))
                .col(text_null("reason"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_audit_workspace_id").table("audit_entries").col("workspace_id").col("id").to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["audit_entries", "master_admins", "group_members", "users", "groups", "teams", "departments", "workspaces"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
