//! Use cases, one module per aggregate. A mutation use case takes the gate's `Tx`
//! (so it can only run inside a gated, audited transaction), does its work through
//! `repo`, and records exactly the audit events that describe it.

pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod customers;
pub mod export;
pub mod master_auth;
pub mod notify;
pub mod orders;
pub mod payments;
pub mod products;
pub mod quote_to_cash;
pub mod records;
pub mod roles;
pub mod security;
pub mod sign_in;
pub mod support;
pub mod team;
pub mod tickets;
pub mod workspaces;
