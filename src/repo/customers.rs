//! Customers. Every query starts from the caller's `Reach`, so scope and tenancy are
//! in the SQL of every list, count and get.

use super::seek::{Order, Seek};
use crate::authz::scope::Reach;
use entity::customer;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub search: Option<String>,
    pub status: Option<String>,
    pub owner_id: Option<Uuid>,
    pub email: Option<String>,
}

fn condition(f: &Filter) -> Condition {
    let mut c = Condition::all();
    if let Some(s) = &f.search {
        // LIKE metacharacters in the search are matched literally.
        let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        c = c.add(
            Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(customer::Column::Name)))
                .like(sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')),
        );
    }
    if let Some(s) = &f.status {
        c = c.add(customer::Column::Status.eq(s.as_str()));
    }
    if let Some(o) = f.owner_id {
        c = c.add(customer::Column::OwnerId.eq(o));
    }
    if let Some(e) = &f.email {
        c = c.add(customer::Column::Email.eq(e.as_str()));
    }
    c
}

pub async fn list(
    db: &impl ConnectionTrait,
    reach: &Reach,
    f: &Filter,
    order: Order,
    after: Option<&Seek>,
    limit: u64,
) -> Result<Vec<customer::Model>, DbErr> {
    super::crm::list::<customer::Entity>(db, reach, condition(f), order, after, limit).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    super::crm::count::<customer::Entity>(db, reach, condition(f)).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<customer::Model>, DbErr> {
    super::crm::get::<customer::Entity>(db, reach, id).await
}

/// Several records at once, through the reach (missing or out of scope: absent).
pub async fn get_many(db: &impl ConnectionTrait, reach: &Reach, ids: &[Uuid]) -> Result<Vec<customer::Model>, DbErr> {
    super::crm::get_many::<customer::Entity>(db, reach, ids).await
}

/// Where a record sits, if the caller's reach covers it (explanations).
pub async fn placement(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<super::crm::Placement>, DbErr> {
    super::crm::placement::<customer::Entity>(db, reach, id).await
}

/// Customer count per status within the reach.
pub async fn counts_by_status(db: &impl ConnectionTrait, reach: &Reach) -> Result<Vec<(String, i64)>, DbErr> {
    customer::Entity::find()
        .select_only()
        .column(customer::Column::Status)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .filter(reach.condition("customers"))
        .group_by(customer::Column::Status)
        .order_by_asc(customer::Column::Status)
        .into_tuple()
        .all(db)
        .await
}

/// Customer count per owner within the reach.
pub async fn counts_by_owner(db: &impl ConnectionTrait, reach: &Reach) -> Result<Vec<(Uuid, i64)>, DbErr> {
    customer::Entity::find()
        .select_only()
        .column(customer::Column::OwnerId)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .filter(reach.condition("customers"))
        .group_by(customer::Column::OwnerId)
        .order_by_asc(customer::Column::OwnerId)
        .into_tuple()
        .all(db)
        .await
}
