//! Jobs, always through the caller's `Reach`.

use crate::authz::scope::Reach;
use entity::job;
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
        c = c.add(job::Column::Status.eq(s.as_str()));
    }
    if let Some(cu) = f.customer_id {
        c = c.add(job::Column::CustomerId.eq(cu));
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
) -> Result<Vec<job::Model>, DbErr> {
    super::crm::list::<job::Entity>(db, reach, condition(f), sort, |q| q.order_by_desc(job::Column::Id), offset, limit).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    super::crm::count::<job::Entity>(db, reach, condition(f)).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<job::Model>, DbErr> {
    super::crm::get::<job::Entity>(db, reach, id).await
}

pub async fn insert(db: &impl ConnectionTrait, reach: &Reach, m: job::Model) -> Result<job::Model, DbErr> {
    if m.workspace_id != reach.workspace_id() {
        return Err(DbErr::Custom("record of another workspace".into()));
    }
    job::ActiveModel {
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
        status: Set(m.status),
        scheduled_for: Set(m.scheduled_for),
        notes: Set(m.notes),
    }
    .insert(db)
    .await
}

pub async fn save(db: &impl ConnectionTrait, reach: &Reach, m: job::Model) -> Result<(), DbErr> {
    let res = job::Entity::update_many()
        .col_expr(job::Column::Title, Expr::value(m.title))
        .col_expr(job::Column::Status, Expr::value(m.status))
        .col_expr(job::Column::ScheduledFor, Expr::value(m.scheduled_for))
        .col_expr(job::Column::Notes, Expr::value(m.notes))
        .col_expr(job::Column::UpdatedAt, Expr::value(m.updated_at))
        .filter(reach.condition("jobs"))
        .filter(job::Column::Id.eq(m.id))
        .exec(db)
        .await?;
    if res.rows_affected == 1 { Ok(()) } else { Err(DbErr::RecordNotUpdated) }
}

/// Where a record sits, if the caller's reach covers it (explanations).
pub async fn placement(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<super::crm::Placement>, DbErr> {
    super::crm::placement::<job::Entity>(db, reach, id).await
}
