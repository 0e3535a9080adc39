//! The door: connections that have not yet shown a valid stream token.
//!
//! Every accepted connection starts unauthenticated. It then has [`GateLimits::deadline`]
//! to send its upgrade request's headers and a `start` whose token checks out; past
//! that its reads fail and the connection is closed, whatever it was doing (a
//! half-sent request, an upgraded socket that never says `start`, junk). At most
//! [`GateLimits::max_unauthenticated`] such connections are held at once: beyond that
//! a new connection is closed as soon as it is accepted. Once [`Admission::authenticated`]
//! is called the connection is a call and neither limit applies to it.
//!
//! This sits at the socket rather than in hyper because one deadline has to cover both
//! the HTTP request and the WebSocket messages after the upgrade.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tracing::warn;

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy)]
pub struct GateLimits {
    /// From accepting the connection to a `start` with a valid token.
    pub deadline: Duration,
    /// Unauthenticated connections held at once.
    pub max_unauthenticated: u64,
}

/// One connection's standing at the door, shared by its socket and its request handler.
#[derive(Clone)]
pub struct Admission(Arc<AdmissionState>);

struct AdmissionState {
    authenticated: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Admission {
    fn new(metrics: Arc<Metrics>) -> Admission {
        metrics.unauthenticated_connections.fetch_add(1, Ordering::Relaxed);
        Admission(Arc::new(AdmissionState { authenticated: AtomicBool::new(false), metrics }))
    }

    /// The connection showed a valid token: it is a call now, free of the door's limits.
    pub fn authenticated(&self) {
        if !self.0.authenticated.swap(true, Ordering::Relaxed) {
            self.0.metrics.unauthenticated_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn is_authenticated(&self) -> bool {
        self.0.authenticated.load(Ordering::Relaxed)
    }
}

impl Drop for AdmissionState {
    fn drop(&mut self) {
        if !*self.authenticated.get_mut() {
            self.metrics.unauthenticated_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What a handler learns about its connection (axum's `ConnectInfo`).
#[derive(Clone)]
pub struct Door {
    pub remote: SocketAddr,
    pub admission: Admission,
}

// axum logs accept-side events with the address.
impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.remote.fmt(f)
    }
}

impl Connected<IncomingStream<'_, GatedListener>> for Door {
    fn connect_info(stream: IncomingStream<'_, GatedListener>) -> Door {
        stream.remote_addr().clone()
    }
}

pub struct GatedListener {
    listener: TcpListener,
    limits: GateLimits,
    metrics: Arc<Metrics>,
}

impl GatedListener {
    pub fn new(listener: TcpListener, limits: GateLimits, metrics: Arc<Metrics>) -> GatedListener {
        GatedListener { listener, limits, metrics }
    }
}

impl Listener for GatedListener {
    type Io = GatedStream;
    type Addr = Door;

    async fn accept(&mut self) -> (GatedStream, Door) {
        loop {
            let (tcp, remote) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let held = self.metrics.unauthenticated_connections.load(Ordering::Relaxed);
            if held >= self.limits.max_unauthenticated {
                Metrics::inc(&self.metrics.connections_refused);
                drop(tcp);
                continue;
            }
            // Nagle off: 20 ms frames must leave now, not wait for the previous one's ACK.
            let _ = tcp.set_nodelay(true);
            let admission = Admission::new(self.metrics.clone());
            let stream = GatedStream {
                tcp,
                admission: admission.clone(),
                door: DoorState::Waiting(Box::pin(tokio::time::sleep(self.limits.deadline))),
                metrics: self.metrics.clone(),
            };
            return (stream, Door { remote, admission });
        }
    }

    fn local_addr(&self) -> io::Result<Door> {
        // Only its address is of use; the admission is a placeholder nobody holds.
        Ok(Door { remote: self.listener.local_addr()?, admission: Admission::placeholder(self.metrics.clone()) })
    }
}

impl Admission {
    /// Not a connection: counts itself authenticated so the gauge is untouched.
    fn placeholder(metrics: Arc<Metrics>) -> Admission {
        Admission(Arc::new(AdmissionState { authenticated: AtomicBool::new(true), metrics }))
    }
}

/// A TCP stream whose reads fail once its deadline passes unless it authenticated.
pub struct GatedStream {
    tcp: TcpStream,
    admission: Admission,
    door: DoorState,
    metrics: Arc<Metrics>,
}

enum DoorState {
    /// Not yet authenticated: the deadline runs.
    Waiting(Pin<Box<Sleep>>),
    /// Authenticated: reads pass straight through.
    Through,
    /// The deadline passed first: every read fails, so the connection closes.
    Cut,
}

impl AsyncRead for GatedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let DoorState::Waiting(deadline) = &mut this.door {
            if this.admission.is_authenticated() {
                this.door = DoorState::Through;
            } else if deadline.as_mut().poll(cx).is_ready() {
                Metrics::inc(&this.metrics.connections_timed_out);
                this.door = DoorState::Cut;
            }
        }
        if let DoorState::Cut = this.door {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "not authenticated in time")));
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
