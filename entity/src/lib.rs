//! sea-orm entities: one module per table, plain data, no logic.
//!
//! These models never leave the server as they are: GraphQL output types are separate
//! projections built in `palisade::graphql`, so a new column (a hash, a secret) cannot
//! leak by accident.

pub mod api_key;
pub mod audit_anchor;
pub mod audit_entry;
pub mod customer;
pub mod department;
pub mod group;
pub mod group_member;
pub mod impersonation;
pub mod invoice;
pub mod job;
pub mod login_footprint;
pub mod master_admin;
pub mod order;
pub mod order_line;
pub mod payment;
pub mod product;
pub mod quote;
pub mod recovery_code;
pub mod role;
pub mod role_assignment;
pub mod team;
pub mod ticket;
pub mod user;
pub mod workspace;
