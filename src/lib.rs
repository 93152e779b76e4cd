//! Palisade: a multi-tenant CRM back end whose core is security.
//!
//! Data flows one way: `http` -> `graphql` (gate: policy, transaction, audit) ->
//! `service` -> (`repo`, `audit`). `auth` computes the request's principal before any
//! resolver runs. See README.md for the security model.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod auth;
pub mod authz;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod repo;
pub mod secret;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
