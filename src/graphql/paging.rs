//! Lists over GraphQL: page sizes within the caller's restrictions, Relay pages with
//! opaque keyset cursors (see `repo::seek`), a count only when it is asked for, and the
//! ordering every record list shares.

use crate::authz::eval::Grants;
use crate::error::{AppError, AppResult};
use crate::repo::seek::{Order, Seek, SortKey};
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, InputObject, OutputType, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::DbErr;
use serde::{Deserialize, Serialize};

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

impl ListOrder {
    /// The order to read in: the caller's, else the list's `default`.
    pub(crate) fn or(o: Option<ListOrder>, default: Order) -> Order {
        o.map_or(default, |o| Order {
            key: match o.field {
                ListOrderField::CreatedAt => SortKey::Id,
                ListOrderField::UpdatedAt => SortKey::Column("updated_at"),
            },
            desc: o.direction == OrderDirection::Desc,
        })
    }
}

#[derive(SimpleObject)]
pub struct ListInfo {
    /// How many records match, in the caller's scope. Counted only when selected.
    pub total_count: u64,
}

/// One page being read: how many rows, in which order, after which row.
pub(crate) struct Window {
    limit: u64,
    order: Order,
    after: Option<Seek>,
    list: &'static str,
}

impl Window {
    /// The page that `first` and `after` ask for in `list`, whose name (with the order)
    /// is sealed into its cursors so that one list's cursor is refused by another.
    pub(crate) fn new(g: &Grants, list: &'static str, order: Order, first: Option<i32>, after: Option<&str>) -> AppResult<Self> {
        let limit = page_size(g, first)?;
        let after = after.map(|c| decode(list, order, c)).transpose()?;
        Ok(Self { limit, order, after, list })
    }

    pub(crate) fn order(&self) -> Order {
        self.order
    }

    pub(crate) fn after(&self) -> Option<&Seek> {
        self.after.as_ref()
    }

    /// Rows to read: one more than the page shows, to know whether another follows.
    pub(crate) fn fetch(&self) -> u64 {
        self.limit + 1
    }

    /// The rows to show, and whether more follow.
    pub(crate) fn split<M>(&self, mut rows: Vec<M>) -> (Vec<M>, bool) {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        (rows, more)
    }

    /// A Relay page of `edges`, each with the position of its row.
    pub(crate) fn connection<T: OutputType>(
        &self,
        edges: Vec<(Seek, T)>,
        more: bool,
        total: Option<u64>,
    ) -> AppResult<Connection<String, T, ListInfo, EmptyFields>> {
        let mut conn = Connection::with_additional_fields(self.after.is_some(), more, ListInfo { total_count: total.unwrap_or(0) });
        for (at, node) in edges {
            conn.edges.push(Edge::new(encode(self.list, self.order, at)?, node));
        }
        Ok(conn)
    }

    /// `rows` (as read with `fetch`) as a page, each projected by `f`.
    pub(crate) fn page<M, T: OutputType>(
        &self,
        rows: Vec<M>,
        total: Option<u64>,
        seek: impl Fn(&M, Order) -> Result<Seek, DbErr>,
        mut f: impl FnMut(M) -> T,
    ) -> AppResult<Connection<String, T, ListInfo, EmptyFields>> {
        let (rows, more) = self.split(rows);
        let edges = rows.into_iter().map(|m| Ok((seek(&m, self.order)?, f(m)))).collect::<Result<Vec<_>, DbErr>>()?;
        self.connection(edges, more, total)
    }
}

/// Whether the query selected `totalCount`: counting a large scope costs more than the
/// page itself, so it is counted only when asked for.
pub(crate) fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
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

/// What a cursor holds: the list and order it belongs to, and the row it follows. It
/// is opaque to clients but not secret: a forged one only moves where a page of the
/// caller's own scope starts.
#[derive(Serialize, Deserialize)]
struct Cursor {
    l: String,
    o: String,
    #[serde(flatten)]
    at: Seek,
}

fn encode(list: &str, order: Order, at: Seek) -> AppResult<String> {
    let json = serde_json::to_vec(&Cursor { l: list.to_owned(), o: order.tag(), at }).map_err(AppError::internal)?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn decode(list: &str, order: Order, cursor: &str) -> AppResult<Seek> {
    let c: Cursor = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| AppError::bad_input("after", "is not a cursor from this list"))?;
    if c.l != list || c.o != order.tag() {
        return Err(AppError::bad_input("after", "is a cursor from another list or order; start again without it"));
    }
    Ok(c.at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_refused_elsewhere() {
        let order = Order { key: SortKey::Column("name"), desc: true };
        let at = Seek { key: Some(crate::repo::seek::KeyValue::Text("Ada \"Lovelace\"".into())), id: uuid::Uuid::now_v7() };
        let c = encode("customers", order, at.clone()).unwrap();
        assert_eq!(decode("customers", order, &c).unwrap(), at);
        assert!(decode("products", order, &c).is_err(), "another list");
        assert!(decode("customers", Order { desc: false, ..order }, &c).is_err(), "another direction");
        assert!(decode("customers", order, "o:20").is_err(), "an old offset cursor");
        assert!(decode("customers", order, &c[1..]).is_err(), "a damaged cursor");
    }
}
