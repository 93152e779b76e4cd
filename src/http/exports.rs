//! GET /exports/{ticket}: the file of an export asked for as a download.
//!
//! Guarantees: the caller is authenticated and metered as for /graphql; the ticket is
//! taken (once) only by the session or API key it was issued to; the file streams as
//! it is read, and a failure part-way aborts the response instead of ending the file
//! early; the answer is never cached. Errors are JSON with the documented codes.

use super::graphql::{Caller, caller};
use super::{HttpState, RequestId, error_response};
use crate::error::AppError;
use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

pub(super) async fn download(
    State(s): State<HttpState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Extension(rid): Extension<RequestId>,
    Path(ticket): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Caller { principal, meta, .. } = match caller(&s, addr, &rid, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let download = match crate::graphql::gate::download(&s.app, &principal, &meta, &ticket).await {
        Ok(d) => d,
        Err(e) => {
            if let AppError::Internal(detail) = &e {
                tracing::error!(error = %detail, "a download could not start");
            }
            let status = match e {
                AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
                AppError::NotFound => StatusCode::NOT_FOUND,
                AppError::Forbidden | AppError::Denied(_) => StatusCode::FORBIDDEN,
                AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return error_response(status, e.code(), &e.message(), &rid);
        }
    };
    let pieces = futures_util::stream::unfold(download.pieces, |mut rx| async move { rx.recv().await.map(|piece| (piece, rx)) });
    let body = Body::from_stream(futures_util::StreamExt::map(pieces, |piece| {
        piece.map(axum::body::Bytes::from).map_err(|e| {
            tracing::error!(error = %e.detail(), "a download stopped part-way");
            std::io::Error::other("the download stopped part-way")
        })
    }));
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(download.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", download.filename)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}
