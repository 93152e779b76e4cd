//! The one record path of every CRM table: get, count, list and placement for reads;
//! a locked read, insert and compare-and-set save for writes. Each starts from the
//! caller's `Reach`, so a module adds a `CrmTable` impl (its table name and columns),
//! never a query of its own that could forget the scope.
//!
//! Guarantees for writes: a mutation reads the row it changes with `locked`, which on
//! PostgreSQL holds the row (`FOR UPDATE`) until the mutation's transaction ends (on
//! SQLite the process's single writer already serialises mutations); `save` writes
//! only the columns that changed, bumps the version, and only if the row is still at
//! the version that was read. So a concurrent change is never overwritten, the audit
//! `before` is what was really replaced, and a transition decided from a state happens
//! once.

use super::seek::{Order, Seek};
use crate::authz::scope::Reach;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, IdenStatic, IntoActiveModel, Iterable, ModelTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TryIntoModel,
};
use uuid::Uuid;

/// Where a record sits: owner, department, team, group.
pub type Placement = (Uuid, Option<Uuid>, Option<Uuid>, Option<Uuid>);

pub trait CrmTable: EntityTrait {
    const TABLE: &'static str;
    fn id_column() -> Self::Column;
    fn updated_column() -> Self::Column;
    fn version_column() -> Self::Column;
    fn deleted_column() -> Self::Column;
    fn placement(m: &Self::Model) -> Placement;
    fn version(m: &Self::Model) -> i64;
    fn deleted(m: &Self::Model) -> bool;
    fn created(m: &Self::Model) -> chrono::DateTime<chrono::Utc>;
    fn workspace(m: &Self::Model) -> Uuid;
    fn id_of(m: &Self::Model) -> Uuid;
}

/// Columns a save never writes: who and where a record was created, and its version
/// (which the save bumps itself).
const FIXED: [&str; 5] = ["id", "workspace_id", "created_by", "created_at", "version"];

fn by_id(table: &'static str, id: Uuid) -> sea_orm::sea_query::SimpleExpr {
    Expr::col((table, "id")).eq(id)
}

pub async fn get<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<E::Model>, DbErr> {
    E::find().filter(reach.condition(E::TABLE)).filter(by_id(E::TABLE, id)).one(db).await
}

/// The record a mutation is about to change, held until its transaction ends (see the
/// module doc). Out of scope reads as missing.
pub async fn locked<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<E::Model>, DbErr> {
    E::find().filter(reach.condition(E::TABLE)).filter(by_id(E::TABLE, id)).lock_exclusive().one(db).await
}

/// Several records held at once (bulk changes), in id order so that two bulk changes
/// over the same records cannot deadlock.
pub async fn locked_many<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, ids: &[Uuid]) -> Result<Vec<E::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    E::find()
        .filter(reach.condition(E::TABLE))
        .filter(Expr::col((E::TABLE, "id")).is_in(ids.iter().copied()))
        .order_by_asc(E::id_column())
        .lock_exclusive()
        .all(db)
        .await
}

/// Inserts a new record of the caller's workspace.
pub async fn insert<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, m: E::Model) -> Result<E::Model, DbErr>
where
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    if E::workspace(&m) != reach.workspace_id() {
        return Err(DbErr::Custom(format!("a record of another workspace in {}", E::TABLE)));
    }
    m.into_active_model().reset_all().insert(db).await
}

/// Inserts new records of the caller's workspace in one statement (an import's batch).
pub async fn insert_many<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, models: Vec<E::Model>) -> Result<(), DbErr>
where
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    if models.iter().any(|m| E::workspace(m) != reach.workspace_id()) {
        return Err(DbErr::Custom(format!("a record of another workspace in {}", E::TABLE)));
    }
    if models.is_empty() {
        return Ok(());
    }
    E::insert_many(models.into_iter().map(|m| m.into_active_model().reset_all())).exec_without_returning(db).await.map(|_| ())
}

/// Writes the columns in which `after` differs from `before` (the row as `locked` read
/// it), with the version bumped, only while the row is still at `before`'s version.
/// Returns the record as stored. `RecordNotUpdated` when the row moved on meanwhile or
/// left the caller's reach.
pub async fn save<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, before: &E::Model, after: E::Model) -> Result<E::Model, DbErr>
where
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + TryIntoModel<E::Model> + Send,
{
    let version = E::version(before);
    let mut update = E::update_many();
    for c in E::Column::iter() {
        if FIXED.contains(&c.as_str()) {
            continue;
        }
        let value = after.get(c);
        if value != before.get(c) {
            update = update.col_expr(c, Expr::value(value));
        }
    }
    let res = update
        .col_expr(E::version_column(), Expr::col((E::TABLE, "version")).add(1))
        .filter(reach.condition(E::TABLE))
        .filter(by_id(E::TABLE, E::id_of(before)))
        .filter(Expr::col((E::TABLE, "version")).eq(version))
        .exec(db)
        .await?;
    if res.rows_affected != 1 {
        return Err(DbErr::RecordNotUpdated);
    }
    let mut am = after.into_active_model();
    am.set(E::version_column(), (version + 1).into());
    am.try_into_model()
}

