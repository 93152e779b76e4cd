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
pub mod seek;
pub mod tickets;
pub mod users;
pub mod workspaces;

/// True if the error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}
