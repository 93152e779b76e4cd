//! Lists over GraphQL: page sizes within the caller's restrictions, Relay pages with
//! offset cursors, and the ordering every record list shares.

use crate::authz::eval::Grants;
use crate::error::{AppError, AppResult};
use crate::repo;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Enum, InputObject, SimpleObject};

pub const MAX_PAGE: i32 = 100;

#[derive(Enum, Copy, Clone, PartialEq, Eq, Default)]
pub enum OrderDirection {
    #[default]
    Asc,
    Desc,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq, Default)]
pub enum ListOrderField {
    #[default]
    CreatedAt,
    UpdatedAt,
}

/// Ordering for record lists (customers have their own, richer `CustomerOrder`).
#[derive(InputObject, Default)]
pub struct ListOrder {
    #[graphql(default)]
    pub field: ListOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

pub(crate) fn sort(o: Option<ListOrder>) -> Option<repo::Sort> {
    o.map(|o| repo::Sort { by_updated: o.field == ListOrderField::UpdatedAt, desc: o.direction == OrderDirection::Desc })
}

#[derive(SimpleObject)]
pub struct ListInfo {
    /// How many records match, in the caller's scope.
    pub total_count: u64,
}

/// A Relay page of `rows` found at `offset` among `total`, with offset cursors.
pub(crate) fn page<T: async_graphql::OutputType, M>(
    offset: u64,
    total: u64,
    rows: Vec<M>,
    f: impl Fn(M) -> T,
) -> Connection<String, T, ListInfo, EmptyFields> {
    let n = rows.len() as u64;
    let mut conn = Connection::with_additional_fields(offset > 0, offset + n < total, ListInfo { total_count: total });
    conn.edges.extend(rows.into_iter().enumerate().map(|(i, m)| Edge::new(format!("o:{}", offset + i as u64 + 1), f(m))));
    conn
}

/// The page size a principal may ask for: FORBIDDEN when `first` asks for more than
/// their role's maximum; without `first`, 20 or that maximum, whichever is smaller.
pub(crate) fn page_size(g: &Grants, first: Option<i32>) -> AppResult<u64> {
    let max = i64::from(g.restrictions.max_records_per_request).min(i64::from(MAX_PAGE));
    let want = first.map_or(20.min(max.max(1)), i64::from);
    if want < 1 {
        return Err(AppError::bad_input("first", "must be at least 1"));
    }
    if want > max {
        return Err(AppError::Denied(format!("your roles allow at most {max} records per request")));
    }
    Ok(want as u64)
}

pub(crate) fn offset_cursor(after: Option<&str>) -> AppResult<u64> {
    match after {
        None => Ok(0),
        Some(c) => {
            c.strip_prefix("o:").and_then(|n| n.parse().ok()).ok_or_else(|| AppError::bad_input("after", "is not a cursor from this list"))
        }
    }
}
