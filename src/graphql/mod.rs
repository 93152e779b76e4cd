//! The GraphQL schema: one object per aggregate, merged; output types are projections
//! built here, never entity models.

pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod context;
pub mod convert;
pub mod customers;
pub mod gate;
pub mod history;
pub mod orders;
pub mod paging;
pub mod payments;
pub mod platform;
pub mod products;
pub mod quote_to_cash;
pub mod reports;
pub mod roles;
pub mod root_access;
pub mod security;
pub mod stream;
pub mod team;
pub mod text_guard;
pub mod tickets;
pub mod types;

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
    quote_to_cash::QuoteToCashQuery,
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
    quote_to_cash::QuoteToCashMutation,
    payments::PaymentsMutation,
    tickets::TicketsMutation,
    reports::ReportsMutation,
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
        b = b.data(history::loader(state.db.clone())).data(std::sync::Arc::new(stream::Decisions::default())).data(state);
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

#[cfg(test)]
mod tests {
    /// async-graphql's error converts from anything that implements Display, so a `?` on
    /// a database error in a function returning it would show the error's text to the
    /// client. Resolvers return `AppResult`, whose errors carry a documented code and
    /// keep internal detail in the log; this keeps it that way.
    #[test]
    fn the_api_answers_only_with_app_errors() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        for dir in ["graphql", "http"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("source directory") {
                let path = entry.expect("directory entry").path();
                let text = std::fs::read_to_string(&path).expect("source file");
                let imports_result = text.lines().any(|l| {
                    l.trim_start().starts_with("use async_graphql::")
                        && l.split(['{', '}', ',', ' ', ';', ':']).any(|w| w == "Result" || w == "Error")
                });
                let names_it = ["async_graphql::Result", "async_graphql::Error", "async_graphql::FieldResult"]
                    .iter()
                    .any(|n| text.replace(&format!("\"{n}\""), "").contains(n));
                if imports_result || names_it {
                    offenders.push(path.display().to_string());
                }
            }
        }
        assert!(offenders.is_empty(), "return AppResult / AppError instead of async-graphql's Result in: {offenders:?}");
    }
}
