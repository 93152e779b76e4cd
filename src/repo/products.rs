//! Products, always through the caller's `Reach`.

use crate::authz::scope::Reach;
use entity::product;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
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
    sort: Option<super::Sort>,
    offset: u64,
    limit: u64,
) -> Result<Vec<product::Model>, DbErr> {
    super::crm::list::<product::Entity>(
        db,
        reach,
        condition(f),
        sort,
        |q| q.order_by_asc(product::Column::Name).order_by_asc(product::Column::Id),
        offset,
        limit,
    )
    .await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    super::crm::count::<product::Entity>(db, reach, condition(f)).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<product::Model>, DbErr> {
    super::crm::get::<product::Entity>(db, reach, id).await
}

pub async fn insert(db: &impl ConnectionTrait, reach: &Reach, m: product::Model) -> Result<product::Model, DbErr> {
    if m.workspace_id != reach.workspace_id() {
        return Err(DbErr::Custom("product of another workspace".into()));
    }
    product::ActiveModel {
        id: Set(m.id),
        workspace_id: Set(m.workspace_id),
        owner_id: Set(m.owner_id),
        department_id: Set(m.department_id),
        team_id: Set(m.team_id),
        group_id: Set(m.group_id),
        created_by: Set(m.created_by),
        created_at: Set(m.created_at),
        updated_at: Set(m.updated_at),
        deleted_at: Set(m.deleted_at),
        name: Set(m.name),
        sku: Set(m.sku),
        price_cents: Set(m.price_cents),
        cost_price_cents: Set(m.cost_price_cents),
        supplier: Set(m.supplier),
        stock: Set(m.stock),
        active: Set(m.active),
    }
    .insert(db)
    .await
}

pub async fn save(db: &impl ConnectionTrait, reach: &Reach, m: product::Model) -> Result<(), DbErr> {
    let res = product::Entity::update_many()
        .col_expr(product::Column::Name, Expr::value(m.name))
        .col_expr(product::Column::Sku, Expr::value(m.sku))
        .col_expr(product::Column::PriceCents, Expr::value(m.price_cents))
        .col_expr(product::Column::CostPriceCents, Expr::value(m.cost_price_cents))
        .col_expr(product::Column::Supplier, Expr::value(m.supplier))
        .col_expr(product::Column::Stock, Expr::value(m.stock))
        .col_expr(product::Column::Active, Expr::value(m.active))
        .col_expr(product::Column::UpdatedAt, Expr::value(m.updated_at))
        .col_expr(product::Column::DeletedAt, Expr::value(m.deleted_at))
        .filter(reach.condition("products"))
        .filter(product::Column::Id.eq(m.id))
        .exec(db)
        .await?;
    if res.rows_affected == 1 { Ok(()) } else { Err(DbErr::RecordNotUpdated) }
}

/// Where a record sits, if the caller's reach covers it (explanations).
pub async fn placement(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<super::crm::Placement>, DbErr> {
    super::crm::placement::<product::Entity>(db, reach, id).await
}

/// Several records at once, through the reach (missing or out of scope: absent).
pub async fn get_many(db: &impl ConnectionTrait, reach: &Reach, ids: &[Uuid]) -> Result<Vec<product::Model>, DbErr> {
    super::crm::get_many::<product::Entity>(db, reach, ids).await
}
