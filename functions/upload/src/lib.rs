//! The Phraseanet upload service (`/assets`, `/commits`, `/push/work`).
//! Thin: all of it is `assetgate_phraseanet::spin::upload::serve`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    assetgate_phraseanet::spin::upload::serve(req, out).await
}
