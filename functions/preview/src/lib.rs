//! The preview proxy (Elvis proxy protocol). Thin: all of it is
//! `assetgate_preview::spin::serve`, composed with EpiFiles' object ids
//! and read rules (ManifestFile numbers, who sees a manifest).

use assetgate_epifiles::provenance::Manifests;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    assetgate_preview::spin::serve(req, out, &Manifests).await
}
