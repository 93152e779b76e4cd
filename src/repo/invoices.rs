//! Invoices, always through the caller's `Reach`.

use crate::authz::scope::Reach;
use entity::invoice;
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
    let mut c = reach.condition("invoices");
    if let Some(s) = &f.status {
        c = c.add(invoice::Column::Status.eq(s.as_str()));
    }
    if let Some(cu) = f.customer_id {
        c = c.add(invoice::Column::CustomerId.eq(cu));
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
) -> Result<Vec<invoice::Model>, DbErr> {
    let q = invoice::Entity::find().filter(condition(reach, f));
    let q = match sort {
        Some(s) => super::sorted(q, s, invoice::Column::Id, invoice::Column::UpdatedAt),
        None => q.order_by_desc(invoice::Column::Id),
    };
    q.offset(offset).limit(limit).all(db).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    invoice::Entity::find().filter(condition(reach, f)).count(db).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<invoice::Model>, DbErr> {
    invoice::Entity::find_by_id(id).filter(reach.condition("invoices")).one(db).await
}

pub async fn insert(db: &impl ConnectionTrait, reach: &Reach, m: invoice::Model) -> Result<invoice::Model, DbErr> {
    if m.workspace_id != reach.workspace_id() {
        return Err(DbErr::Custom("record of another workspace".into()));
    }
    invoice::ActiveModel {
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
        number: Set(m.number),
        amount_cents: Set(m.amount_cents),
        status: Set(m.status),
        due_at: Set(m.due_at),
        bank_details: Set(m.bank_details),
    }
    .insert(db)
    .await
}

pub async fn save(db: &impl ConnectionTrait, reach: &Reach, m: invoice::Model) -> Result<(), DbErr> {
    let res = invoice::Entity::update_many()
        .col_expr(invoice::Column::Number, Expr::value(m.number))
        .col_expr(invoice::Column::AmountCents, Expr::value(m.amount_cents))
        .col_expr(invoice::Column::Status, Expr::value(m.status))
        .col_expr(invoice::Column::DueAt, Expr::value(m.due_at))
        .col_expr(invoice::Column::BankDetails, Expr::value(m.bank_details))
        .col_expr(invoice::Column::UpdatedAt, Expr::value(m.updated_at))
        .filter(reach.condition("invoices"))
        .filter(invoice::Column::Id.eq(m.id))
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
    Ok(invoice::Entity::find_by_id(id)
        .filter(reach.condition("invoices"))
        .one(db)
        .await?
        .map(|c| (c.owner_id, c.department_id, c.team_id, c.group_id)))
}