/// Several records at once; missing or out-of-scope ids are simply absent.
pub async fn get_many<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, ids: &[Uuid]) -> Result<Vec<E::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    E::find().filter(reach.condition(E::TABLE)).filter(Expr::col((E::TABLE, "id")).is_in(ids.iter().copied())).all(db).await
}

pub async fn count<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, filter: Condition) -> Result<u64, DbErr>
where
    E::Model: Sync,
{
    E::find().filter(reach.condition(E::TABLE)).filter(filter).count(db).await
}

/// A module's list filter: the table it filters and its condition. Reads with a filter
/// go through `find` and `tally`, so a module's repo holds only this.
pub trait RecordFilter {
    type Table: CrmTable;
    fn condition(&self) -> Condition;
}

/// A page of `f`'s table matching `f` (see `list`).
pub async fn find<F: RecordFilter>(
    db: &impl ConnectionTrait,
    reach: &Reach,
    f: &F,
    order: Order,
    after: Option<&Seek>,
    limit: u64,
) -> Result<Vec<<F::Table as EntityTrait>::Model>, DbErr> {
    list::<F::Table>(db, reach, f.condition(), order, after, limit).await
}

/// How many records of `f`'s table match `f`.
pub async fn tally<F: RecordFilter>(db: &impl ConnectionTrait, reach: &Reach, f: &F) -> Result<u64, DbErr>
where
    <F::Table as EntityTrait>::Model: Sync,
{
    count::<F::Table>(db, reach, f.condition()).await
}

/// A page in `order`, after `after` (see `seek`). Callers ask for one row more than
/// they show, to know whether another page follows.
pub async fn list<E: CrmTable>(
    db: &impl ConnectionTrait,
    reach: &Reach,
    filter: Condition,
    order: Order,
    after: Option<&Seek>,
    limit: u64,
) -> Result<Vec<E::Model>, DbErr> {
    let q = E::find().filter(reach.condition(E::TABLE)).filter(filter);
    super::seek::apply(q, E::TABLE, order, after).limit(limit).all(db).await
}

/// Where `m` sits in `order`, for its cursor.
pub fn seek_of<E: CrmTable>(m: &E::Model, order: Order) -> Result<Seek, DbErr> {
    super::seek::seek_of(m, E::id_of(m), order)
}

/// Where a record sits, if the caller's reach covers it (explanations).
pub async fn placement<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<Placement>, DbErr> {
    Ok(get::<E>(db, reach, id).await?.as_ref().map(E::placement))
}

macro_rules! crm_table {
    ($($module:ident => $table:literal),* $(,)?) => {$(
        impl CrmTable for entity::$module::Entity {
            const TABLE: &'static str = $table;
            fn id_column() -> Self::Column {
                entity::$module::Column::Id
            }
            fn updated_column() -> Self::Column {
                entity::$module::Column::UpdatedAt
            }
            fn version_column() -> Self::Column {
                entity::$module::Column::Version
            }
            fn deleted_column() -> Self::Column {
                entity::$module::Column::DeletedAt
            }
            fn placement(m: &entity::$module::Model) -> Placement {
                (m.owner_id, m.department_id, m.team_id, m.group_id)
            }
            fn version(m: &entity::$module::Model) -> i64 {
                m.version
            }
            fn deleted(m: &entity::$module::Model) -> bool {
                m.deleted_at.is_some()
            }
            fn created(m: &entity::$module::Model) -> chrono::DateTime<chrono::Utc> {
                m.created_at
            }
            fn workspace(m: &entity::$module::Model) -> Uuid {
                m.workspace_id
            }
            fn id_of(m: &entity::$module::Model) -> Uuid {
                m.id
            }
        }
    )*};
}

crm_table! {
    customer => "customers",
    product => "products",
    order => "orders",
    payment => "payments",
    quote => "quotes",
    ticket => "tickets",
    job => "jobs",
    invoice => "invoices",
}

/// A new CRM record placed like its author: a fresh v7 id, the workspace, owner and
/// creator, department, team and primary group from `placed` (an
/// `authz::scope::Placement`), and both timestamps at `now`. Only the module's own
/// fields are spelled out at the call site.
#[macro_export]
macro_rules! new_record {
    ($model:path { workspace_id: $ws:expr, placed: $at:expr, now: $now:expr, $($field:ident $(: $value:expr)?),* $(,)? }) => {{
        let at: &$crate::authz::scope::Placement = &$at;
        $model {
            id: uuid::Uuid::now_v7(),
            workspace_id: $ws,
            owner_id: at.new_record_owner,
            department_id: at.department_id,
            team_id: at.team_id,
            group_id: at.primary_group_id,
            created_by: at.user_id,
            created_at: $now,
            updated_at: $now,
            deleted_at: None,
            version: 1,
            $($field $(: $value)?),*
        }
    }};
}
