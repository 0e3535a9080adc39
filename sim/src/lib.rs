//! Local stand-ins for the outside world, speaking its exact wire formats, so the
//! system runs and is tested without accounts or internet.
//!
//! | module | stands in for |
//! |---|---|
//! | [`realtime_router`] | OpenAI Realtime for many sessions at once, each its own scripted fake |
//! | [`twilio_rest`] | the Twilio Calls REST API (create, update, Basic auth, errors in Twilio's shape) |
//! | [`keypad`] | a phone menu's ear: DTMF key tones detected (Goertzel) in the caller's audio |
//! | [`webhook_sink`] | a user's `callback_url` endpoint, recording what it receives |
//! | [`wrangler`] | runs the real edge Worker (WASM) under `wrangler dev` for tests |
//!
//! Every server binds 127.0.0.1 port 0 and reports its address; tests wait on recorded
//! events (with a deadline), never on sleeps.
#![deny(unsafe_code)]

pub mod ai_restaurant;
pub mod carrier;
pub mod fake_edge;
pub mod keypad;
pub mod openai_realtime;
pub mod realtime_router;
pub mod redis_server;
pub mod twilio_media;
pub mod twilio_rest;
pub mod webhook_sink;
pub mod wrangler;

use std::time::Duration;

use tokio::sync::watch;

/// How long a test waits for something that should happen promptly.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(20);

/// Serves `app` on a fresh loopback port; returns the `host:port` and the server task.
pub async fn serve_on_loopback(
    app: axum::Router,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_on_loopback_with(app, None).await
}

/// As [`serve_on_loopback`], with the accepted sockets' receive buffer fixed at
/// `receive_buffer` bytes: a peer that stops reading then fills up within kilobytes
/// instead of the megabytes the kernel's autotuning would allow.
pub async fn serve_on_loopback_with(
    app: axum::Router,
    receive_buffer: Option<u32>,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind("127.0.0.1:0".parse()?)?;
    let listener = socket.listen(1024)?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, server))
}

/// Waits until `check` passes on the watched value, or the deadline.
pub async fn wait_until<T, R>(
    receiver: &mut watch::Receiver<T>,
    what: &str,
    mut check: impl FnMut(&T) -> Option<R>,
) -> anyhow::Result<R> {
    let found = tokio::time::timeout(EVENT_DEADLINE, async {
        loop {
            if let Some(found) = check(&receiver.borrow_and_update()) {
                return Ok(found);
            }
            receiver.changed().await?;
        }
    })
    .await;
    match found {
        Ok(result) => result.map_err(|e: watch::error::RecvError| anyhow::anyhow!("{what}: {e}")),
        Err(_) => anyhow::bail!("timed out after {EVENT_DEADLINE:?} waiting for {what}"),
    }
}
