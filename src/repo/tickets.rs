//! Tickets, always through the caller's `Reach`.

use crate::authz::scope::Reach;
use entity::ticket;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<String>,
    pub priority: Option<String>,
    pub customer_id: Option<Uuid>,
}

fn condition(f: &Filter) -> Condition {
    let mut c = Condition::all();
    if let Some(s) = &f.status {
        c = c.add(ticket::Column::Status.eq(s.as_str()));
    }
    if let Some(p) = &f.priority {
        c = c.add(ticket::Column::Priority.eq(p.as_str()));
    }
    if let Some(cu) = f.customer_id {
        c = c.add(ticket::Column::CustomerId.eq(cu));
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
) -> Result<Vec<ticket::Model>, DbErr> {
    super::crm::list::<ticket::Entity>(db, reach, condition(f), sort, |q| q.order_by_desc(ticket::Column::Id), offset, limit).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    super::crm::count::<ticket::Entity>(db, reach, condition(f)).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<ticket::Model>, DbErr> {
    super::crm::get::<ticket::Entity>(db, reach, id).await
}

pub async fn insert(db: &impl ConnectionTrait, reach: &Reach, m: ticket::Model) -> Result<ticket::Model, DbErr> {
    if m.workspace_id != reach.workspace_id() {
        return Err(DbErr::Custom("ticket of another workspace".into()));
    }
    ticket::ActiveModel {
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
        subject: Set(m.subject),
        status: Set(m.status),
        priority: Set(m.priority),
        description: Set(m.description),
        internal_notes: Set(m.internal_notes),
    }
    .insert(db)
    .await
}

pub async fn save(db: &impl ConnectionTrait, reach: &Reach, m: ticket::Model) -> Result<(), DbErr> {
    let res = ticket::Entity::update_many()
        .col_expr(ticket::Column::Subject, Expr::value(m.subject))
        .col_expr(ticket::Column::Status, Expr::value(m.status))
        .col_expr(ticket::Column::Priority, Expr::value(m.priority))
        .col_expr(ticket::Column::Description, Expr::value(m.description))
        .col_expr(ticket::Column::InternalNotes, Expr::value(m.internal_notes))
        .col_expr(ticket::Column::UpdatedAt, Expr::value(m.updated_at))
        .filter(reach.condition("tickets"))
        .filter(ticket::Column::Id.eq(m.id))
        .exec(db)
        .await?;
    if res.rows_affected == 1 { Ok(()) } else { Err(DbErr::RecordNotUpdated) }
}

/// Where a record sits, if the caller's reach covers it (explanations).
pub async fn placement(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<super::crm::Placement>, DbErr> {
    super::crm::placement::<ticket::Entity>(db, reach, id).await
}
