//! One accept loop for every port: TLS optional, HTTP/1.1 and HTTP/2 (h2c too, which is what
//! a plaintext gRPC client speaks), the peer's verified certificate name put on each request,
//! and every resource a client can hold bounded.
//!
//! Our own loop over hyper-util rather than `axum::serve`, because the front-proxy check
//! needs the certificate of each TLS connection, which `axum::serve` does not expose.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::api::Peer;
use super::tls::subject_common_name;

/// What one client may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections at once; more are closed at once.
    pub connections: usize,
    /// Time to finish the TLS handshake.
    pub handshake: Duration,
    /// Time to send a request's headers (a slow client, "slowloris", is cut off).
    pub header_read: Duration,
    /// Bytes of request headers (HTTP/1.1 buffer and HTTP/2 header list).
    pub header_bytes: usize,
    /// HTTP/2 streams at once per connection.
    pub streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections: 1024,
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            header_bytes: 16 * 1024,
            streams: 100,
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true, then lets open requests finish (for
/// up to ten seconds).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(limits.header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.header_bytes as u32)
        .max_concurrent_streams(limits.streams)
        .keep_alive_interval(Duration::from_secs(30));
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.connections));
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                // Out of descriptors, or a connection reset before it was accepted: go on.
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: close at once rather than queue.
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (tls, app, builder, watcher) = (
            tls.clone(),
            app.clone(),
            builder.clone(),
            graceful.watcher(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            let with_peer = |peer: Peer| {
                move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(peer.clone());
                    request
                }
            };
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let peer = Peer {
                        common_name: stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(subject_common_name),
                    };
                    let service = TowerToHyperService::new(app.map_request(with_peer(peer)));
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection.into_owned()).await;
                }
                None => {
                    let service =
                        TowerToHyperService::new(app.map_request(with_peer(Peer::default())));
                    let connection = builder.serve_connection(TokioIo::new(tcp), service);
                    let _ = watcher.watch(connection.into_owned()).await;
                }
            }
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}
