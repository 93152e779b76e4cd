//! A request body that must arrive completely before a deadline.
//!
//! Guarantees: a client that sends part of a body and then stalls or trickles holds its
//! connection no longer than `PALISADE_BODY_TIMEOUT_MS` after the request head; whoever
//! reads the body then gets an error, and the request is answered 408 with
//! `Connection: close` (see `http::observe`), so the socket is closed too. The deadline
//! is for the whole body, not per chunk: sending a byte now and then does not extend it.
//! Assumes the server reads the body only while handling the request (a body nobody
//! reads is not waited for: hyper closes the connection instead of draining it).

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// The error a reader of a late body sees.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// Set once the deadline cut the body off, so the answer can say so whatever the
/// handler made of the read error.
#[derive(Clone, Default)]
pub struct Tripped(Arc<AtomicBool>);

impl Tripped {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

struct Deadline {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    tripped: Tripped,
}

/// `body`, cut off `within` from now; and the flag that tells whether it was.
pub fn bounded(body: Body, within: Duration) -> (Body, Tripped) {
    let tripped = Tripped::default();
    if http_body::Body::is_end_stream(&body) {
        return (body, tripped);
    }
    let bounded = Deadline { inner: body, sleep: Box::pin(tokio::time::sleep(within)), tripped: tripped.clone() };
    (Body::new(bounded), tripped)
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        // The deadline first: a body that keeps trickling in must not outrun it.
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.tripped.0.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
