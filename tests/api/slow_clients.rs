//! Clients that send slowly, or nothing, over raw TCP: each phase of a connection is
//! bounded, and a flood of such sockets does not keep others from being served.
//!
//! The bounds are set small here (a few hundred ms) and every wait is generous (many
//! seconds), so a slow machine makes these tests slower, not flaky.

use crate::helpers::TestApp;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough for any machine; a server that never closes fails the test after it.
const PATIENCE: Duration = Duration::from_secs(20);

/// Reads until the server closes the socket: what it sent, or None if it is still open
/// after `wait`.
async fn read_until_closed(sock: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.unwrap()
}

#[tokio::test]
async fn a_socket_that_sends_nothing_or_half_a_head_is_closed() {
    let app = TestApp::spawn_with(&[("PALISADE_HEADER_TIMEOUT_MS", "300")]).await;
    let mut silent = connect(&app).await;
    let mut half = connect(&app).await;
    half.write_all(b"POST /graphql HTTP/1.1\r\nHost: palisade\r\nContent-Type: appl").await.unwrap();
    let mut half_upgrade = connect(&app).await;
    half_upgrade.write_all(b"GET /graphql/ws HTTP/1.1\r\nHost: palisade\r\nConnection: Upgrade\r\nUpgrade: webs").await.unwrap();
    // PATIENCE is shorter than every other default bound: only the header timeout
    // can have closed them.
    assert!(read_until_closed(&mut silent, PATIENCE).await.is_some(), "a silent socket must be closed");
    assert!(read_until_closed(&mut half, PATIENCE).await.is_some(), "a half-sent head must be closed");
    assert!(read_until_closed(&mut half_upgrade, PATIENCE).await.is_some(), "a half-sent WebSocket upgrade must be closed");
}

#[tokio::test]
async fn a_head_sent_byte_by_byte_is_cut_off_at_the_header_timeout() {
    let app = TestApp::spawn_with(&[("PALISADE_HEADER_TIMEOUT_MS", "500")]).await;
    let mut sock = connect(&app).await;
    let started = Instant::now();
    // One byte every 50 ms, forever: only a bound on the whole head stops it.
    let head = b"GET /healthz HTTP/1.1\r\nX-Padding: ".iter().copied().chain(std::iter::repeat(b'a'));
    for byte in head {
        if sock.write_all(&[byte]).await.is_err() || started.elapsed() > PATIENCE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() < PATIENCE, "the server kept reading a head that never ends");
}

