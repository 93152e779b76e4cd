//! Orders and their lines, always through the caller's `Reach`. Lines are loaded for
//! many orders in one query (no N+1).

use crate::authz::scope::Reach;
use entity::{order, order_line};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<String>,
    pub customer_id: Option<Uuid>,
}

impl super::crm::RecordFilter for Filter {
    type Table = order::Entity;
    fn condition(&self) -> Condition {
        let mut c = Condition::all();
        if let Some(s) = &self.status {
            c = c.add(order::Column::Status.eq(s.as_str()));
        }
        if let Some(cu) = self.customer_id {
            c = c.add(order::Column::CustomerId.eq(cu));
        }
        c
    }
}

/// The lines of several orders (which the caller already read through a reach).
pub async fn lines_of(db: &impl ConnectionTrait, workspace_id: Uuid, order_ids: &[Uuid]) -> Result<Vec<order_line::Model>, DbErr> {
    if order_ids.is_empty() {
        return Ok(Vec::new());
    }
    order_line::Entity::find()
        .filter(order_line::Column::WorkspaceId.eq(workspace_id))
        .filter(order_line::Column::OrderId.is_in(order_ids.iter().copied()))
        .order_by_asc(order_line::Column::Id)
        .all(db)
        .await
}

/// Replaces an order's lines (the order was read through a reach in this transaction).
pub async fn replace_lines(db: &impl ConnectionTrait, workspace_id: Uuid, order_id: Uuid, lines: &[(Uuid, i32, i64)]) -> Result<(), DbErr> {
    order_line::Entity::delete_many()
        .filter(order_line::Column::WorkspaceId.eq(workspace_id))
        .filter(order_line::Column::OrderId.eq(order_id))
        .exec(db)
        .await?;
    for (product_id, quantity, unit_price_cents) in lines {
        order_line::ActiveModel {
            id: Set(Uuid::now_v7()),
            workspace_id: Set(workspace_id),
            order_id: Set(order_id),
            product_id: Set(*product_id),
            quantity: Set(*quantity),
            unit_price_cents: Set(*unit_price_cents),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Order count and total per status, within the reach, created in `[from, to)`.
pub async fn totals_by_status(
    db: &impl ConnectionTrait,
    reach: &Reach,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<(String, i64, i64)>, DbErr> {
    let mut c = reach.condition("orders");
    if let Some(f) = from {
        c = c.add(order::Column::CreatedAt.gte(f));
    }
    if let Some(t) = to {
        c = c.add(order::Column::CreatedAt.lt(t));
    }
    order::Entity::find()
        .select_only()
        .column(order::Column::Status)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .column_as(Expr::cust("CAST(COALESCE(SUM(total_cents), 0) AS BIGINT)"), "total")
        .filter(c)
        .group_by(order::Column::Status)
        .order_by_asc(order::Column::Status)
        .into_tuple()
        .all(db)
        .await
}
