//! Payments, always through the caller's `Reach`.

use crate::authz::scope::Reach;
use entity::payment;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<String>,
    pub order_id: Option<Uuid>,
}

fn condition(f: &Filter) -> Condition {
    let mut c = Condition::all();
    if let Some(s) = &f.status {
        c = c.add(payment::Column::Status.eq(s.as_str()));
    }
    if let Some(o) = f.order_id {
        c = c.add(payment::Column::OrderId.eq(o));
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
) -> Result<Vec<payment::Model>, DbErr> {
    super::crm::list::<payment::Entity>(db, reach, condition(f), sort, |q| q.order_by_desc(payment::Column::Id), offset, limit).await
}

pub async fn count(db: &impl ConnectionTrait, reach: &Reach, f: &Filter) -> Result<u64, DbErr> {
    super::crm::count::<payment::Entity>(db, reach, condition(f)).await
}

pub async fn get(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<payment::Model>, DbErr> {
    super::crm::get::<payment::Entity>(db, reach, id).await
}

pub async fn insert(db: &impl ConnectionTrait, reach: &Reach, m: payment::Model) -> Result<payment::Model, DbErr> {
    if m.workspace_id != reach.workspace_id() {
        return Err(DbErr::Custom("payment of another workspace".into()));
    }
    payment::ActiveModel {
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
        order_id: Set(m.order_id),
        amount_cents: Set(m.amount_cents),
        method: Set(m.method),
        status: Set(m.status),
        reference: Set(m.reference),
        card_last4: Set(m.card_last4),
        iban: Set(m.iban),
        payer_email: Set(m.payer_email),
    }
    .insert(db)
    .await
}

/// Payments change only their status after they are recorded.
pub async fn set_status(
    db: &impl ConnectionTrait,
    reach: &Reach,
    id: Uuid,
    status: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    let res = payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(status))
        .col_expr(payment::Column::UpdatedAt, Expr::value(now))
        .filter(reach.condition("payments"))
        .filter(payment::Column::Id.eq(id))
        .exec(db)
        .await?;
    if res.rows_affected == 1 { Ok(()) } else { Err(DbErr::RecordNotUpdated) }
}

/// Where a record sits, if the caller's reach covers it (explanations).
pub async fn placement(db: &impl ConnectionTrait, reach: &Reach, id: Uuid) -> Result<Option<super::crm::Placement>, DbErr> {
    super::crm::placement::<payment::Entity>(db, reach, id).await
}
