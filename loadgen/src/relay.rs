//! The floor: a bare WebSocket relay, the least any bridge between Twilio and OpenAI
//! must do. Each Twilio-side connection gets one upstream connection to the Realtime
//! endpoint, and every text (or binary) message is forwarded as it is, both ways: no
//! parsing, no audio work, no session. The load generator runs it as its own process
//! (`concierge-loadgen --serve-relay <upstream>`), on the same runtime layout as the
//! media worker, and drives it with exactly the same callers, so the report can give
//! the worker's cost as a multiple of this one's.

use std::future::ready;

use futures_util::{StreamExt, TryStreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// The relay's sockets: the library zeroes its whole read buffer before every read, so
/// it is sized to the messages (the largest carries 100 ms of mu-law, about 1.2 KiB), as
/// the worker sizes its own.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// Serves on `127.0.0.1:port` until the process is killed.
pub async fn serve(port: u16, upstream: String) -> anyhow::Result<()> {
    serve_on(TcpListener::bind(("127.0.0.1", port)).await?, upstream).await
}

async fn serve_on(listener: TcpListener, upstream: String) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Err(error) = relay(stream, &upstream).await {
                eprintln!("relay: {error}");
            }
        });
    }
}

/// Forwards one call's messages until either side ends; the other side is then closed.
async fn relay(stream: TcpStream, upstream: &str) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    // The generator's readiness probe connects and leaves without a handshake: not an error.
    let Ok(twilio) = tokio_tungstenite::accept_async_with_config(stream, Some(socket_config())).await else {
        return Ok(());
    };
    // Nagle off, as the worker's upstream socket has it.
    let (openai, _) = tokio_tungstenite::connect_async_with_config(upstream, Some(socket_config()), true).await?;
    let (twilio_tx, twilio_rx) = twilio.split();
    let (openai_tx, openai_rx) = openai.split();
    // Pings are answered by the library; only data is forwarded. `forward` flushes when
    // its source has nothing more ready, so messages that arrive together leave together.
    let data = |message: &Message| ready(message.is_text() || message.is_binary());
    tokio::select! {
        _ = twilio_rx.try_filter(data).forward(openai_tx) => {}
        _ = openai_rx.try_filter(data).forward(twilio_tx) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures_util::SinkExt;

    use super::*;

    /// An upstream that answers each text message with it reversed, and closes on "bye".
    async fn reversing_upstream() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/realtime", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
            while let Some(Ok(Message::Text(text))) = socket.next().await {
                if text.as_str() == "bye" {
                    let _ = socket.close(None).await;
                    return;
                }
                let reversed: String = text.chars().rev().collect();
                socket.send(Message::Text(reversed.into())).await.unwrap();
            }
        });
        url
    }

    #[tokio::test]
    async fn messages_pass_unchanged_both_ways_and_the_upstream_closing_ends_the_call() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_url = format!("ws://{}/media", listener.local_addr().unwrap());
        tokio::spawn(serve_on(listener, reversing_upstream().await));
        let (mut caller, _) = tokio_tungstenite::connect_async(relay_url).await.unwrap();
        let frame = r#"{"event":"media","media":{"payload":"/w=="}}"#;
        caller.send(Message::Text(frame.into())).await.unwrap();
        // A bound, so a relay that drops messages fails the test instead of hanging it.
        const WITHIN: std::time::Duration = std::time::Duration::from_secs(10);
        let reply = tokio::time::timeout(WITHIN, caller.next()).await.expect("the reply came back").unwrap().unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), frame.chars().rev().collect::<String>());
        caller.send(Message::Text("bye".into())).await.unwrap();
        // The upstream's close reaches the caller as a close (or the end of the stream).
        match tokio::time::timeout(WITHIN, caller.next()).await.expect("the call ended") {
            Some(Ok(Message::Close(_))) | None => {}
            other => panic!("expected the call to end, got {other:?}"),
        }
    }
}
