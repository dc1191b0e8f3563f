//! The DAM side of the Phraseanet flow (`/api/v1/upload/…`). Thin: all of
//! it is `assetgate_phraseanet::spin::ingest::serve`; after answering, the
//! same instance works queued jobs.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    assetgate_phraseanet::spin::ingest::serve(req, out).await
}
