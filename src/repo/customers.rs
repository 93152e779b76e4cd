//! Customers. Every query starts from the caller's `Reach`, so scope and tenancy are
//! in the SQL of every list, count and get.

use crate::authz::scope::Reach;
use entity::customer;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    pub search: Option<String>,
    pub status: Option<String>,
    pub owner_id: Option<Uuid>,
    pub email: Option<String>,
}

impl super::crm::RecordFilter for Filter {
    type Table = customer::Entity;
    fn condition(&self) -> Condition {
        let mut c = Condition::all();
        if let Some(s) = &self.search {
            // LIKE metacharacters in the search are matched literally.
            let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            c = c.add(
                Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(customer::Column::Name)))
                    .like(sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')),
            );
        }
        if let Some(s) = &self.status {
            c = c.add(customer::Column::Status.eq(s.as_str()));
        }
        if let Some(o) = self.owner_id {
            c = c.add(customer::Column::OwnerId.eq(o));
        }
        if let Some(e) = &self.email {
            c = c.add(customer::Column::Email.eq(e.as_str()));
        }
        c
    }
}

/// Customer count per status within the reach.
pub async fn counts_by_status(db: &impl ConnectionTrait, reach: &Reach) -> Result<Vec<(String, i64)>, DbErr> {
    customer::Entity::find()
        .select_only()
        .column(customer::Column::Status)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .filter(reach.condition("customers"))
        .group_by(customer::Column::Status)
        .order_by_asc(customer::Column::Status)
        .into_tuple()
        .all(db)
        .await
}

/// Customer count per owner within the reach.
pub async fn counts_by_owner(db: &impl ConnectionTrait, reach: &Reach) -> Result<Vec<(Uuid, i64)>, DbErr> {
    customer::Entity::find()
        .select_only()
        .column(customer::Column::OwnerId)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .filter(reach.condition("customers"))
        .group_by(customer::Column::OwnerId)
        .order_by_asc(customer::Column::OwnerId)
        .into_tuple()
        .all(db)
        .await
}
