//! Quotes, always through the caller's `Reach`.

use crate::authz::scope::Reach;
use entity::quote;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<String>,
    pub customer_id: Option<Uuid>,
}

fn condition(reach: &Reach, f: &Filter) -> Condition {
    let mut c = reach.condition("quotes");
    if let Some(s) = &f.status {
        c = c.add(quote::Column::Status.eq(s.as_str()));
    }
    if let Some(cu) = f.customer_id {
        c = c.add(quote::Column::CustomerId.eq(cu));
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
) -> Result<Vec<quote::Model>, DbErr> {
    let q = quote::Entity::find().filter(condition(reach, f));
    let q = match sort {
        Some(s) => super::sorted(q, s, quote::Column::Id, quote::Column::UpdatedAt),
        None => q.order_by_desc(quote::Column::Id),
    };
    q.offset(offset).limit(limit).all(db).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    quote::Entity::find().filter(condition(reach, f)).count(db).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<quote::Model>, DbErr> {
    quote::Entity::find_by_id(id).filter(reach.condition("quotes")).one(db).await
}

pub async fn insert(db: &impl ConnectionTrait, reach: &Reach, m: quote::Model) -> Result<quote::Model, DbErr> {
    if m.workspace_id != reach.workspace_id() {
        return Err(DbErr::Custom("record of another workspace".into()));
    }
    quote::ActiveModel {
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
        customer_id: Set(m.customer_id),
        title: Set(m.title),
        amount_cents: Set(m.amount_cents),
        status: Set(m.status),
    }
    .insert(db)
    .await
}

pub async fn save(db: &impl ConnectionTrait, reach: &Reach, m: quote::Model) -> Result<(), DbErr> {
    let res = quote::Entity::update_many()
        .col_expr(quote::Column::Title, Expr::value(m.title))
        .col_expr(quote::Column::AmountCents, Expr::value(m.amount_cents))
        .col_expr(quote::Column::Status, Expr::value(m.status))
        .col_expr(quote::Column::UpdatedAt, Expr::value(m.updated_at))
        .filter(reach.condition("quotes"))
        .filter(quote::Column::Id.eq(m.id))
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
    Ok(quote::Entity::find_by_id(id)
        .filter(reach.condition("quotes"))
        .one(db)
        .await?
        .map(|c| (c.owner_id, c.department_id, c.team_id, c.group_id)))
}
