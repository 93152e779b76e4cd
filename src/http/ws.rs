//! GraphQL subscriptions over WebSocket at `/graphql/ws`: the graphql-transport-ws
//! protocol (as the `graphql-ws` npm client speaks it), implemented here rather than
//! with async-graphql's own server, whose close codes and timeouts differ from the
//! protocol.
//!
//! Guarantees:
//! - a browser's upgrade is accepted only from an allowed origin (the configured ones,
//!   or the server's own); clients that send no Origin are not browsers;
//! - the subprotocol must be `graphql-transport-ws` (else close 4406);
//! - `connection_init` must arrive within `PALISADE_WS_INIT_TIMEOUT_MS` (else 4408) and
//!   only once (4429); it authenticates the socket with a session token, an API key or
//!   the session cookie of the upgrade request, and a missing or invalid credential
//!   closes the socket (4403);
//! - `subscribe` before `connection_ack` closes 4401; a duplicate id closes 4409;
//!   anything unreadable closes 4400;
//! - every subscription passes the same authorization as every root field
//!   (`policy::authorize`), refusals audited like the gate's; only subscriptions are
//!   served here (queries and mutations go through POST /graphql, which owns the
//!   mutation transaction);
//! - sockets and subscriptions per principal are capped on each instance;
//! - the credential is checked again while the socket is idle, and a socket whose
//!   credential ended (sign-out, revocation, expiry, suspended workspace) is closed
//!   (4403) within `PALISADE_WS_RECHECK_MS`.

use super::{HttpState, RequestId};
use crate::auth::RequestMeta;
use crate::auth::cookie;
use crate::auth::{self, Principal};
use crate::error::AppError;
use crate::graphql::gate::RequestState;
use crate::graphql::stream::WsCredential;
use crate::secret::Secret;
use async_graphql::parser::types::{OperationType, Selection};
use async_graphql::{Response, ServerError, Value};
use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::Instrument;

pub const PROTOCOL: &str = "graphql-transport-ws";

/// Close codes of the graphql-transport-ws protocol.
pub mod close {
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const SUBPROTOCOL: u16 = 4406;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_ID: u16 = 4409;
    pub const TOO_MANY: u16 = 4429;
    pub const INTERNAL: u16 = 4500;
}

/// Error codes after which the socket's credential is gone, not just one stream.
const CREDENTIAL_ENDED: &[&str] = &["UNAUTHENTICATED", "LOGIN_RESTRICTED", "WORKSPACE_SUSPENDED"];

/// Open sockets and subscriptions per principal on this instance.
#[derive(Default)]
pub struct SocketRegistry {
    counts: Mutex<HashMap<String, (usize, usize)>>,
}

/// Held while a socket (or subscription) is open; frees its place when dropped.
pub struct Slot {
    registry: Arc<SocketRegistry>,
    key: String,
    subscription: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.registry.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = counts.get_mut(&self.key) {
            if self.subscription {
                c.1 = c.1.saturating_sub(1);
            } else {
                c.0 = c.0.saturating_sub(1);
            }
            if *c == (0, 0) {
                counts.remove(&self.key);
            }
        }
    }
}

impl SocketRegistry {
    fn take(self: &Arc<Self>, key: &str, subscription: bool, max: usize) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let c = counts.entry(key.to_owned()).or_default();
        let n = if subscription { &mut c.1 } else { &mut c.0 };
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot { registry: Arc::clone(self), key: key.to_owned(), subscription })
    }

    /// Open sockets on this instance (all principals).
    pub fn sockets(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).values().map(|c| c.0).sum()
    }
}

fn principal_key(p: &Principal) -> String {
    match p {
        Principal::User(u) if u.api_key().is_some() => format!("key:{}", u.user_id),
        Principal::User(u) => format!("user:{}", u.user_id),
        Principal::MasterAdmin(m) => format!("master:{}", m.admin_id),
        Principal::Anonymous => "anonymous".into(),
    }
}

/// A browser's WebSocket carries its page's origin; only allowed ones (or the server's
/// own) may open a socket, so another site cannot ride on a user's session cookie.
fn origin_allowed(s: &HttpState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    if s.app.config.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

struct Upgrade {
    /// The upgrade request's id: the socket's log lines, audit entries and error
    /// answers carry it, as the `x-request-id` of the 101 answer does.
    request_id: String,
    ip: IpAddr,
    user_agent: Option<String>,
    /// A token presented with the upgrade request itself (cookie or bearer header).
    presented: Option<String>,
    protocol_ok: bool,
}

pub(super) async fn upgrade(
    State(s): State<HttpState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> HttpResponse {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rej) => return rej.into_response(),
    };
    if !origin_allowed(&s, &headers) {
        let body = json!({ "errors": [{ "message": "this origin may not open a WebSocket here", "extensions": { "code": "FORBIDDEN" } }] });
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    }
    let protocol_ok = ws.requested_protocols().any(|p| p.to_str().is_ok_and(|v| v.split(',').any(|x| x.trim() == PROTOCOL)));
    let info = Upgrade {
        request_id: rid.0,
        ip: crate::auth::security_settings::client_ip(addr.ip(), &headers, &s.app.config.trusted_proxies),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(512).collect()),
        presented: cookie::token(&s.app.config, &headers).map(|(t, _)| t),
        protocol_ok,
    };
    // The socket outlives this request, in a task of its own; it keeps the request's
    // span so that what it logs still names the request id.
    let span = tracing::Span::current();
    ws.protocols([PROTOCOL])
        .max_message_size(s.app.config.max_body_bytes)
        .on_upgrade(move |socket| connection(s, socket, info).instrument(span))
}

