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
        // One column per statement: SQLite's ALTER TABLE adds one column at a time.
        m.alter_table(Table::alter().table("workspaces").add_column(text("security_settings").default("{}")).to_owned()).await?;
        // Sealed (encrypted) TOTP seeds: the enrolled one and one awaiting confirmation.
        m.alter_table(Table::alter().table("users").add_column(text_null("totp_secret")).to_owned()).await?;
        m.alter_table(Table::alter().table("users").add_column(text_null("totp_pending_secret")).to_owned()).await?;
        m.alter_table(Table::alter().table("users").add_column(timestamp_with_time_zone_null("totp_enabled_at")).to_owned()).await?;
        // The last TOTP time step accepted: that step and every earlier one are spent.
        m.alter_table(Table::alter().table("users").add_column(big_integer_null("totp_last_step")).to_owned()).await?;
        m.alter_table(Table::alter().table("users").add_column(text_null("security_override")).to_owned()).await?;

        m.create_table(
            Table::create()
                .table("recovery_codes")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(uuid("user_id"))
                .col(string_len("code_hash", 64))
                .col(ts("created_at"))
                .col(timestamp_with_time_zone_null("used_at"))
                .foreign_key(&mut fk("recovery_codes", "workspace_id", "workspaces"))
                .foreign_key(&mut fk("recovery_codes", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ux_recovery_codes_user_hash").table("recovery_codes").col("user_id").col("code_hash").unique().to_owned(),
        )
        .await?;

        // Devices (cookie) and networks a user has signed in from, by hash.
        m.create_table(
            Table::create()
                .table("login_footprints")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(uuid("user_id"))
                .col(string_len("kind", 16))
                .col(string_len("value_hash", 64))
                .col(ts("first_seen_at"))
                .col(ts("last_seen_at"))
                .foreign_key(&mut fk("login_footprints", "workspace_id", "workspaces"))
                .foreign_key(&mut fk("login_footprints", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_login_footprints_user_kind_hash")
                .table("login_footprints")
                .col("user_id")
                .col("kind")
                .col("value_hash")
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("login_footprints").to_owned()).await?;
        m.drop_table(Table::drop().table("recovery_codes").to_owned()).await?;
        for c in ["security_override", "totp_last_step", "totp_enabled_at", "totp_pending_secret", "totp_secret"] {
            m.alter_table(Table::alter().table("users").drop_column(c).to_owned()).await?;
        }
        m.alter_table(Table::alter().table("workspaces").drop_column("security_settings").to_owned()).await
    }
}
