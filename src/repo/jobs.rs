//! Jobs, always through the caller's `Reach`.

use entity::job;
use sea_orm::ColumnTrait;
use sea_orm::sea_query::Condition;
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<String>,
    pub customer_id: Option<Uuid>,
}

impl super::crm::RecordFilter for Filter {
    type Table = job::Entity;
    fn condition(&self) -> Condition {
        let mut c = Condition::all();
        if let Some(s) = &self.status {
            c = c.add(job::Column::Status.eq(s.as_str()));
        }
        if let Some(cu) = self.customer_id {
            c = c.add(job::Column::CustomerId.eq(cu));
        }
        c
    }
}
