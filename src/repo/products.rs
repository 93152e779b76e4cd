//! Products, always through the caller's `Reach`.

use crate::authz::scope::Reach;
use entity::product;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub search: Option<String>,
    pub active: Option<bool>,
}

fn condition(reach: &Reach, f: &Filter) -> Condition {
    let mut c = reach.condition("products");
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
    let q = product::Entity::find().filter(condition(reach, f));
    let q = match sort {
        Some(s) => super::sorted(q, s, product::Column::Id, product::Column::UpdatedAt),
        None => q.order_by_asc(product::Column::Name).order_by_asc(product::Column::Id),
    };
    q.offset(offset).limit(limit).all(db).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    product::Entity::find().filter(condition(reach, f)).count(db).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<product::Model>, DbErr> {
    product::Entity::find_by_id(id).filter(reach.condition("products")).one(db).await
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

/// Where a record sits (owner, department, team, group), if the caller's reach covers
/// it: for explanations, which then apply the explained user's scope to it.
pub async fn placement(
    db: &impl ConnectionTrait,
    reach: &Reach,
    id: Uuid,
) -> Result<Option<(Uuid, Option<Uuid>, Option<Uuid>, Option<Uuid>)>, DbErr> {
    Ok(product::Entity::find_by_id(id)
        .filter(reach.condition("products"))
        .one(db)
        .await?
        .map(|c| (c.owner_id, c.department_id, c.team_id, c.group_id)))
}

/// Several products at once, through the reach (missing or out of scope: absent).
pub async fn get_many(db: &impl ConnectionTrait, reach: &Reach, ids: &[Uuid]) -> Result<Vec<product::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    product::Entity::find().filter(reach.condition("products")).filter(product::Column::Id.is_in(ids.iter().copied())).all(db).await
}
