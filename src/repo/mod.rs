//! The only code that touches `entity` and SQL. Every function that reads or writes
//! workspace data takes the workspace id as its first key, so no lookup can cross a
//! tenant boundary: a foreign workspace's id behaves exactly like a missing one.

pub mod api_keys;
pub mod audit;
pub mod crm;
pub mod customers;
pub mod impersonations;
pub mod invoices;
pub mod jobs;
pub mod master_admins;
pub mod orders;
pub mod org;
pub mod payments;
pub mod products;
pub mod quotes;
pub mod roles;
pub mod security;
pub mod tickets;
pub mod users;
pub mod workspaces;

/// True if the error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// How a list is ordered when the caller asks (else each list's own default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub by_updated: bool,
    pub desc: bool,
}

/// Orders by creation (the v7 id) or last update, then by id so pages are stable.
pub fn sorted<E: sea_orm::EntityTrait>(q: sea_orm::Select<E>, sort: Sort, id: E::Column, updated: E::Column) -> sea_orm::Select<E> {
    use sea_orm::QueryOrder;
    let dir = || if sort.desc { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
    let q = if sort.by_updated { q.order_by(updated, dir()) } else { q };
    q.order_by(id, dir())
}