#[tokio::test]
async fn a_half_sent_body_is_answered_408_and_closed() {
    let app = TestApp::spawn_with(&[("PALISADE_BODY_TIMEOUT_MS", "300")]).await;
    let mut sock = connect(&app).await;
    let head = "POST /graphql HTTP/1.1\r\nHost: palisade\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(br#"{"query":"{ __typ"#).await.unwrap();
    let answer = read_until_closed(&mut sock, PATIENCE).await.expect("a half-sent body must be closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    assert!(text.contains("BAD_USER_INPUT") && text.contains("x-request-id"), "{text}");
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_at_the_body_timeout() {
    let app = TestApp::spawn_with(&[("PALISADE_BODY_TIMEOUT_MS", "500")]).await;
    let mut sock = connect(&app).await;
    let head = "POST /graphql HTTP/1.1\r\nHost: palisade\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    sock.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // A byte every 50 ms keeps any per-read timeout happy; the bound is on the whole body.
    while sock.write_all(b" ").await.is_ok() && started.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() < PATIENCE, "the server kept reading a body that never ends");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(&[("PALISADE_KEEP_ALIVE_TIMEOUT_MS", "300")]).await;
    let mut sock = connect(&app).await;
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: palisade\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut sock, PATIENCE).await.expect("an idle connection must be closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("ok"), "the request itself is answered first: {text}");
}

#[tokio::test]
async fn a_kept_alive_connection_serves_the_next_request() {
    // The header timeout counts from the first byte of the next request, not from the
    // end of the previous answer: a client idle for longer than it is still served.
    let app = TestApp::spawn_with(&[("PALISADE_HEADER_TIMEOUT_MS", "300"), ("PALISADE_KEEP_ALIVE_TIMEOUT_MS", "20000")]).await;
    let mut sock = connect(&app).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: palisade\r\n\r\n";
    for _ in 0..2 {
        sock.write_all(request).await.unwrap();
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, sock.read(&mut buf)).await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

#[tokio::test]
async fn a_flood_of_slow_sockets_does_not_stop_others_from_being_served() {
    let app = TestApp::spawn_with(&[("PALISADE_MAX_CONNECTIONS", "20"), ("PALISADE_HEADER_TIMEOUT_MS", "500")]).await;
    let mut flood = Vec::new();
    for i in 0..120 {
        let mut s = connect(&app).await;
        if i % 2 == 0 {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: pal").await;
        }
        flood.push(s);
    }
    // Five times as many slow sockets as the server serves at once: others are still
    // answered, after at most a few header timeouts.
    let health = tokio::time::timeout(PATIENCE, app.client.get(format!("{}/healthz", app.url)).send()).await;
    assert_eq!(health.expect("/healthz must answer during the flood").unwrap().status(), 200);
    let signed_in = tokio::time::timeout(PATIENCE, app.try_login("demo", "owner", crate::helpers::DEMO_PASSWORD)).await;
    assert!(signed_in.expect("GraphQL must answer during the flood").ok()["login"]["token"].is_string());
    for mut s in flood {
        assert!(read_until_closed(&mut s, PATIENCE).await.is_some(), "every slow socket is closed by the server");
    }
}

#[tokio::test]
async fn a_client_that_does_not_read_its_answer_is_disconnected() {
    let app = TestApp::spawn_with(&[
        ("PALISADE_KEEP_ALIVE_TIMEOUT_MS", "500"),
        ("PALISADE_MAX_ALIASES", "100"),
        ("PALISADE_MAX_COMPLEXITY", "100000"),
    ])
    .await;
    // An answer of several MB: more than the kernel buffers between two loopback sockets
    // (about 3 MB here), so the server's writes stall once the client stops reading.
    let one = "__schema { types { name description fields { name description args { name description } } } }";
    let query = (0..60).map(|i| format!("a{i}: {one}")).collect::<Vec<_>>().join(" ");
    let body = serde_json::json!({ "query": format!("{{ {query} }}") }).to_string();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut sock = socket.connect(app.addr).await.unwrap();
    let head =
        format!("POST /graphql HTTP/1.1\r\nHost: palisade\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body.as_bytes()).await.unwrap();
    // Not reading for a while, many times the keep-alive timeout. Long enough that the
    // stall outlasts the timeout even when building the answer is slow (a loaded
    // machine once took most of 3 s, and the whole answer got through).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let got = read_until_closed(&mut sock, PATIENCE).await.expect("the server must give up on a client that does not read");
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").expect("the head was sent") + 4;
    let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let length: usize = head.split("content-length: ").nth(1).and_then(|v| v.split("\r\n").next()).unwrap().parse().unwrap();
    assert!(got.len() - split < length, "the answer was cut off, not delivered: {} of {length} bytes", got.len() - split);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_instead_of_being_dropped() {
    let app = TestApp::spawn_with(&[("PALISADE_MAX_CONNECTIONS", "2")]).await;
    // Two connections hold both places (the header timeout is 10 s by default).
    let first = connect(&app).await;
    let second = connect(&app).await;
    let waiting = tokio::spawn({
        let url = format!("{}/healthz", app.url);
        let client = app.client.clone();
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a third connection must not be served while two hold the places");
    drop(first);
    let status = tokio::time::timeout(PATIENCE, waiting).await.expect("served once a place is free").unwrap().unwrap();
    assert_eq!(status, 200);
    drop(second);
}

#[tokio::test]
async fn websockets_keep_their_place_for_as_long_as_they_are_open() {
    // hyper hands an upgraded socket over to the WebSocket handler; the place must go
    // with it, or WebSockets would be a way around the cap.
    let app = TestApp::spawn_with(&[("PALISADE_MAX_CONNECTIONS", "2")]).await;
    let first = crate::ws_client::Ws::open(&app).await;
    let second = crate::ws_client::Ws::open(&app).await;
    let waiting = tokio::spawn({
        let url = format!("{}/healthz", app.url);
        let client = app.client.clone();
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "two open WebSockets hold both places");
    drop(first);
    let status = tokio::time::timeout(PATIENCE, waiting).await.expect("served once a WebSocket closed").unwrap().unwrap();
    assert_eq!(status, 200);
    drop(second);
}
