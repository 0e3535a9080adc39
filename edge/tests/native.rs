//! The native edge's own doors: its HTTP server (the contract's JSON 413 however large
//! the body) and its webhook sender (no redirects, nothing inside).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener as StdListener;
use std::sync::Arc;

use common::*;
use edge::native::{HttpWebhooks, PublicOnly};
use edge::ports::WebhookSender;
use reqwest::dns::Resolve;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn an_oversized_body_gets_the_contracts_json_413_natively() {
    runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let native = Arc::new(edge::native::edge(config()));
        let server = tokio::spawn(edge::native::serve(listener, native, std::future::pending()));
        let http = reqwest::Client::new();
        // Above the edge's 64 KiB, and above axum's own 2 MiB default.
        for size in [100 * 1024, 3 * 1024 * 1024] {
            let response = http
                .post(format!("http://{address}/v1/calls"))
                .header("Authorization", KEY_A)
                .body(vec![b' '; size])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 413, "{size} bytes");
            let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned());
            assert_eq!(content_type.as_deref(), Some("application/json"), "{size} bytes");
            let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "payload_too_large", "{size} bytes");
        }
        server.abort();
    });
}

/// One connection's request, answered with `response`; returns what was asked.
fn answer_once(listener: StdListener, response: String) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return String::new() };
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        // Headers, then the body its Content-Length announces.
        while let Ok(n @ 1..) = stream.read(&mut buffer) {
            request.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
        }
        let _ = stream.write_all(response.as_bytes());
        String::from_utf8_lossy(&request).into_owned()
    })
}

#[test]
fn the_webhook_sender_follows_no_redirect() {
    let first = StdListener::bind("127.0.0.1:0").unwrap();
    let second = StdListener::bind("127.0.0.1:0").unwrap();
    second.set_nonblocking(true).unwrap();
    let target = format!("http://127.0.0.1:{}/stolen", second.local_addr().unwrap().port());
    let url = format!("http://127.0.0.1:{}/hooks", first.local_addr().unwrap().port());
    let asked = answer_once(
        first,
        format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    );
    let mut local = config();
    local.allow_insecure_callbacks = true;
    let sender = HttpWebhooks::new(&local);
    let status = runtime().block_on(sender.post(&url, "{\"call_id\":\"c1\"}", "t=1,v1=ab"));
    assert_eq!(status, Ok(302), "the redirect is the answer, a refusal");
    let request = asked.join().unwrap();
    assert!(request.to_ascii_lowercase().contains("concierge-signature: t=1,v1=ab"), "{request}");
    assert!(
        matches!(second.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "nobody went to the redirect's target"
    );
}

#[test]
fn the_webhook_sender_reaches_nothing_inside() {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let sender = HttpWebhooks::new(&config());
    let rt = runtime();
    for url in [
        format!("http://127.0.0.1:{port}/hooks"),
        format!("https://127.0.0.1:{port}/hooks"),
        format!("https://2130706433:{port}/hooks"),
        format!("https://localhost:{port}/hooks"),
        format!("https://[::1]:{port}/hooks"),
    ] {
        assert!(rt.block_on(sender.post(&url, "{}", "t=1,v1=ab")).is_err(), "{url}");
    }
    assert!(matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock), "no connection was made");
    // A name that resolves inside is refused by the resolver itself, wherever the
    // name came from; loopback passes only in local development.
    let name: reqwest::dns::Name = "localhost".parse().unwrap();
    let refused = rt.block_on(PublicOnly { allow_loopback: false }.resolve(name));
    assert!(refused.is_err_and(|e| e.to_string().contains("not a public address")));
    let name: reqwest::dns::Name = "localhost".parse().unwrap();
    assert!(rt.block_on(PublicOnly { allow_loopback: true }.resolve(name)).is_ok());
}
