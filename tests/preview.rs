//! The preview proxy end to end: the real `preview` component on the
//! in-repo host, sources uploaded through the EpiFiles component, tickets
//! from `POST /proxy/logon`.

mod common;

use common::*;
use std::path::Path;

fn start(dir: &Path) -> Host {
    let users = serde_json::json!([
        {"user": "lab", "password": password_hash("lab-pw", 2000), "repositories": {"23": "uploader"}},
        {"user": "other", "password": password_hash("other-pw", 2000), "repositories": {"24": "manager"}},
    ]);
    HostConfig::new(root().join("spin.toml"), dir)
        .var("epifiles_users", &users.to_string())
        .var("preview_cache_max_age", "600")
        .start()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn log_on(host: &Host, user: &str, password: &str) -> (String, String) {
    let body = format!("user={user}&password={password}&ww-app=Foo%20Bar");
    let r = send(
        "POST",
        &host.url("/proxy/logon"),
        &[("content-type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    openapi::check_reply("POST", "/proxy/logon", &r);
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (r.json()["ticket"].as_str().unwrap().to_string(), cookie)
}

/// Largest and mean per-channel difference of two same-sized images.
fn pixel_difference(a: &[u8], b: &[u8]) -> (u8, f64) {
    let (a, b) = (
        image::load_from_memory(a).unwrap().into_rgb8(),
        image::load_from_memory(b).unwrap().into_rgb8(),
    );
    assert_eq!(a.dimensions(), b.dimensions());
    let diffs: Vec<u8> = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .collect();
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
    (diffs.iter().copied().max().unwrap_or(0), mean)
}

fn dims(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).unwrap();
    (img.width(), img.height())
}

#[test]
fn previews_and_crops_with_stable_urls_and_revalidation() {
    let dir = temp_dir("preview-main");
    let host = start(&dir);
    let big = deposit(&host, "photo.jpg", &jpeg(1800, 1200));
    let small = deposit(&host, "small.jpg", &jpeg(600, 400));
    let (ticket, cookie) = log_on(&host, "lab", "lab-pw");

    // The reference's preview example, with the ticket in a cookie.
    let url = host.url(&format!("/restproxyindex.php?ww-app=Foo%20Bar&objectid={big}&rendition=preview&preview-args=maxWidth_600_maxHeight_400.jpg"));
    let r = send("GET", &url, &[("cookie", &cookie)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("cache-control"), Some("private, max-age=600"));
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    assert_eq!(dims(&r.body), (600, 400));
    let etag = r.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"'), "strong: {etag}");
    // Revalidation: 304, no body; the cached render answers the same bytes.
    let r304 = send(
        "GET",
        &url,
        &[("cookie", &cookie), ("if-none-match", &etag)],
        b"",
    );
    assert_eq!(r304.status, 304);
    assert!(r304.body.is_empty());
    assert_eq!(
        r304.header("content-length"),
        None,
        "a 304 does not describe a body"
    );
    assert_eq!(r304.header("etag"), Some(etag.as_str()));
    let again = send("GET", &host.url(&format!("/proxy?ww-app=Foo%20Bar&objectid={big}&rendition=preview&preview-args=maxHeight_400_maxWidth_600.jpg")), &[("authorization", &format!("Bearer {ticket}"))], b"");
    assert_eq!(
        (again.status, again.header("etag")),
        (200, Some(etag.as_str())),
        "same arguments, other spelling, Bearer"
    );
    assert!(again.body == r.body, "served from the cache");
    // The ticket was logged on for `Foo Bar`: another application's
    // `ww-app` does not find it, by cookie or by Bearer.
    for headers in [
        [("cookie", cookie.clone())],
        [("authorization", format!("Bearer {ticket}"))],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let other_app = send("GET", &host.url(&format!("/proxy?ww-app=Other&objectid={big}&rendition=preview&preview-args=maxWidth_600_maxHeight_400.jpg")), &headers, b"");
        assert_eq!(
            (other_app.status, other_app.json()["error"].as_str()),
            (401, Some("invalid-ticket")),
            "{}",
            other_app.text()
        );
    }
    // The reference's own path serves the same preview: a client set up for
    // the original plug-in only swaps the host.
    let enterprise = send("GET", &host.url(&format!("/Enterprise/server/plugins/Elvis/restproxyindex.php?ww-app=Foo%20Bar&objectid={big}&rendition=preview&preview-args=maxWidth_600_maxHeight_400.jpg")), &[("cookie", &cookie)], b"");
    assert_eq!(
        (enterprise.status, enterprise.header("etag")),
        (200, Some(etag.as_str())),
        "{}",
        enterprise.text()
    );
    assert!(enterprise.body == r.body);
    let unknown = send(
        "GET",
        &host.url("/Enterprise/server/plugins/Elvis/other.php"),
        &[("cookie", &cookie)],
        b"",
    );
    assert_eq!(unknown.status, 404);
    // The same pipeline natively gives the same pixels (the wasm build
    // resizes with SIMD128; this catches a miscompiled path). PNG, so the
    // comparison sees the resize, not JPEG's quantisation.
    let png = get(&host.url(&format!("/proxy?ticket={ticket}&objectid={big}&rendition=preview&preview-args=maxWidth_600_maxHeight_400.png")));
    let args = assetgate_preview::PreviewArgs::parse(
        Some("maxWidth_600_maxHeight_400.png"),
        assetgate_preview::Rendition::Preview,
    )
    .unwrap();
    let native =
        assetgate_preview::pipeline::render(&jpeg(1800, 1200), &args, &Default::default()).unwrap();
    let (max, mean) = pixel_difference(&native.bytes, &png.body);
    eprintln!("wasm vs native render: max {max}, mean {mean:.3}");
    assert!(
        mean < 0.1 && max <= 2,
        "wasm and native renders differ: max {max}, mean {mean:.3}"
    );

    // The reference's crop example: a 10-pixel border removed.
    let crop = host.url(&format!("/proxy?ticket={ticket}&objectid={small}&rendition=preview&preview-args=cropWidth_590_cropHeight_390_cropOffsetX_10_cropOffsetY_10.jpg"));
    let r = get(&crop);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(dims(&r.body), (590, 390));
    // Concurrent first requests for a new preview: all get the same bytes,
    // and the cached entry is whole.
    let fresh = host.url(&format!(
        "/proxy?ticket={ticket}&objectid={big}&rendition=preview&preview-args=maxWidth_333.png"
    ));
    let bodies: Vec<Vec<u8>> = (0..4)
        .map(|_| {
            let url = fresh.clone();
            std::thread::spawn(move || get(&url))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| {
            let r = t.join().unwrap();
            assert_eq!(r.status, 200);
            r.body
        })
        .collect();
    assert!(bodies.iter().all(|b| *b == bodies[0]), "identical renders");
    assert!(get(&fresh).body == bodies[0], "the cache entry is whole");
    assert_eq!(dims(&bodies[0]), (333, 222));
    // Thumb default box, other formats.
    let r = get(&host.url(&format!(
        "/proxy?ticket={ticket}&objectid={big}&rendition=thumb"
    )));
    assert_eq!(dims(&r.body), (256, 171));
    for (ext, mime) in [
        ("png", "image/png"),
        ("webp", "image/webp"),
        ("gif", "image/gif"),
    ] {
        let r = get(&host.url(&format!("/proxy?ticket={ticket}&objectid={small}&rendition=preview&preview-args=maxWidth_120.{ext}")));
        assert_eq!((r.status, r.header("content-type")), (200, Some(mime)));
        assert_eq!(dims(&r.body), (120, 80));
    }
}

#[test]
fn refusals_use_the_reference_status_codes() {
    let dir = temp_dir("preview-errors");
    let host = start(&dir);
    let id = deposit(&host, "a.jpg", &jpeg(300, 200));
    let (ticket, _) = log_on(&host, "lab", "lab-pw");
    let (other, _) = log_on(&host, "other", "other-pw");
    let q = |s: &str| get(&host.url(&format!("/proxy?{s}")));
    let code = |r: &Reply| r.json()["error"].as_str().unwrap_or("").to_string();
    assert_eq!(q(&format!("rendition=preview&ticket={ticket}")).status, 400);
    assert_eq!(
        q(&format!("objectid={id}&rendition=huge&ticket={ticket}")).status,
        400
    );
    let r = q(&format!(
        "objectid={id}&rendition=preview&preview-args=maxWidth_600_zoom_2.jpg&ticket={ticket}"
    ));
    assert_eq!((r.status, code(&r)), (400, "invalid-preview-args".into()));
    assert!(r.text().contains("zoom"));
    // `native` ignores preview-args but does not take a malformed one.
    let r = q(&format!(
        "objectid={id}&rendition=native&preview-args=maxWidth_600&ticket={ticket}"
    ));
    assert_eq!((r.status, code(&r)), (400, "invalid-preview-args".into()));
    let r = q(&format!(
        "objectid={id}&rendition=native&preview-args=maxWidth_600.jpg&ticket={ticket}"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        q(&format!("objectid={id}&rendition=preview")).status,
        400,
        "ticket or ww-app"
    );
    let r = q(&format!(
        "objectid={id}&rendition=preview&preview-args=cropWidth_400_cropHeight_10.jpg&ticket={ticket}"
    ));
    assert_eq!(r.status, 400, "crop outside the image: {}", r.text());
    assert_eq!(
        q(&format!("objectid={id}&rendition=preview&ticket=forged")).status,
        401
    );
    assert_eq!(
        q(&format!("objectid={id}&rendition=preview&ww-app=x")).status,
        401
    );
    assert_eq!(
        q(&format!("objectid={id}&rendition=preview&ticket={other}")).status,
        403
    );
    assert_eq!(
        q(&format!("objectid=999&rendition=preview&ticket={ticket}")).status,
        404
    );
    let r = send("DELETE", &host.url("/proxy"), &[], b"");
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, POST, OPTIONS"))
    );
    assert_eq!(send("OPTIONS", &host.url("/proxy"), &[], b"").status, 204);
    // POST with a form body works like GET.
    let body =
        format!("objectid={id}&rendition=preview&preview-args=maxWidth_30.png&ticket={ticket}");
    let r = send(
        "POST",
        &host.url("/proxy"),
        &[("content-type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!((r.status, dims(&r.body)), (200, (30, 20)));
    // Wrong password at log-on.
    let r = send(
        "POST",
        &host.url("/proxy/logon"),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"user=lab&password=nope",
    );
    assert_eq!(r.status, 401);
    openapi::check_reply("POST", "/proxy/logon", &r);
    // No internal id or path in any error.
    for r in [
        q(&format!("objectid=999&rendition=preview&ticket={ticket}")),
        q(&format!("objectid={id}&rendition=preview&ticket={other}")),
    ] {
        assert!(
            !r.text().contains("blob") && !r.text().contains("asset"),
            "{}",
            r.text()
        );
    }
}

#[test]
fn oversized_corrupt_and_native_sources() {
    let dir = temp_dir("preview-sources");
    let host = start(&dir);
    let (ticket, _) = log_on(&host, "lab", "lab-pw");
    // A JPEG header claiming 10000 x 6000 pixels: refused from the header.
    let mut huge = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8];
    huge.extend_from_slice(&6000u16.to_be_bytes());
    huge.extend_from_slice(&10000u16.to_be_bytes());
    huge.extend_from_slice(&[1, 1, 0x11, 0, 0xFF, 0xD9]);
    let id = deposit(&host, "huge.jpg", &huge);
    let r = get(&host.url(&format!(
        "/proxy?ticket={ticket}&objectid={id}&rendition=preview"
    )));
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("60.0 MP"), "{}", r.text());
    // A truncated JPEG: a clear error, twice (nothing was cached).
    let full = jpeg(400, 300);
    let id = deposit(&host, "broken.jpg", &full[..full.len() / 2]);
    for _ in 0..2 {
        let r = get(&host.url(&format!(
            "/proxy?ticket={ticket}&objectid={id}&rendition=thumb"
        )));
        assert_eq!(r.status, 422, "{}", r.text());
    }
    // Native: the stored bytes, with Range.
    let src = jpeg(200, 100);
    let id = deposit(&host, "n.jpg", &src);
    let url = host.url(&format!(
        "/proxy?ticket={ticket}&objectid={id}&rendition=native"
    ));
    let r = get(&url);
    assert_eq!((r.status, r.body.clone()), (200, src.clone()));
    let etag = r.header("etag").unwrap().to_string();
    let r = send("GET", &url, &[("range", "bytes=10-19")], b"");
    assert_eq!((r.status, &r.body[..]), (206, &src[10..20]));
    assert_eq!(
        send("GET", &url, &[("if-none-match", &etag)], b"").status,
        304
    );
}
