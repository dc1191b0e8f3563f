//! The EpiFiles web services and their outbox. Thin: all of it is
//! `assetgate_epifiles::spin::serve`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    assetgate_epifiles::spin::serve(req, out).await
}
