//! The native server's door: clients that send half a request are cut off at the
//! deadline instead of holding a connection. Deadlines are injected small; the tests
//! wait on the socket closing, not on a clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use edge::native::{self, ServeLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let edge = Arc::new(native::edge(common::config()));
    let limits = ServeLimits { header_read: Duration::from_millis(300), body_read: Duration::from_millis(300) };
    tokio::spawn(native::serve_with(listener, edge, limits, std::future::pending()));
    address
}

/// Everything the server sends until it closes the socket (bounded by a deadline far
/// above the server's own).
async fn until_closed(socket: &mut TcpStream, what: &str) -> String {
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 1024];
        while let Ok(n) = socket.read(&mut buffer).await {
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&buffer[..n]);
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: the server closed the connection");
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_headers_never_finish_is_cut_off() {
    let address = server().await;
    let mut socket = TcpStream::connect(&address).await.unwrap();
    socket.write_all(b"POST /v1/calls HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer key-al").await.unwrap();
    until_closed(&mut socket, "half-sent headers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_body_never_finishes_is_cut_off_with_a_408() {
    let address = server().await;
    let mut socket = TcpStream::connect(&address).await.unwrap();
    socket
        .write_all(b"POST /v1/calls HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"restaurant\":")
        .await
        .unwrap();
    let answer = until_closed(&mut socket, "a half-sent body").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_request_is_still_answered() {
    let address = server().await;
    let mut socket = TcpStream::connect(&address).await.unwrap();
    socket.write_all(b"GET /v1/calls/call_x HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut socket, "a whole request").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}
