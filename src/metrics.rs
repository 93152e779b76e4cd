//! Prometheus metrics: requests, latency, GraphQL errors by code, sign-in outcomes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub graphql_errors: Family<CodeLabels, Counter>,
    pub sign_ins: Family<OutcomeLabels, Counter>,
    /// SQL statements sent to the database.
    pub db_queries: Counter,
    /// Commands sent to the store (`store::Counted`).
    pub store_calls: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("palisade");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let graphql_errors = Family::<CodeLabels, Counter>::default();
        let sign_ins = Family::<OutcomeLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("graphql_errors", "GraphQL errors by extensions.code", graphql_errors.clone());
        registry.register("sign_ins", "Sign-in attempts by outcome", sign_ins.clone());
        let (db_queries, store_calls) = (Counter::default(), Counter::default());
        registry.register("db_queries", "SQL statements sent to the database", db_queries.clone());
        registry.register("store_calls", "Commands sent to the store (with Redis, network round trips)", store_calls.clone());
        Self { registry, requests, latency, graphql_errors, sign_ins, db_queries, store_calls }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Registers the mailer's delivery counters (`palisade_mail_sent`, `palisade_mail_failed`).
    pub fn register_mail(&mut self, sent: Counter, failed: Counter) {
        self.registry.register("mail_sent", "Messages handed to the mail server (or written to the mail folder)", sent);
        self.registry.register("mail_failed", "Messages that could not be handed over", failed);
    }

    pub fn sign_in(&self, outcome: &'static str) {
        self.sign_ins.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}
