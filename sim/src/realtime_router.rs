//! One OpenAI Realtime endpoint in front of many scripted fakes: each session gets its
//! own [`FakeOpenAi`], its script chosen from the agent's instructions (the session's
//! first `session.update`), and this relays the session both ways. A [`FakeOpenAi`] plays
//! one script for all its connections; the local stack left running takes many bookings,
//! each with its own restaurant, so each needs its own.

use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::openai_realtime::{server_event_text, FakeOpenAi, Script};

/// Picks a session's script from its instructions.
pub type ChooseScript = Arc<dyn Fn(&str) -> Script + Send + Sync>;

struct Shared {
    choose: ChooseScript,
    /// Protocol violations the fakes saw, over every session that has ended.
    violations: Mutex<Vec<String>>,
}

pub struct RealtimeRouter {
    /// `ws://127.0.0.1:port/v1/realtime`
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RealtimeRouter {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RealtimeRouter {
    pub async fn start(choose: ChooseScript) -> anyhow::Result<RealtimeRouter> {
        let shared = Arc::new(Shared { choose, violations: Mutex::new(Vec::new()) });
        let app = axum::Router::new().route("/v1/realtime", get(upgrade)).with_state(shared.clone());
        let (address, server) = crate::serve_on_loopback(app).await?;
        Ok(RealtimeRouter { url: format!("ws://{address}/v1/realtime"), shared, server })
    }

    /// What the fakes refused of the client's protocol, in sessions that have ended.
    pub fn violations(&self) -> Vec<String> {
        self.shared.violations.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

async fn upgrade(State(shared): State<Arc<Shared>>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    // The fake behind checks the bearer token; it is passed on as received.
    let Some(authorization) = headers.get("authorization").cloned() else {
        return (StatusCode::UNAUTHORIZED, "missing bearer token").into_response();
    };
    upgrade.on_upgrade(move |socket| session(socket, shared, authorization))
}

/// The agent's instructions, from a `session.update` event's text.
fn instructions_of(event: &str) -> Option<String> {
    let event: Value = serde_json::from_str(event).ok()?;
    if event["type"] != "session.update" {
        return None;
    }
    event["session"]["instructions"].as_str().map(str::to_owned)
}

async fn session(mut client: WebSocket, shared: Arc<Shared>, authorization: HeaderValue) {
    // OpenAI greets first; the client then configures the session.
    let created = json!({"type": "session.created", "event_id": "event_router_0", "session": {"type": "realtime",
        "object": "realtime.session", "id": "sess_router", "model": shared::openai::DEFAULT_MODEL}});
    if client.send(Message::Text(server_event_text(&created).into())).await.is_err() {
        return;
    }
    let first = loop {
        match client.recv().await {
            Some(Ok(Message::Text(text))) => break text.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return,
        }
    };
    let script = (shared.choose)(&instructions_of(&first).unwrap_or_default());
    let Ok(fake) = FakeOpenAi::start(script).await else { return };
    let Ok(mut request) = fake.url.as_str().into_client_request() else { return };
    request.headers_mut().insert("authorization", authorization);
    let Ok((upstream, _)) = tokio_tungstenite::connect_async(request).await else { return };
    let (mut up_tx, mut up_rx) = upstream.split();
    // The fake's own greeting was already given.
    if !matches!(up_rx.next().await, Some(Ok(tungstenite::Message::Text(_)))) {
        return;
    }
    if up_tx.send(tungstenite::Message::Text(first.into())).await.is_err() {
        return;
    }
    let (mut client_tx, mut client_rx) = client.split();
    let to_fake = async {
        while let Some(Ok(message)) = client_rx.next().await {
            let relayed = match message {
                Message::Text(text) => tungstenite::Message::Text(text.as_str().into()),
                Message::Binary(bytes) => tungstenite::Message::Binary(bytes),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            if up_tx.send(relayed).await.is_err() {
                break;
            }
        }
        let _ = up_tx.close().await;
    };
    let to_client = async {
        while let Some(Ok(message)) = up_rx.next().await {
            let relayed = match message {
                tungstenite::Message::Text(text) => Message::Text(text.as_str().into()),
                tungstenite::Message::Binary(bytes) => Message::Binary(bytes),
                tungstenite::Message::Close(_) => break,
                _ => continue,
            };
            if client_tx.send(relayed).await.is_err() {
                break;
            }
        }
        let _ = client_tx.close().await;
    };
    // Either side ending ends the session, as a closed OpenAI socket would.
    tokio::select! {
        _ = to_fake => {}
        _ = to_client => {}
    }
    let seen = fake.observed().violations;
    if let Ok(mut violations) = shared.violations.lock() {
        violations.extend(seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_come_from_session_update_only() {
        let update = r#"{"type":"session.update","session":{"type":"realtime","instructions":"Call \"Chez\"."}}"#;
        assert_eq!(instructions_of(update).as_deref(), Some("Call \"Chez\"."));
        assert_eq!(instructions_of(r#"{"type":"response.create","session":{"instructions":"x"}}"#), None);
        assert_eq!(instructions_of("not json"), None);
    }
}
