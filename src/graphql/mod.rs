//! The GraphQL schema: one object per aggregate, merged; output types are projections
//! built here, never entity models.

pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod context;
pub mod customers;
pub mod gate;
pub mod history;
pub mod orders;
pub mod payments;
pub mod platform;
pub mod policy;
pub mod products;
pub mod reports;
pub mod roles;
pub mod security;
pub mod stream;
pub mod team;
pub mod text_guard;
pub mod tickets;
pub mod types;
pub mod work;

use crate::config::Config;
use crate::state::AppState;
use async_graphql::{MergedObject, Schema};

#[derive(MergedObject, Default)]
pub struct Query(
    auth::AuthQuery,
    audit::AuditQuery,
    roles::RolesQuery,
    customers::CustomersQuery,
    products::ProductsQuery,
    orders::OrdersQuery,
    reports::ReportsQuery,
    work::WorkQuery,
    payments::PaymentsQuery,
    tickets::TicketsQuery,
    team::TeamQuery,
    security::SecurityQuery,
    apikeys::ApiKeysQuery,
    platform::PlatformQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    audit::AuditMutation,
    platform::PlatformMutation,
    roles::RolesMutation,
    customers::CustomersMutation,
    products::ProductsMutation,
    orders::OrdersMutation,
    work::WorkMutation,
    payments::PaymentsMutation,
    tickets::TicketsMutation,
    team::TeamMutation,
    security::SecurityMutation,
    apikeys::ApiKeysMutation,
);

pub type AppSchema = Schema<Query, Mutation, stream::Subscription>;

/// The schema with the configured limits. `state` is absent only for `export-schema`.
pub fn build_schema(config: &Config, state: Option<AppState>) -> AppSchema {
    let mut b = Schema::build(Query::default(), Mutation::default(), stream::Subscription)
        .extension(gate::Gate)
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(8);
    if !config.introspection {
        b = b.disable_introspection().disable_suggestions();
    }
    if let Some(state) = state {
        b = b.data(history::loader(state.db.clone())).data(state);
    }
    b.finish()
}

/// The SDL that `palisade export-schema` prints and `schema.graphql` must equal.
pub fn sdl() -> String {
    match Config::from_lookup(|_| None) {
        Ok(config) => build_schema(&config, None).sdl(),
        Err(e) => format!("# configuration error: {e}\n"),
    }
}
