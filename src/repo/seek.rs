//! Keyset (seek) paging: a list is ordered by one key and then the id, both in one
//! direction, and the next page starts strictly after the last row seen. So a page
//! costs the same however deep it is (an index range, not a re-read of every row
//! before it), and rows inserted or deleted meanwhile neither repeat nor skip others.
//!
//! The indexes that serve these orders are `(workspace_id, <key>, id)` over live rows
//! (migration `list_indexes`); a key expression here must stay byte-identical to the
//! index's, or the backends sort instead of walking the index.

use sea_orm::sea_query::{Condition, Expr, ExprTrait, SimpleExpr};
use sea_orm::{DbErr, EntityTrait, IdenStatic, Iterable, ModelTrait, QueryFilter, QueryOrder, Select, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a list is sorted by before its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// The id alone: creation order, since ids are UUIDv7.
    Id,
    /// A column that is never NULL.
    Column(&'static str),
    /// A nullable amount (never negative): absent sorts below every amount, the same
    /// on both backends.
    Amount(&'static str),
}

/// A list's order: its key, then the id, both ascending or both descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub key: SortKey,
    pub desc: bool,
}

impl Order {
    pub const NEWEST_FIRST: Order = Order { key: SortKey::Id, desc: true };

    pub const fn asc(key: SortKey) -> Self {
        Self { key, desc: false }
    }

    /// Names the order, so that a cursor taken in one order is refused in another.
    pub fn tag(&self) -> String {
        let key = match self.key {
            SortKey::Id => "id",
            SortKey::Column(c) | SortKey::Amount(c) => c,
        };
        format!("{key}.{}", if self.desc { "desc" } else { "asc" })
    }
}

/// The sort key's value in one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyValue {
    Text(String),
    Int(i64),
    Time(chrono::DateTime<chrono::Utc>),
}

impl From<KeyValue> for Value {
    fn from(k: KeyValue) -> Self {
        match k {
            KeyValue::Text(s) => s.into(),
            KeyValue::Int(i) => i.into(),
            KeyValue::Time(t) => t.into(),
        }
    }
}

/// Where a page ended: the last row's key (none when the order is by id) and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seek {
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyValue>,
    #[serde(rename = "i")]
    pub id: Uuid,
}

/// Absent amounts as the lowest value. A literal, not a bound parameter, and the
/// column unqualified (SQLite allows no table name in an index expression): the index
/// is on this exact expression. Lists read one table, so the name is unambiguous.
fn key_expr(table: &'static str, key: SortKey) -> Option<SimpleExpr> {
    match key {
        SortKey::Id => None,
        SortKey::Column(c) => Some(Expr::col((table, c))),
        SortKey::Amount(c) => Some(Expr::cust(format!("COALESCE(\"{c}\", -1)"))),
    }
}

/// `q` in `order`, starting after `after`. A cursor whose key does not fit the order
/// (only possible if it was forged) matches nothing rather than everything.
pub fn apply<E: EntityTrait>(q: Select<E>, table: &'static str, order: Order, after: Option<&Seek>) -> Select<E> {
    let dir = || if order.desc { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
    let id = || Expr::col((table, "id"));
    let key = key_expr(table, order.key);
    let q = match after {
        None => q,
        Some(s) => {
            let past_id = if order.desc { id().lt(s.id) } else { id().gt(s.id) };
            q.filter(match (&key, &s.key) {
                (None, None) => Condition::all().add(past_id),
                (Some(k), Some(v)) => {
                    let v = Value::from(v.clone());
                    let (at_or_past, past) =
                        if order.desc { (k.clone().lte(v.clone()), k.clone().lt(v)) } else { (k.clone().gte(v.clone()), k.clone().gt(v)) };
                    // The first conjunct is an index range on its own; the second
                    // breaks ties on the id.
                    Condition::all().add(at_or_past).add(Condition::any().add(past).add(past_id))
                }
                _ => Condition::all().add(Expr::val(1).eq(0)),
            })
        }
    };
    let q = match key {
        Some(k) => q.order_by(k, dir()),
        None => q,
    };
    q.order_by(id(), dir())
}

/// Where `m` sits in `order`: the cursor of the page that ends with it.
pub fn seek_of<M: ModelTrait>(m: &M, id: Uuid, order: Order) -> Result<Seek, DbErr> {
    let name = match order.key {
        SortKey::Id => return Ok(Seek { key: None, id }),
        SortKey::Column(c) | SortKey::Amount(c) => c,
    };
    let column = <M::Entity as EntityTrait>::Column::iter()
        .find(|c| c.as_str() == name)
        .ok_or_else(|| DbErr::Custom(format!("no column {name} to sort by")))?;
    let key = match (m.get(column), order.key) {
        (Value::String(Some(s)), _) => KeyValue::Text(s),
        (Value::BigInt(v), SortKey::Amount(_)) => KeyValue::Int(v.unwrap_or(-1)),
        (Value::BigInt(Some(v)), _) => KeyValue::Int(v),
        (Value::ChronoDateTimeUtc(Some(t)), _) => KeyValue::Time(t),
        (other, _) => return Err(DbErr::Custom(format!("cannot sort by {name}: {other:?}"))),
    };
    Ok(Seek { key: Some(key), id })
}
