//! POST /graphql and GET /graphql.
//!
//! Guarantees: only `application/json` (or `application/graphql`) bodies are executed,
//! and multipart uploads only with a header no HTML form can send (`UPLOAD_HEADER`),
//! so a cross-site HTML form cannot reach a mutation; an upload's operation is bounded
//! like a JSON body and its file lands in an unlinked temporary file; GET never runs a mutation;
//! batches are refused; NUL characters are refused before anything runs; the principal
//! is authenticated once, before execution, from a session re-read for this request;
//! INTERNAL and SERVICE_UNAVAILABLE errors carry the request id and nothing else, on
//! every path that answers them.

use super::{HttpState, RequestId};
use crate::auth::RequestMeta;
use crate::auth::cookie::{self, TokenSource};
use crate::auth::{self, Principal};
use crate::error::AppError;
use crate::graphql::gate::RequestState;
use crate::secret::Secret;
use async_graphql::Value;
use async_graphql::parser::types::OperationType;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::net::SocketAddr;

fn reject(rid: &RequestId, status: StatusCode, code: &str, message: &str) -> Response {
    super::error_response(status, code, message, rid)
}

fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The request in a JSON body, or why it is not one (answered as 400).
fn parse_json(body: &[u8]) -> Result<async_graphql::Request, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| "the request body is not valid JSON (UTF-8)".to_owned())?;
    if value.is_array() {
        return Err("batched requests are not supported; send one operation per request".into());
    }
    if has_nul(&value) {
        return Err("NUL characters are not allowed in a request".into());
    }
    serde_json::from_value(value).map_err(|e| {
        let what = e.to_string();
        format!("not a GraphQL request: {}", what.split(" at line").next().unwrap_or("invalid request"))
    })
}

pub(super) async fn post(
    State(s): State<HttpState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Extension(rid): Extension<RequestId>,
    req: axum::extract::Request,
) -> Response {
    let headers = req.headers().clone();
    let content_type = media_type(&headers);
    if content_type.as_deref() == Some("multipart/form-data") {
        if !headers.contains_key(UPLOAD_HEADER) {
            let why = format!("a multipart request must carry the {UPLOAD_HEADER} header");
            return reject(&rid, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &why);
        }
        return execute(s, addr, rid, headers, Body::Upload(req.into_body())).await;
    }
    let body = match Bytes::from_request(req, &s).await {
        Ok(b) => b,
        Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let msg = format!("the request body is too large (at most {} bytes)", s.app.config.max_body_bytes);
            return reject(&rid, StatusCode::PAYLOAD_TOO_LARGE, "BAD_USER_INPUT", &msg);
        }
        Err(_) => return reject(&rid, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "could not read the request body"),
    };
    let request = match content_type.as_deref() {
        Some("application/json") => match parse_json(&body) {
            Ok(r) => r,
            Err(why) => return reject(&rid, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &why),
        },
        Some("application/graphql") => match std::str::from_utf8(&body) {
            Ok(q) if !q.contains('\0') => async_graphql::Request::new(q),
            _ => return reject(&rid, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "the query must be UTF-8 text without NUL characters"),
        },
        _ => {
            return reject(
                &rid,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_USER_INPUT",
                "Content-Type must be application/json, application/graphql or (to upload a file) multipart/form-data",
            );
        }
    };
    execute(s, addr, rid, headers, Body::Ready(Box::new(request))).await
}

/// The request's media type, lowercase, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    value.split(';').next().map(|v| v.trim().to_ascii_lowercase())
}

/// Whether the request is an upload, which gets `PALISADE_UPLOAD_TIMEOUT_MS` to arrive
/// and to run instead of the body and execution timeouts.
pub(super) fn is_multipart(headers: &HeaderMap) -> bool {
    media_type(headers).as_deref() == Some("multipart/form-data")
}

/// What is to be executed: a request already parsed, or an upload still to be read,
/// which waits until its caller is known and has been metered, so that nobody who is
/// not signed in can make the server store a file.
enum Body {
    Ready(Box<async_graphql::Request>),
    Upload(axum::body::Body),
}

