//! Serving one TCP connection: HTTP/1.1 with keep-alive, and limits so that
//! slow or oversized request heads cannot hold the host's file descriptors
//! or memory.
//!
//! Spin serves with hyper too, but sets no timer, so hyper's 30 s header
//! read timeout never runs there and a client that trickles its headers, or
//! keeps an idle connection open, holds it forever. This host sets the
//! timer. hyper's header read timeout starts when the connection opens and
//! again as soon as a response is finished, and stops once the next request
//! head (start line and headers) has arrived: one timer bounds both a
//! slow-loris head and an idle keep-alive connection, and never a request
//! body, so slow but steady uploads are not cut.

use crate::server::App;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// The default time a request head may take to arrive, counted from the
/// connection's opening or its previous response: hyper's own default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Header lines in a request head; more is answered 431. hyper's default,
/// so Spin's limit too.
pub const MAX_HEADERS: usize = 100;

/// Bytes of a request head (start line and headers); more is answered 431.
/// Spin lets the head grow to hyper's read buffer (about 408 KiB); 64 KiB is
/// several times what browsers and our clients send.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The per-connection settings from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// hyper's connection settings for `limits`.
pub fn builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES);
    builder
}

/// Serves requests on `stream` until the client closes it, a limit ends
/// it, or an I/O error does.
pub async fn serve(stream: TcpStream, client: SocketAddr, app: Arc<App>, limits: Limits) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(app.handle(req, client).await) }
    });
    if let Err(e) = builder(&limits)
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        // A flood of slow clients must not flood the log: debug only.
        if e.is_timeout() {
            tracing::debug!(%client, secs = limits.header_read_timeout.as_secs_f64(), "connection closed: no complete request head within the header read timeout");
        } else {
            tracing::debug!(%client, error = %e, "connection ended with an error");
        }
    }
}
