//! Invoices, always through the caller's `Reach`.

use crate::authz::scope::Reach;
use entity::invoice;
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
    super::crm::list::<invoice::Entity>(db, reach, condition(f), sort, |q| q.order_by_desc(invoice::Column::Id), offset, limit).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    super::crm::count::<invoice::Entity>(db, reach, condition(f)).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<invoice::Model>, DbErr> {
    super::crm::get::<invoice::Entity>(db, reach, id).await
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

/// Where a record sits, if the caller's reach covers it (explanations).
pub async fn placement(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<super::crm::Placement>, DbErr> {
    super::crm::placement::<invoice::Entity>(db, reach, id).await
}