/// What a subscription task reports to its connection.
enum Out {
    Next { id: String, response: Box<Response>, first: bool },
    Done { id: String },
}

/// The socket once `connection_ack` was sent.
struct Live {
    principal: Principal,
    key: String,
    credential: WsCredential,
    meta: RequestMeta,
    _slot: Slot,
    subscriptions: HashMap<String, (AbortHandle, Slot)>,
}

enum Step {
    Continue,
    Close(u16, String),
}

fn text(v: serde_json::Value) -> Message {
    Message::Text(v.to_string().into())
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame { code, reason: reason.chars().take(100).collect::<String>().into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn connection(s: HttpState, mut socket: WebSocket, info: Upgrade) {
    if !info.protocol_ok {
        close(&mut socket, close::SUBPROTOCOL, "Subprotocol not acceptable").await;
        return;
    }
    let config = s.app.config.ws.clone();
    let init_deadline = tokio::time::Instant::now() + config.init_timeout;
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(64);
    let mut live: Option<Live> = None;
    let mut recheck = tokio::time::interval(config.recheck);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck.reset();
    loop {
        let idle = live.as_ref().is_some_and(|l| l.subscriptions.is_empty());
        let step = tokio::select! {
            _ = tokio::time::sleep_until(init_deadline), if live.is_none() => {
                Step::Close(close::INIT_TIMEOUT, "Connection initialisation timeout".into())
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(t))) => on_message(&s, &mut socket, &info, &mut live, &out_tx, t.as_str()).await,
                Some(Ok(Message::Binary(_))) => Step::Close(close::BAD_REQUEST, "Invalid message received".into()),
                Some(Ok(_)) => Step::Continue,
            },
            Some(out) = out_rx.recv() => on_output(&mut socket, &mut live, out).await,
            _ = recheck.tick(), if idle => match &live {
                Some(l) => match auth::authenticate(&s.app, l.credential.token.expose(), l.credential.ip).await {
                    Ok(Some(p)) if principal_key(&p) == l.key => Step::Continue,
                    Err(AppError::Unavailable) => Step::Close(close::INTERNAL, "Internal server error".into()),
                    _ => Step::Close(close::FORBIDDEN, "Forbidden".into()),
                },
                None => Step::Continue,
            },
        };
        if let Step::Close(code, reason) = step {
            close(&mut socket, code, &reason).await;
            break;
        }
    }
    if let Some(l) = live {
        for (handle, _) in l.subscriptions.values() {
            handle.abort();
        }
    }
}

async fn on_output(socket: &mut WebSocket, live: &mut Option<Live>, out: Out) -> Step {
    let Some(l) = live.as_mut() else { return Step::Continue };
    match out {
        Out::Next { id, mut response, first } => {
            if !l.subscriptions.contains_key(&id) {
                return Step::Continue;
            }
            for err in &mut response.errors {
                super::finish_error(err, &l.meta.request_id);
            }
            let ended = response.errors.iter().any(|e| match e.extensions.as_ref().and_then(|x| x.get("code")) {
                Some(Value::String(c)) => CREDENTIAL_ENDED.contains(&c.as_str()),
                _ => false,
            });
            // The credential itself is gone: the whole socket closes, as the protocol
            // says for a connection that is no longer authorized.
            if ended {
                return Step::Close(close::FORBIDDEN, "Forbidden".into());
            }
            // A stream that fails before its first result failed to start: that is an
            // `error` message, which also ends the subscription.
            let msg = if first && !response.errors.is_empty() && matches!(response.data, Value::Null) {
                l.subscriptions.remove(&id);
                json!({ "type": "error", "id": id, "payload": response.errors })
            } else {
                json!({ "type": "next", "id": id, "payload": response })
            };
            if socket.send(text(msg)).await.is_err() {
                return Step::Close(close::INTERNAL, "Internal server error".into());
            }
            Step::Continue
        }
        Out::Done { id } => {
            if l.subscriptions.remove(&id).is_some() && socket.send(text(json!({ "type": "complete", "id": id }))).await.is_err() {
                return Step::Close(close::INTERNAL, "Internal server error".into());
            }
            Step::Continue
        }
    }
}