/// The header a multipart request must carry. An HTML form can post multipart/form-data
/// to another site without asking first; it cannot add a header, and a script that
/// adds one is asked first (CORS preflight), so only allowed origins get through.
pub const UPLOAD_HEADER: &str = "x-palisade-upload";

/// A request in the GraphQL multipart request format (`operations`, `map`, then one
/// file): the operation as in a JSON body and bounded like one, the file streamed to an
/// unlinked temporary file of at most `PALISADE_MAX_UPLOAD_BYTES`.
async fn multipart(s: &HttpState, headers: &HeaderMap, body: axum::body::Body) -> Result<async_graphql::Request, (StatusCode, String)> {
    use tokio::io::AsyncWriteExt;
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| bad("the multipart boundary is missing".into()))?;
    let (max_body, max_file) = (s.app.config.max_body_bytes, s.app.config.max_upload_bytes);
    let limits = multer::SizeLimit::new()
        .whole_stream((max_file + 2 * max_body) as u64)
        .for_field("operations", max_body as u64)
        .for_field("map", max_body as u64)
        .per_field(max_file as u64);
    let mut parts = multer::Multipart::with_constraints(body.into_data_stream(), boundary, multer::Constraints::new().size_limit(limits));
    let too_large = |e: &multer::Error| matches!(e, multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. });
    let unreadable = |e: multer::Error| {
        if too_large(&e) {
            (StatusCode::PAYLOAD_TOO_LARGE, format!("the upload is too large (a file of at most {max_file} bytes)"))
        } else {
            bad("the multipart body cannot be read".into())
        }
    };
    let (mut operations, mut map, mut upload) = (None, None, None);
    while let Some(mut field) = parts.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("operations") => operations = Some(field.bytes().await.map_err(unreadable)?),
            Some("map") => map = Some(field.bytes().await.map_err(unreadable)?),
            Some(name) if upload.is_none() && field.file_name().is_some() => {
                let name = name.to_owned();
                let filename = field.file_name().unwrap_or_default().to_owned();
                let content_type = field.content_type().map(ToString::to_string);
                let failed = |_| (StatusCode::INTERNAL_SERVER_ERROR, "the upload could not be stored".to_owned());
                let mut file = tokio::fs::File::from_std(tempfile::tempfile().map_err(failed)?);
                while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
                    file.write_all(&chunk).await.map_err(failed)?;
                }
                let mut file = file.into_std().await;
                std::io::Seek::rewind(&mut file).map_err(failed)?;
                upload = Some((name, async_graphql::UploadValue { filename, content_type, content: file }));
            }
            _ => return Err(bad("a multipart request carries operations, map and one file".into())),
        }
    }
    let operations = operations.ok_or_else(|| bad("the multipart request has no operations part".into()))?;
    let mut request = parse_json(&operations).map_err(bad)?;
    let map: std::collections::HashMap<String, Vec<String>> = match map {
        Some(m) => serde_json::from_slice(&m).map_err(|_| bad("the map part is not a JSON object of paths".into()))?,
        None => Default::default(),
    };
    if let Some((name, value)) = upload {
        let paths = map.get(&name).filter(|p| p.len() == 1).ok_or_else(|| bad(format!("the map must give the file {name:?} one place")))?;
        request.set_upload(&paths[0], value);
    }
    Ok(request)
}

pub(super) async fn get(
    State(s): State<HttpState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        if s.app.config.graphiql {
            let page = async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql/ws")
                .title("Palisade GraphiQL")
                .finish();
            let mut res = Html(page).into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return res;
        }
        return reject(&rid, StatusCode::NOT_FOUND, "NOT_FOUND", "GraphiQL is disabled; POST GraphQL requests to /graphql");
    };
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(_) => return reject(&rid, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "could not parse the query string"),
    };
    if request.query.contains('\0') {
        return reject(&rid, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "NUL characters are not allowed in a request");
    }
    // GET is for reads only: a link or an <img> must never change anything.
    if let Ok(doc) = async_graphql::parser::parse_query(&request.query)
        && doc.operations.iter().any(|(_, op)| op.node.ty != OperationType::Query)
    {
        let mut res = reject(&rid, StatusCode::METHOD_NOT_ALLOWED, "BAD_USER_INPUT", "mutations and subscriptions must use POST");
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    execute(s, addr, rid, headers, Body::Ready(Box::new(request))).await
}

