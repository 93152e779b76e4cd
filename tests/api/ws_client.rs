//! A small graphql-transport-ws client over a real WebSocket, for the Rust tests.
use crate::helpers::TestApp;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SUBSCRIBE_AUDIT: &str = "subscription($f: AuditLogFilter, $a: String) { auditEvents(filter: $f, after: $a) { cursor entry { seq action module actor { kind id } impersonatorId changes } } }";

#[derive(Debug)]
pub enum Event {
    Msg(Value),
    Closed(u16),
    Timeout,
}

pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Opens a socket; Err(status) when the upgrade is refused, Err(0) when the client
    /// itself gives up on the handshake (e.g. the server chose no subprotocol).
    pub async fn open_with(app: &TestApp, protocol: Option<&str>, origin: Option<&str>) -> Result<Ws, u16> {
        let mut req = format!("ws://{}/graphql/ws", app.addr).into_client_request().unwrap();
        if let Some(p) = protocol {
            req.headers_mut().insert("sec-websocket-protocol", p.parse().unwrap());
        }
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(Ws { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
            Err(tokio_tungstenite::tungstenite::Error::Protocol(_)) => Err(0),
            Err(e) => panic!("websocket connect failed: {e}"),
        }
    }

    pub async fn open(app: &TestApp) -> Ws {
        Self::open_with(app, Some("graphql-transport-ws"), None).await.unwrap()
    }

    /// Opens, initialises with `token` (a session token or API key) and expects the ack.
    pub async fn connect(app: &TestApp, token: &str) -> Ws {
        let mut ws = Self::open(app).await;
        ws.send(json!({ "type": "connection_init", "payload": { "token": token } })).await;
        match ws.recv(Duration::from_secs(5)).await {
            Event::Msg(m) if m["type"] == "connection_ack" => ws,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.stream.send(Message::Text(v.to_string().into())).await.unwrap();
    }

    pub async fn send_text(&mut self, t: &str) {
        self.stream.send(Message::Text(t.to_owned().into())).await.unwrap();
    }

    pub async fn recv(&mut self, wait: Duration) -> Event {
        loop {
            match tokio::time::timeout(wait, self.stream.next()).await {
                Err(_) => return Event::Timeout,
                Ok(None) => return Event::Closed(1006),
                Ok(Some(Err(_))) => return Event::Closed(1006),
                Ok(Some(Ok(Message::Text(t)))) => return Event::Msg(serde_json::from_str(t.as_str()).unwrap()),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return match frame {
                        Some(f) => Event::Closed(u16::from(f.code)),
                        None => Event::Closed(1005),
                    };
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Waits for the socket to close; its close code.
    pub async fn closed(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Event::Closed(c) => return Some(c),
                Event::Timeout => return None,
                Event::Msg(_) => continue,
            }
        }
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
    }

    pub async fn subscribe_audit(&mut self, id: &str, filter: Value, after: Option<&str>) {
        self.subscribe(id, SUBSCRIBE_AUDIT, json!({ "f": filter, "a": after })).await;
    }

    /// The next `next` payload's event for subscription `id` (panics on anything else).
    pub async fn next_event(&mut self, id: &str) -> Value {
        match self.recv(Duration::from_secs(10)).await {
            Event::Msg(m) if m["type"] == "next" && m["id"] == id => {
                assert!(m["payload"].get("errors").is_none(), "errors in the stream: {m}");
                m["payload"]["data"]["auditEvents"].clone()
            }
            other => panic!("expected an event for {id}, got {other:?}"),
        }
    }

    /// Every event that arrives for `id` until nothing more comes for `quiet`.
    pub async fn drain(&mut self, id: &str, quiet: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            match self.recv(quiet).await {
                Event::Msg(m) if m["type"] == "next" && m["id"] == id => out.push(m["payload"]["data"]["auditEvents"].clone()),
                Event::Timeout => return out,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Waits until `n` events for `id` arrived.
    pub async fn take(&mut self, id: &str, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            out.push(self.next_event(id).await);
        }
        out
    }
}
