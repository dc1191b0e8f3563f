//! The Asset Compute event journal (`/journal/{id}`), read the way Adobe
//! I/O Events journaling is. Thin: all of it is
//! `assetgate_compute::spin::serve`; after answering, it takes over one
//! abandoned job if there is one, so polling keeps the queue moving.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    assetgate_compute::spin::serve(req, out).await
}
