//! Accountability: partner API keys, impersonation records, audit retention anchors and
//! the workspace lifecycle columns (status reason, soft delete, support access, audit
//! retention).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn ts(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone(name)
}

fn ts_null(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone_null(name)
}

fn fk(table: &'static str, col: &'static str, to: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create().name(format!("fk_{table}_{col}")).from(table, col).to(to, "id").on_delete(ForeignKeyAction::Restrict).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one column at a time.
        let add = |c: ColumnDef| Table::alter().table("workspaces").add_column(c).to_owned();
        m.alter_table(add(text_null("status_reason"))).await?;
        m.alter_table(add(ts_null("status_changed_at"))).await?;
        m.alter_table(add(ts_null("deleted_at"))).await?;
        // Whether master admins may impersonate staff, and Owners, of this workspace.
        m.alter_table(add(boolean("support_access_staff").default(true).to_owned())).await?;
        m.alter_table(add(boolean("support_access_owners").default(false).to_owned())).await?;
        // NULL: the server default (PALISADE_AUDIT_RETENTION_DAYS).
        m.alter_table(add(integer_null("audit_retention_days"))).await?;

        m.create_table(
            Table::create()
                .table("api_keys")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(string_len("name", 100))
                .col(uuid("role_id"))
                // The public part of the key, shown in lists and logs.
                .col(string_len_uniq("prefix", 32))
                // SHA-256 of the whole key: it has 256 random bits, so no salt or
                // stretching is needed.
                .col(string_len("secret_hash", 64))
                .col(uuid("created_by"))
                .col(ts("created_at"))
                .col(ts_null("expires_at"))
                .col(ts_null("revoked_at"))
                .col(uuid_null("revoked_by"))
                .col(ts_null("last_used_at"))
                .col(text_null("last_used_ip"))
                .foreign_key(&mut fk("api_keys", "workspace_id", "workspaces"))
                .foreign_key(&mut fk("api_keys", "role_id", "roles"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_api_keys_workspace").table("api_keys").col("workspace_id").to_owned()).await?;

        m.create_table(
            Table::create()
                .table("impersonations")
                .col(pk_uuid("id"))
                .col(uuid("workspace_id"))
                .col(uuid("user_id"))
                .col(uuid("admin_id"))
                .col(text("admin_email"))
                .col(text("reason"))
                .col(ts("started_at"))
                .col(ts("expires_at"))
                .col(ts_null("ended_at"))
                .col(uuid_null("ended_by"))
                // The impersonation session's store key (SHA-256 of its token), to end it.
                .col(string_len("session_hash", 64))
                .foreign_key(&mut fk("impersonations", "workspace_id", "workspaces"))
                .foreign_key(&mut fk("impersonations", "user_id", "users"))
                .foreign_key(&mut fk("impersonations", "admin_id", "master_admins"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_impersonations_workspace").table("impersonations").col("workspace_id").to_owned()).await?;
        m.create_index(Index::create().name("ix_impersonations_admin").table("impersonations").col("admin_id").to_owned()).await?;

        // Where a purged chain now starts: entries up to `seq` were deleted, and `hash`
        // is the stored hash of entry `seq`, which the first remaining entry links to.
        m.create_table(
            Table::create()
                .table("audit_anchors")
                .col(string_len("chain", 64).primary_key())
                .col(big_integer("seq"))
                .col(string_len("hash", 64))
                .col(ts("purged_at"))
                .col(big_integer("purged_total"))
                .to_owned(),
        )
        .await?;
        // Audit queries filter a workspace's entries by module and time, and the
        // impersonation filter by impersonator.
        m.create_index(
            Index::create().name("ix_audit_entries_ws_module").table("audit_entries").col("workspace_id").col("module").to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_audit_entries_impersonator").table("audit_entries").col("impersonator_id").to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_audit_entries_impersonator").table("audit_entries").to_owned()).await?;
        m.drop_index(Index::drop().name("ix_audit_entries_ws_module").table("audit_entries").to_owned()).await?;
        for t in ["audit_anchors", "impersonations", "api_keys"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        for c in
            ["audit_retention_days", "support_access_owners", "support_access_staff", "deleted_at", "status_changed_at", "status_reason"]
        {
            m.alter_table(Table::alter().table("workspaces").drop_column(c).to_owned()).await?;
        }
        Ok(())
    }
}
