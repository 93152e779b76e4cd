//! Payments, always through the caller's `Reach`.

use entity::payment;
use sea_orm::ColumnTrait;
use sea_orm::sea_query::Condition;
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<String>,
    pub order_id: Option<Uuid>,
}

impl super::crm::RecordFilter for Filter {
    type Table = payment::Entity;
    fn condition(&self) -> Condition {
        let mut c = Condition::all();
        if let Some(s) = &self.status {
            c = c.add(payment::Column::Status.eq(s.as_str()));
        }
        if let Some(o) = self.order_id {
            c = c.add(payment::Column::OrderId.eq(o));
        }
        c
    }
}
