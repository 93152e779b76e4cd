//! Products, always through the caller's `Reach`.

use super::seek::{Order, Seek};
use crate::authz::scope::Reach;
use entity::product;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr};
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub search: Option<String>,
    pub active: Option<bool>,
}

fn condition(f: &Filter) -> Condition {
    let mut c = Condition::all();
    if let Some(s) = &f.search {
        let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
        c = c.add(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(product::Column::Name))).like(pattern()))
                .add(Expr::expr(Func::lower(Expr::col(product::Column::Sku))).like(pattern())),
        );
    }
    if let Some(a) = f.active {
        c = c.add(product::Column::Active.eq(a));
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
) -> Result<Vec<product::Model>, DbErr> {
    super::crm::list::<product::Entity>(db, reach, condition(f), order, after, limit).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    super::crm::count::<product::Entity>(db, reach, condition(f)).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<product::Model>, DbErr> {
    super::crm::get::<product::Entity>(db, reach, id).await
}

/// Where a record sits, if the caller's reach covers it (explanations).
pub async fn placement(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<super::crm::Placement>, DbErr> {
    super::crm::placement::<product::Entity>(db, reach, id).await
}

/// Several records at once, through the reach (missing or out of scope: absent).
pub async fn get_many(db: &impl ConnectionTrait, reach: &Reach, ids: &[Uuid]) -> Result<Vec<product::Model>, DbErr> {
    super::crm::get_many::<product::Entity>(db, reach, ids).await
}
