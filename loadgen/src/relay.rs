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
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
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
