//! Quotes, always through the caller's `Reach`.

use crate::authz::scope::Reach;
use entity::quote;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<String>,
    pub customer_id: Option<Uuid>,
}

fn condition(f: &Filter) -> Condition {
    let mut c = Condition::all();
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
    super::crm::list::<quote::Entity>(db, reach, condition(f), sort, |q| q.order_by_desc(quote::Column::Id), offset, limit).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    super::crm::count::<quote::Entity>(db, reach, condition(f)).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<quote::Model>, DbErr> {
    super::crm::get::<quote::Entity>(db, reach, id).await
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

/// Where a record sits, if the caller's reach covers it (explanations).
pub async fn placement(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<super::crm::Placement>, DbErr> {
    super::crm::placement::<quote::Entity>(db, reach, id).await
}