/// The credential of `connection_init`: `token` (a session token), `apiKey`, or an
/// `Authorization: Bearer` value in the payload; else whatever the upgrade request
/// presented (the session cookie of a same-origin page).
fn credential(payload: &serde_json::Value, info: &Upgrade) -> Option<String> {
    let field = |k: &str| payload.get(k).and_then(|v| v.as_str()).map(str::trim).filter(|v| !v.is_empty());
    let bearer = field("Authorization")
        .or_else(|| field("authorization"))
        .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim()));
    field("token").or_else(|| field("apiKey")).or(bearer).map(str::to_owned).or_else(|| info.presented.clone())
}

async fn on_message(
    s: &HttpState,
    socket: &mut WebSocket,
    info: &Upgrade,
    live: &mut Option<Live>,
    out_tx: &mpsc::Sender<Out>,
    raw: &str,
) -> Step {
    let Ok(msg) = serde_json::from_str::<serde_json::Value>(raw) else {
        return Step::Close(close::BAD_REQUEST, "Invalid message received".into());
    };
    match msg.get("type").and_then(|t| t.as_str()) {
        Some("connection_init") => {
            if live.is_some() {
                return Step::Close(close::TOO_MANY, "Too many initialisation requests".into());
            }
            init(s, socket, info, live, msg.get("payload").unwrap_or(&serde_json::Value::Null)).await
        }
        Some("ping") => {
            let mut pong = json!({ "type": "pong" });
            if let Some(p) = msg.get("payload") {
                pong["payload"] = p.clone();
            }
            if socket.send(text(pong)).await.is_err() {
                Step::Close(close::INTERNAL, "Internal server error".into())
            } else {
                Step::Continue
            }
        }
        Some("pong") => Step::Continue,
        Some("subscribe") => {
            let Some(l) = live.as_mut() else { return Step::Close(close::UNAUTHORIZED, "Unauthorized".into()) };
            let (Some(id), Some(payload)) = (msg.get("id").and_then(|v| v.as_str()), msg.get("payload")) else {
                return Step::Close(close::BAD_REQUEST, "Invalid message received".into());
            };
            if id.is_empty() || id.len() > 128 {
                return Step::Close(close::BAD_REQUEST, "Invalid message received".into());
            }
            if l.subscriptions.contains_key(id) {
                return Step::Close(close::DUPLICATE_ID, format!("Subscriber for {id} already exists"));
            }
            subscribe(s, socket, l, out_tx, id, payload).await
        }
        Some("complete") => {
            if let (Some(l), Some(id)) = (live.as_mut(), msg.get("id").and_then(|v| v.as_str()))
                && let Some((handle, _)) = l.subscriptions.remove(id)
            {
                handle.abort();
            }
            Step::Continue
        }
        _ => Step::Close(close::BAD_REQUEST, "Invalid message received".into()),
    }
}

async fn init(s: &HttpState, socket: &mut WebSocket, info: &Upgrade, live: &mut Option<Live>, payload: &serde_json::Value) -> Step {
    let app = &s.app;
    let Some(token) = credential(payload, info) else { return Step::Close(close::FORBIDDEN, "Forbidden".into()) };
    let principal = match auth::authenticate(app, &token, Some(info.ip)).await {
        Ok(Some(p)) => p,
        Err(AppError::Unavailable) => return Step::Close(close::INTERNAL, "Internal server error".into()),
        _ => return Step::Close(close::FORBIDDEN, "Forbidden".into()),
    };
    // The socket spends from the same bucket as the credential's HTTP requests.
    let bucket = match &principal {
        Principal::User(u) if u.api_key().is_some() => u.api_key().map(|k| (crate::auth::ratelimit::Bucket::ApiKey, k.id.to_string())),
        p => p.session().map(|x| (crate::auth::ratelimit::Bucket::ApiSession, x.hash.clone())),
    };
    if let Some((bucket, key)) = bucket
        && app.limiter.check(bucket, &key).await.is_err()
    {
        return Step::Close(close::TOO_MANY, "Too many requests".into());
    }
    let key = principal_key(&principal);
    let Some(slot) = s.sockets.take(&key, false, app.config.ws.max_sockets_per_principal) else {
        return Step::Close(close::TOO_MANY, "Too many connections for this principal".into());
    };
    if socket.send(text(json!({ "type": "connection_ack" }))).await.is_err() {
        return Step::Close(close::INTERNAL, "Internal server error".into());
    }
    let meta = RequestMeta {
        request_id: info.request_id.clone(),
        ip: Some(info.ip),
        user_agent: info.user_agent.clone(),
        token: Some(Secret::new(token.clone())),
        device: None,
    };
    *live = Some(Live {
        principal,
        key,
        credential: WsCredential { token: Secret::new(token), ip: Some(info.ip) },
        meta,
        _slot: slot,
        subscriptions: HashMap::new(),
    });
    Step::Continue
}

