//! HTTP: routes, request ids, security headers, CORS, metrics.

mod deadline;
mod exports;
mod graphql;
pub mod server;
pub mod ws;

use crate::graphql::AppSchema;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

#[derive(Clone)]
pub struct HttpState {
    pub app: AppState,
    pub schema: AppSchema,
    /// Open WebSocket connections and subscriptions per principal on this instance.
    pub sockets: std::sync::Arc<ws::SocketRegistry>,
}

/// Request id for logs and INTERNAL errors; generated here, never taken from the client.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The answers that send support to the logs carry the request id that finds them.
fn carries_request_id(code: &str) -> bool {
    matches!(code, "INTERNAL" | "SERVICE_UNAVAILABLE")
}

/// A whole-request error answer in the GraphQL shape; INTERNAL and SERVICE_UNAVAILABLE
/// ones carry the request id.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str, rid: &RequestId) -> Response {
    let mut extensions = serde_json::json!({ "code": code });
    if carries_request_id(code) {
        extensions["requestId"] = rid.0.clone().into();
    }
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": extensions }] });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Every error of a GraphQL response leaves with a documented code; INTERNAL and
/// SERVICE_UNAVAILABLE ones also carry the request id.
pub(crate) fn finish_error(err: &mut async_graphql::ServerError, request_id: &str) {
    let ext = err.extensions.get_or_insert_with(Default::default);
    match ext.get("code") {
        Some(async_graphql::Value::String(c)) if carries_request_id(c) => ext.set("requestId", request_id),
        Some(_) => {}
        // Parse and validation errors from the GraphQL engine: the client sent a
        // document or variables that do not fit the schema.
        None => ext.set("code", "BAD_USER_INPUT"),
    }
}

pub fn router(app: AppState) -> Router {
    let schema = crate::graphql::build_schema(&app.config, Some(app.clone()));
    let state = HttpState { app: app.clone(), schema, sockets: Default::default() };
    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/exports/{ticket}", get(exports::download))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        // The body limit is enforced again by the handler's own extractor; this layer
        // makes oversized uploads stop early instead of being read.
        .layer(axum::extract::DefaultBodyLimit::max(app.config.max_body_bytes));
    if !app.config.allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = app.config.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::HeaderName::from_static(graphql::UPLOAD_HEADER)])
                .allow_credentials(true)
                .max_age(std::time::Duration::from_secs(600)),
        );
    }
    router.layer(middleware::from_fn_with_state(state, observe))
}

/// Request id, tracing span, body deadline, metrics and security headers for every
/// response.
async fn observe(State(state): State<HttpState>, req: Request, next: Next) -> Response {
    let id = uuid::Uuid::now_v7().to_string();
    let (mut req, body_late) = {
        let (parts, body) = req.into_parts();
        let limit =
            if graphql::is_multipart(&parts.headers) { state.app.config.upload_timeout } else { state.app.config.http.body_timeout };
        let (body, tripped) = deadline::bounded(body, limit);
        (Request::from_parts(parts, body), tripped)
    };
    req.extensions_mut().insert(RequestId(id.clone()));
    let route: &'static str = match req.extensions().get::<MatchedPath>().map(MatchedPath::as_str) {
        Some("/graphql") => "/graphql",
        Some("/graphql/ws") => "/graphql/ws",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/metrics") => "/metrics",
        Some("/exports/{ticket}") => "/exports",
        _ => "other",
    };
    // ERROR level so that the span (and its request id) exists whatever RUST_LOG lets
    // through: a span below the filter's level is not recorded, and the error lines
    // logged inside it would lose the id.
    let span = tracing::error_span!("request", request_id = %id, method = %req.method(), route);
    let start = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    if body_late.is_set() {
        // Whatever the handler made of the failed read: the client was too slow, and
        // the rest of its body is not waited for.
        res = error_response(
            StatusCode::REQUEST_TIMEOUT,
            "BAD_USER_INPUT",
            "the request body did not arrive in time",
            &RequestId(id.clone()),
        );
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let elapsed = start.elapsed();
    span.in_scope(|| tracing::info!(status = res.status().as_u16(), ms = elapsed.as_millis() as u64, "request"));
    let m = &state.app.metrics;
    m.requests.get_or_create(&crate::metrics::RequestLabels { route, status: res.status().as_u16() }).inc();
    m.latency.get_or_create(&crate::metrics::RouteLabels { route }).observe(elapsed.as_secs_f64());
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

async fn readyz(State(state): State<HttpState>) -> Response {
    let db_ok = state.app.db.ping().await.is_ok();
    let store_ok = state.app.store.ping().await.is_ok();
    let status = if db_ok && store_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    // Mail is reported, not required: sign-in by password and TOTP works without it.
    let mail = state.app.mailer.health();
    (
        status,
        Json(serde_json::json!({
            "database": word(db_ok),
            "store": word(store_ok),
            "storeKind": state.app.store.kind(),
            "mail": if mail.failing_streak == 0 { "ok" } else { "failing" },
            "mailKind": state.app.mailer.kind(),
            "mailFailedSends": mail.failed,
        })),
    )
        .into_response()
}

async fn metrics(State(state): State<HttpState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.app.metrics.render()).into_response()
}
