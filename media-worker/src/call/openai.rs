//! The OpenAI side of a call: opening the Realtime socket (first, and again in the
//! background when the session asks), the restaurant's audio converted and written as
//! `input_audio_buffer.append`, the session's events written, and batched flushes.
//! What the socket says goes back to the session as inputs; nothing here decides.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use shared::openai::events::ClientEvent;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::warn;

use super::{feed_within, flush_within, Flushed, SEND_DEADLINE, SOCKET_WRITE_BATCH_BYTES};
use crate::audio::Inbound;
use crate::frames::MessageArena;
use crate::metrics::Metrics;
use crate::Services;

const CONNECT_DEADLINE: Duration = Duration::from_secs(8);
/// The socket's read buffer (the library default is 128 KiB). A larger message takes
/// more reads, so this only sets how much is read at once, and the library zeroes that
/// much before every read: sized to what OpenAI sends (audio deltas of several KiB), it
/// stops idle memory per call from being mostly empty buffers.
pub const OPENAI_READ_BUFFER_BYTES: usize = 8 * 1024;

pub(super) type OpenAiSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// A socket being opened; `None` when it could not be.
type Connecting = Pin<Box<dyn Future<Output = Option<OpenAiSocket>> + Send>>;

/// Opens the Realtime socket within [`CONNECT_DEADLINE`]; `None` (logged, counted) if not.
pub(super) async fn connect(services: &Services) -> Option<OpenAiSocket> {
    let attempt = async {
        let mut request = services.config.realtime_url().into_client_request()?;
        let bearer = format!("Bearer {}", services.config.openai_api_key);
        request.headers_mut().insert(
            "Authorization",
            bearer.parse().map_err(|_| tokio_tungstenite::tungstenite::Error::Utf8(String::new()))?,
        );
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(crate::audio::openai_read_buffer_bytes(services.config.agent.audio_mode))
            .write_buffer_size(SOCKET_WRITE_BATCH_BYTES);
        // Nagle off: 20 ms frames must leave now, not wait for the previous one's ACK.
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
        Ok::<_, tokio_tungstenite::tungstenite::Error>(socket)
    };
    match tokio::time::timeout(CONNECT_DEADLINE, attempt).await {
        Ok(Ok(socket)) => Some(socket),
        Ok(Err(error)) => {
            Metrics::inc(&services.metrics.openai_errors);
            warn!(%error, "could not open the OpenAI Realtime socket");
            None
        }
        Err(_) => {
            Metrics::inc(&services.metrics.openai_errors);
            warn!("opening the OpenAI Realtime socket timed out");
            None
        }
    }
}

/// What happened on the OpenAI side, for the call loop.
pub(super) enum Event {
    /// A text frame.
    Text(Utf8Bytes),
    /// The socket being opened is open (`true`) or could not be (`false`).
    Connected(bool),
    /// The socket closed or failed.
    Lost,
    /// Nothing for the session (a ping, a binary frame).
    Nothing,
}

pub(super) struct OpenAiPeer {
    socket: Option<OpenAiSocket>,
    /// A reconnect in progress, polled by the call loop beside both sockets.
    connecting: Option<Connecting>,
    /// Restaurant audio, Twilio's format to the model's.
    inbound: Inbound,
    /// Memory for the per-frame messages (no allocation per frame).
    arena: MessageArena,
    /// Messages written to the socket's buffer since it was last flushed.
    unflushed: bool,
    /// Among them, restaurant audio.
    unflushed_audio: bool,
}

impl OpenAiPeer {
    pub(super) fn new(socket: Option<OpenAiSocket>, inbound: Inbound) -> OpenAiPeer {
        OpenAiPeer {
            socket,
            connecting: None,
            inbound,
            arena: MessageArena::default(),
            unflushed: false,
            unflushed_audio: false,
        }
    }

    /// Starts opening a new socket (dropping the old one); [`OpenAiPeer::next`] reports
    /// when it is done, while the loop goes on reading Twilio.
    pub(super) fn reconnect(&mut self, services: Arc<Services>) {
        self.socket = None;
        self.connecting = Some(Box::pin(async move { connect(&services).await }));
    }

    /// The next thing that happens on this side; pending while there is no socket.
    pub(super) async fn next(&mut self, metrics: &Metrics) -> Event {
        if let Some(connecting) = self.connecting.as_mut() {
            let socket = connecting.await;
            self.connecting = None;
            let open = socket.is_some();
            self.socket = socket;
            return Event::Connected(open);
        }
        let Some(socket) = self.socket.as_mut() else { return std::future::pending().await };
        match socket.next().await {
            Some(Ok(Message::Text(text))) => Event::Text(text),
            Some(Ok(Message::Close(frame))) => {
                warn!(?frame, "OpenAI closed the socket");
                self.socket = None;
                Event::Lost
            }
            Some(Ok(_)) => Event::Nothing,
            None | Some(Err(_)) => {
                Metrics::inc(&metrics.openai_errors);
                warn!("the OpenAI socket dropped");
                self.socket = None;
                Event::Lost
            }
        }
    }

    /// Converts one Twilio audio payload and writes it; false if the socket stalled
    /// (it is then dropped). Undecodable audio is skipped (counted).
    pub(super) async fn forward_audio(&mut self, payload: &str, metrics: &Metrics) -> bool {
        match self.inbound.push(payload) {
            Ok(Some(audio)) => {
                let message = self.arena.append(audio);
                let Ok(text) = Utf8Bytes::try_from(message) else { return true };
                self.unflushed_audio |= self.socket.is_some();
                self.send(text).await
            }
            Ok(None) => true,
            Err(error) => {
                Metrics::inc(&metrics.frames_malformed);
                warn!(%error, "skipping undecodable audio");
                true
            }
        }
    }

    /// Writes one of the session's events; false if the socket stalled.
    pub(super) async fn send_event(&mut self, event: &ClientEvent<'_>) -> bool {
        let mut json = Vec::with_capacity(256);
        event.write_json(&mut json);
        let text = String::from_utf8(json).unwrap_or_default();
        self.send(text.into()).await
    }

    async fn send(&mut self, text: Utf8Bytes) -> bool {
        let Some(socket) = self.socket.as_mut() else { return true };
        if feed_within(socket, Message::Text(text)).await {
            self.unflushed = true;
            true
        } else {
            // Dropped, not closed: a close would wait on the same full socket.
            self.socket = None;
            false
        }
    }

    /// Writes out what was queued; not open if the socket stalled (it is then dropped).
    pub(super) async fn flush(&mut self) -> Flushed {
        let audio = std::mem::take(&mut self.unflushed_audio);
        let nothing = Flushed { open: true, audio: false };
        if !std::mem::take(&mut self.unflushed) {
            return nothing;
        }
        let Some(socket) = self.socket.as_mut() else { return nothing };
        if flush_within(socket).await {
            Flushed { open: true, audio }
        } else {
            self.socket = None;
            Flushed { open: false, audio: false }
        }
    }

    /// Closes the socket (and abandons any reconnect).
    pub(super) async fn close(&mut self) {
        self.connecting = None;
        if let Some(mut socket) = self.socket.take() {
            let _ = tokio::time::timeout(SEND_DEADLINE, socket.close(None)).await;
        }
    }
}