fn error_message(id: &str, e: ServerError) -> Message {
    text(json!({ "type": "error", "id": id, "payload": [e] }))
}

fn app_error(e: AppError) -> ServerError {
    e.unplaced()
}

/// The root fields of the subscription a request asks for, or why it cannot run here.
fn subscription_fields(request: &async_graphql::Request) -> Result<Vec<String>, AppError> {
    let doc = async_graphql::parser::parse_query(&request.query).map_err(|e| AppError::bad_input("query", e.to_string()))?;
    let op = match (&request.operation_name, &doc.operations) {
        (Some(name), ops) => ops.iter().find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str())).map(|(_, o)| o),
        (None, ops) => {
            let mut it = ops.iter();
            match (it.next(), it.next()) {
                (Some((_, o)), None) => Some(o),
                _ => None,
            }
        }
    };
    let Some(op) = op else { return Err(AppError::bad_input("operationName", "name exactly one operation of the document")) };
    if op.node.ty != OperationType::Subscription {
        return Err(AppError::bad_input(
            "query",
            "only subscriptions are served over WebSocket; send queries and mutations to POST /graphql",
        ));
    }
    let mut fields = Vec::new();
    for item in &op.node.selection_set.node.items {
        match &item.node {
            Selection::Field(f) if f.node.name.node.as_str() == "__typename" => {}
            Selection::Field(f) => fields.push(f.node.name.node.to_string()),
            _ => return Err(AppError::bad_input("query", "select subscription fields directly (no fragments at the root)")),
        }
    }
    Ok(fields)
}

async fn subscribe(
    s: &HttpState,
    socket: &mut WebSocket,
    l: &mut Live,
    out_tx: &mpsc::Sender<Out>,
    id: &str,
    payload: &serde_json::Value,
) -> Step {
    let app = &s.app;
    let request: async_graphql::Request = match serde_json::from_value(payload.clone()) {
        Ok(r) => r,
        Err(_) => return Step::Close(close::BAD_REQUEST, "Invalid message received".into()),
    };
    if request.query.contains('\0') {
        return Step::Close(close::BAD_REQUEST, "Invalid message received".into());
    }
    let rid = l.meta.request_id.clone();
    let refuse = |e: AppError| {
        let mut se = app_error(e);
        super::finish_error(&mut se, &rid);
        error_message(id, se)
    };
    let fields = match subscription_fields(&request) {
        Ok(f) => f,
        Err(e) => return send_or_close(socket, refuse(e)).await,
    };
    // Authorized as the credential stands now, not as it stood at connection_init.
    match auth::authenticate(app, l.credential.token.expose(), l.credential.ip).await {
        Ok(Some(p)) if principal_key(&p) == l.key => l.principal = p,
        Err(AppError::Unavailable) => return Step::Close(close::INTERNAL, "Internal server error".into()),
        _ => return Step::Close(close::FORBIDDEN, "Forbidden".into()),
    }
    for field in &fields {
        if let Err(refusal) = crate::graphql::root_access::authorize("Subscription", field, &l.principal, app.clock.now()) {
            crate::graphql::gate::audit_refusal(app, &l.principal, &l.meta, "Subscription", field, &refusal).await;
            return send_or_close(socket, refuse(refusal.error)).await;
        }
    }
    let Some(slot) = s.sockets.take(&l.key, true, app.config.ws.max_subscriptions_per_principal) else {
        return send_or_close(socket, refuse(AppError::Denied("too many subscriptions for this principal".into()))).await;
    };
    let request = request.data(l.principal.clone()).data(l.meta.clone()).data(Arc::new(RequestState::default())).data(l.credential.clone());
    let mut stream = s.schema.execute_stream(request);
    let (tx, id_owned) = (out_tx.clone(), id.to_owned());
    let task = tokio::spawn(
        async move {
            let mut first = true;
            while let Some(response) = stream.next().await {
                if tx.send(Out::Next { id: id_owned.clone(), response: Box::new(response), first }).await.is_err() {
                    return;
                }
                first = false;
            }
            let _ = tx.send(Out::Done { id: id_owned }).await;
        }
        .instrument(tracing::Span::current()),
    );
    l.subscriptions.insert(id.to_owned(), (task.abort_handle(), slot));
    Step::Continue
}

async fn send_or_close(socket: &mut WebSocket, msg: Message) -> Step {
    if socket.send(msg).await.is_err() { Step::Close(close::INTERNAL, "Internal server error".into()) } else { Step::Continue }
}
