//! The scoped read paths shared by every CRM table: get, count, list and placement.
//! Each starts from the caller's `Reach`, so a module adds a `CrmTable` impl (its table
//! name and columns), never a query of its own that could forget the scope.

use super::Sort;
use crate::authz::scope::Reach;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Select};
use uuid::Uuid;

/// Where a record sits: owner, department, team, group.
pub type Placement = (Uuid, Option<Uuid>, Option<Uuid>, Option<Uuid>);

pub trait CrmTable: EntityTrait {
    const TABLE: &'static str;
    fn id_column() -> Self::Column;
    fn updated_column() -> Self::Column;
    fn placement(m: &Self::Model) -> Placement;
}

fn by_id(table: &'static str, id: Uuid) -> sea_orm::sea_query::SimpleExpr {
    Expr::col((table, "id")).eq(id)
}

pub async fn get<E: CrmTable>(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<E::Model>, DbErr> {
    E::find().filter(reach.condition(E::TABLE)).filter(by_id(E::TABLE, id)).one(db).await
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

/// A page: the caller's `sort`, else the module's `default` order.
pub async fn list<E: CrmTable>(
    db: &impl ConnectionTrait,
    reach: &Reach,
    filter: Condition,
    sort: Option<Sort>,
    default: impl FnOnce(Select<E>) -> Select<E>,
    offset: u64,
    limit: u64,
) -> Result<Vec<E::Model>, DbErr> {
    let q = E::find().filter(reach.condition(E::TABLE)).filter(filter);
    let q = match sort {
        Some(s) => super::sorted(q, s, E::id_column(), E::updated_column()),
        None => default(q),
    };
    q.offset(offset).limit(limit).all(db).await
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
            fn placement(m: &entity::$module::Model) -> Placement {
                (m.owner_id, m.department_id, m.team_id, m.group_id)
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
            $($field $(: $value)?),*
        }
    }};
}
