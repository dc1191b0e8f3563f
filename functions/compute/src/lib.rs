//! Asset Compute `/register`, `/unregister` and `/process`. Thin: all of
//! it is `assetgate_compute::spin::serve`; after answering a `/process`,
//! the same instance makes the renditions.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    assetgate_compute::spin::serve(req, out).await
}