/// Who is calling: the principal of the presented session or API key (anonymous
/// without one), after its rate limit, with what the request says about itself; or the
/// answer that refuses it (restricted session, throttled, store down).
pub(super) struct Caller {
    pub principal: Principal,
    pub meta: RequestMeta,
    /// The cookie named a session that no longer exists: the answer clears it.
    pub clear_cookie: bool,
}

pub(super) async fn caller(s: &HttpState, addr: SocketAddr, rid: &RequestId, headers: &HeaderMap) -> Result<Caller, Response> {
    let app = &s.app;
    let client_ip = crate::auth::security_settings::client_ip(addr.ip(), headers, &app.config.trusted_proxies);
    let presented = cookie::token(&app.config, headers);
    let mut clear_cookie = false;
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(512).collect::<String>());
    // The credential's rate verdict, when it was metered while resolving it.
    let mut rate = None;
    let principal = match &presented {
        None => Principal::Anonymous,
        Some((token, source)) => match auth::authenticate_detailed(app, token, Some(client_ip)).await {
            Ok(auth::Authenticated { outcome: Ok(Some(p)), rate: r }) => {
                rate = r;
                p
            }
            Ok(auth::Authenticated { outcome: Ok(None), .. }) => {
                clear_cookie = *source == TokenSource::Cookie;
                Principal::Anonymous
            }
            Ok(auth::Authenticated { outcome: Err(restricted), .. }) => {
                let meta = RequestMeta {
                    request_id: rid.0.clone(),
                    ip: Some(client_ip),
                    user_agent: user_agent.clone(),
                    token: None,
                    device: None,
                };
                crate::graphql::gate::audit_restricted_session(app, &meta, &restricted).await;
                let e = AppError::LoginRestricted;
                return Err(reject(rid, StatusCode::FORBIDDEN, e.code(), &e.message()));
            }
            Err(e) => {
                if let AppError::Internal(detail) = &e {
                    tracing::error!(error = %detail, "authentication failed");
                }
                let status = match e {
                    AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                    AppError::LoginRestricted | AppError::WorkspaceSuspended => StatusCode::FORBIDDEN,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                return Err(reject(rid, status, e.code(), &e.message()));
            }
        },
    };
    // Every signed-in request spends from its session's (or API key's) bucket.
    // Requests without one spend from their address's bucket.
    let bucket = match &principal {
        Principal::User(u) if u.api_key().is_some() => u.api_key().map(|k| (crate::auth::ratelimit::Bucket::ApiKey, k.id.to_string())),
        Principal::Anonymous => Some((crate::auth::ratelimit::Bucket::AnonymousIp, client_ip.to_string())),
        p => p.session().map(|s| (crate::auth::ratelimit::Bucket::ApiSession, s.hash.clone())),
    };
    if let Some((bucket, key)) = bucket {
        let verdict = match rate {
            Some(v) => v,
            None => app.limiter.check(bucket, &key).await,
        };
        match verdict {
            Ok(()) => {}
            Err(AppError::RateLimited { retry_after_secs }) => {
                let meta = RequestMeta {
                    request_id: rid.0.clone(),
                    ip: Some(client_ip),
                    user_agent: user_agent.clone(),
                    token: None,
                    device: None,
                };
                crate::graphql::gate::audit_flood_refusal(app, &meta, &principal, bucket.name(), &key).await;
                return Err(too_many(retry_after_secs));
            }
            // The address bucket only guards against floods; with the store down, a
            // sign-in still meets its own buckets, which refuse it and put that on
            // the record.
            Err(AppError::Unavailable) if matches!(principal, Principal::Anonymous) => {}
            Err(e) => {
                let status = if e == AppError::Unavailable { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
                return Err(reject(rid, status, e.code(), &e.message()));
            }
        }
    }
    let meta = RequestMeta {
        request_id: rid.0.clone(),
        ip: Some(client_ip),
        user_agent,
        token: presented.map(|(t, _)| Secret::new(t)),
        device: cookie::device(&app.config, headers),
    };
    Ok(Caller { principal, meta, clear_cookie })
}

async fn execute(s: HttpState, addr: SocketAddr, rid: RequestId, headers: HeaderMap, body: Body) -> Response {
    let app = &s.app;
    let Caller { principal, meta, clear_cookie } = match caller(&s, addr, &rid, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let upload = matches!(body, Body::Upload(_));
    let request = match body {
        Body::Ready(request) => *request,
        Body::Upload(_) if matches!(principal, Principal::Anonymous) => {
            let e = AppError::Unauthenticated;
            return reject(&rid, StatusCode::UNAUTHORIZED, e.code(), "sign in to upload a file");
        }
        Body::Upload(body) => match multipart(&s, &headers, body).await {
            Ok(request) => request,
            Err((status, why)) => {
                let code = if status == StatusCode::INTERNAL_SERVER_ERROR { "INTERNAL" } else { "BAD_USER_INPUT" };
                return reject(&rid, status, code, &why);
            }
        },
    };
    let request_state = std::sync::Arc::new(RequestState::default());
    let request = request.data(principal.clone()).data(meta.clone()).data(request_state.clone());
    let limit = if upload { app.config.upload_timeout } else { app.config.execution_timeout };
    let mut response = match tokio::time::timeout(limit, s.schema.execute(request)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::error!(timeout_ms = limit.as_millis() as u64, "request stopped: it ran past the execution timeout");
            return reject(&rid, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", "the request took too long and was stopped");
        }
    };
    // What was read must be on the record before it leaves: if the read audit cannot
    // be written, the answer is withheld.
    if let Err(e) = crate::graphql::gate::audit_reads(app, &request_state, &principal, &meta).await {
        let status = if e == AppError::Unavailable { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
        return reject(&rid, status, e.code(), &e.message());
    }
    if let Some(notice) = impersonation_notice(&principal) {
        response.extensions.insert("impersonation".into(), notice);
    }
    for err in &mut response.errors {
        super::finish_error(err, &rid.0);
        if let Some(Value::String(code)) = err.extensions.as_ref().and_then(|x| x.get("code")) {
            app.metrics.graphql_errors.get_or_create(&crate::metrics::CodeLabels { code: code.clone() }).inc();
        }
    }
    let body = match serde_json::to_vec(&response) {
        Ok(b) => b,
        Err(_) => return reject(&rid, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error"),
    };
    // When the whole request was refused (no root field produced data) by a rate limit
    // or an unreachable dependency, the HTTP status says so too.
    let whole_refusal = match &response.data {
        Value::Null => true,
        Value::Object(fields) => fields.values().all(|v| matches!(v, Value::Null)),
        _ => false,
    };
    let first_code = response.errors.first().and_then(|e| e.extensions.as_ref()).and_then(|x| x.get("code")).cloned();
    let retry_after = response.errors.first().and_then(|e| e.extensions.as_ref()).and_then(|x| x.get("retryAfter")).cloned();
    let status = match (whole_refusal, first_code) {
        (true, Some(Value::String(c))) if c == "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        (true, Some(Value::String(c))) if c == "SERVICE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let mut res = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS
        && let Some(Value::Number(n)) = retry_after
        && let Ok(v) = HeaderValue::from_str(&n.to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    for (name, value) in response.http_headers.iter() {
        res.headers_mut().append(name, value.clone());
    }
    if clear_cookie && let Ok(v) = HeaderValue::from_str(&cookie::clear(&app.config)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// Every response to an impersonation session says so: who is acting, as whom, until
/// when.
fn impersonation_notice(p: &Principal) -> Option<Value> {
    let Principal::User(u) = p else { return None };
    let imp = u.impersonation()?;
    let until = u.session().map(|s| s.record.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let json = serde_json::json!({
        "id": imp.id.to_string(),
        "by": imp.admin_email,
        "byId": imp.admin_id.to_string(),
        "as": u.username,
        "asId": u.user_id.to_string(),
        "until": until,
    });
    Value::from_json(json).ok()
}

fn too_many(retry_after_secs: u64) -> Response {
    let body = serde_json::json!({ "errors": [{
        "message": "too many requests",
        "extensions": { "code": "RATE_LIMITED", "retryAfter": retry_after_secs }
    }] });
    let mut res = (StatusCode::TOO_MANY_REQUESTS, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}
