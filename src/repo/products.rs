//! Products, always through the caller's `Reach`.

use entity::product;
use sea_orm::ColumnTrait;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr};

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub search: Option<String>,
    pub active: Option<bool>,
}

impl super::crm::RecordFilter for Filter {
    type Table = product::Entity;
    fn condition(&self) -> Condition {
        let mut c = Condition::all();
        if let Some(s) = &self.search {
            let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
            c = c.add(
                Condition::any()
                    .add(Expr::expr(Func::lower(Expr::col(product::Column::Name))).like(pattern()))
                    .add(Expr::expr(Func::lower(Expr::col(product::Column::Sku))).like(pattern())),
            );
        }
        if let Some(a) = self.active {
            c = c.add(product::Column::Active.eq(a));
        }
        c
    }
}
