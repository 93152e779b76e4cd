//! Black-box tests: each starts the real server on port 0 with its own database (a
//! SQLite file, or a fresh PostgreSQL database when PALISADE_TEST_DATABASE_URL is set),
//! its own store (memory, or a random Redis key prefix when PALISADE_TEST_REDIS_URL is
//! set) and a manual clock, and talks to it over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod apikeys;
mod audit;
mod audit_chain;
mod audit_reads;
mod audit_under_load;
mod auth;
mod bulk_export;
mod control_chars;
mod customers;
mod downloads;
mod escalation;
mod graphql_ws_node;
mod hardening;
mod impersonation;
mod imports;
mod leaks;
mod lifecycle;
mod lost_updates;
mod mail;
mod mail_outage;
mod master_two_factor;
mod matrix;
mod multi_instance;
mod orders;
mod outages;
mod paging;
mod principal_cache;
mod products;
mod reports;
mod roles;
mod schema;
mod security;
mod sessions;
mod signin_limits;
mod slow_clients;
mod small_breaks;
mod smtp;
mod store;
mod subscriptions;
mod team;
mod ws_client;
