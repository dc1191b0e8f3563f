//! Platform profiles: `spin` (what `spin up` allows) and `edge`, which holds
//! components to the published limits of Fermyon Wasm Functions / Akamai
//! Functions, so that what passes here fits there:
//!
//! - imports: WASI 0.2, outbound HTTP, Spin variables and key-value,
//!   `wasi:keyvalue` store and batch (no atomics), outbound Redis,
//!   PostgreSQL and MySQL. Anything else is refused at start-up.
//! - 128 MiB of linear memory per instance.
//! - 10 MiB per request body and per response body: a body is cut at the
//!   limit (the guest reading past it gets `HTTP-request-body-size`); a
//!   response that declares more is replaced by a 500.
//! - 30 s per request, including work the guest continues after its
//!   response: then the instance is dropped.

use anyhow::{Result, bail};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// What `spin up` allows.
    Spin,
    /// Fermyon Wasm Functions / Akamai Functions.
    Edge,
}

/// Interfaces the edge platforms provide (by prefix of the import name).
const EDGE_IMPORTS: &[&str] = &[
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:http/",
    "wasi:keyvalue/store@",
    "wasi:keyvalue/batch@",
    "fermyon:spin/variables@",
    "fermyon:spin/key-value@",
    "fermyon:spin/redis@",
    "fermyon:spin/postgres@",
    "fermyon:spin/mysql@",
    "fermyon:spin/rdbms-types@",
    "spin:postgres/",
];

pub const EDGE_MEMORY: usize = 128 << 20;
pub const EDGE_BODY: u64 = 10 << 20;
pub const EDGE_REQUEST_TIME: Duration = Duration::from_secs(30);

/// What a profile allows, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct Limits {
    pub profile: Profile,
    pub max_instance_memory: usize,
    pub max_body: Option<u64>,
    pub request_timeout: Option<Duration>,
}

impl Limits {
    /// `memory` is `--max-instance-memory-mib`; the edge profile lowers it
    /// to the platforms' 128 MiB, never raises it.
    pub fn new(profile: Profile, memory: usize) -> Limits {
        match profile {
            Profile::Spin => Limits {
                profile,
                max_instance_memory: memory,
                max_body: None,
                request_timeout: None,
            },
            Profile::Edge => Limits {
                profile,
                max_instance_memory: memory.min(EDGE_MEMORY),
                max_body: Some(EDGE_BODY),
                request_timeout: Some(EDGE_REQUEST_TIME),
            },
        }
    }

    /// `--max-request-secs`, when given (0: no limit).
    pub fn with_request_secs(mut self, secs: Option<u64>) -> Limits {
        if let Some(secs) = secs {
            self.request_timeout = (secs > 0).then(|| Duration::from_secs(secs));
        }
        self
    }

    /// Refuses a component whose imports the profile's platform lacks.
    pub fn check_imports<'a>(
        &self,
        id: &str,
        imports: impl Iterator<Item = &'a str>,
    ) -> Result<()> {
        if self.profile != Profile::Edge {
            return Ok(());
        }
        let refused: Vec<&str> = imports
            .filter(|name| !EDGE_IMPORTS.iter().any(|p| name.starts_with(p)))
            .collect();
        if !refused.is_empty() {
            bail!(
                "component `{id}` imports {}, which the edge platforms (profile `edge`: \
                 Fermyon Wasm Functions, Akamai Functions) do not provide; build it for \
                 the edge (spin.edge.toml, scripts/build-components)",
                refused.join(", ")
            );
        }
        Ok(())
    }
}

/// A body that ends in `error` once more than `limit` bytes went through.
pub struct Capped<B> {
    inner: B,
    seen: u64,
    limit: u64,
    error: fn(u64) -> wasmtime_wasi_http::Error,
}

impl<B> Capped<B> {
    pub fn request(inner: B, limit: u64) -> Self {
        Capped {
            inner,
            seen: 0,
            limit,
            error: |l| wasmtime_wasi_http::Error::HttpRequestBodySize(Some(l)),
        }
    }

    pub fn response(inner: B, limit: u64) -> Self {
        Capped {
            inner,
            seen: 0,
            limit,
            error: |l| wasmtime_wasi_http::Error::HttpResponseBodySize(Some(l)),
        }
    }
}

impl<B> Body for Capped<B>
where
    B: Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Unpin,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.seen > this.limit {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.seen > this.limit {
                        return Poll::Ready(Some(Err((this.error)(this.limit))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.seen > self.limit || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    #[test]
    fn edge_imports_are_the_platforms_list() {
        let edge = Limits::new(Profile::Edge, 512 << 20);
        assert_eq!(edge.max_instance_memory, 128 << 20);
        assert_eq!(
            Limits::new(Profile::Edge, 64 << 20).max_instance_memory,
            64 << 20
        );
        let fine = [
            "wasi:http/types@0.2.0",
            "wasi:cli/environment@0.2.6",
            "wasi:keyvalue/store@0.2.0-draft2",
            "wasi:keyvalue/batch@0.2.0-draft2",
            "fermyon:spin/redis@2.0.0",
            "fermyon:spin/variables@2.0.0",
        ];
        edge.check_imports("c", fine.into_iter()).unwrap();
        let err = edge
            .check_imports(
                "c",
                [
                    "wasi:keyvalue/atomics@0.2.0-draft2",
                    "wasi:sockets/tcp@0.2.0",
                ]
                .into_iter(),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wasi:keyvalue/atomics@0.2.0-draft2, wasi:sockets/tcp@0.2.0"),
            "{err}"
        );
        Limits::new(Profile::Spin, 1 << 30)
            .check_imports("c", ["wasi:keyvalue/atomics@0.2.0-draft2"].into_iter())
            .unwrap();
    }

    fn body(
        len: usize,
    ) -> http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error> {
        Full::new(Bytes::from(vec![1u8; len]))
            .map_err(|e| match e {})
            .boxed_unsync()
    }

    #[tokio::test]
    async fn bodies_are_cut_past_the_limit() {
        let whole = Capped::request(body(10), 10).collect().await.unwrap();
        assert_eq!(whole.to_bytes().len(), 10);
        let err = Capped::request(body(11), 10).collect().await.unwrap_err();
        assert!(matches!(
            err,
            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(10))
        ));
        let err = Capped::response(body(11), 10).collect().await.unwrap_err();
        assert!(matches!(
            err,
            wasmtime_wasi_http::Error::HttpResponseBodySize(Some(10))
        ));
    }
}
