//! The built-in Owner may touch up to 1,000,000 records in one request (was 1,000), so
//! that an Owner can import a 100,000-row file. Workspaces created before keep their own
//! Owner role rows: those still at the old default move to the new one; an Owner role
//! whose limit someone changed is left as it is.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, JsonValue, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

const KEY: &str = "maxRecordsPerRequest";

async fn set(m: &SchemaManager<'_>, from: u64, to: u64) -> Result<(), DbErr> {
    let db = m.get_connection();
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(Statement::from_string(backend, "SELECT id, restrictions FROM roles WHERE builtin = 'owner'")).await?;
    for row in rows {
        let id: sea_orm_migration::sea_orm::prelude::Uuid = row.try_get("", "id")?;
        let mut restrictions: JsonValue = row.try_get("", "restrictions")?;
        let Some(fields) = restrictions.as_object_mut() else { continue };
        if fields.get(KEY).and_then(JsonValue::as_u64) != Some(from) {
            continue;
        }
        fields.insert(KEY.to_owned(), to.into());
        let update = Query::update()
            .table(Alias::new("roles"))
            .value(Alias::new("restrictions"), restrictions)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        m.exec_stmt(update).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        set(m, 1_000, 1_000_000).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        set(m, 1_000_000, 1_000).await
    }
}
