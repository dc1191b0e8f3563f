//! Bounded-memory imaging end to end (issue 18): the real `preview`
//! component on the in-repo host with every instance capped at 128 MiB
//! (`--max-instance-memory-mib 128`, the edge platforms' cap). Each render
//! reports its instance's peak memory from the host's `instance ended`
//! log line; the cap itself is the assertion that matters (a render over it
//! traps and answers 500).

mod common;

use common::*;
use std::path::Path;

const CAP_MIB: u64 = 128;

fn start(dir: &Path) -> Host {
    let users = serde_json::json!([
        {"user": "lab", "password": password_hash("lab-pw", 2000), "repositories": {"23": "uploader"}},
    ]);
    HostConfig::new(root().join("spin.toml"), dir)
        .var("epifiles_users", &users.to_string())
        .var("epifiles_max_chunk_size", &(32u64 << 20).to_string())
        .arg("--max-instance-memory-mib")
        .arg(&CAP_MIB.to_string())
        .start()
}

/// The value each channel of the drawing has at (x, y): smooth, so a box
/// or Lanczos shrink of any region is predictable.
fn drawn(x: u32, y: u32, w: u32, h: u32) -> [u8; 3] {
    [
        (x as u64 * 255 / w as u64) as u8,
        (y as u64 * 255 / h as u64) as u8,
        ((x as u64 + y as u64) * 255 / (w as u64 + h as u64)) as u8,
    ]
}

fn drawing(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(drawn(x, y, w, h)))
}

fn png(w: u32, h: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(drawing(w, h).as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode(drawing(w, h).as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn ticket(host: &Host) -> String {
    let r = send(
        "POST",
        &host.url("/proxy/logon"),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"user=lab&password=lab-pw",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["ticket"].as_str().unwrap().to_string()
}

/// The peaks of the `preview` instances that ended so far, in bytes.
fn preview_peaks(host: &Host) -> Vec<u64> {
    peaks(host, "preview")
}

/// The peaks of `component`'s instances that ended so far, in bytes.
fn peaks(host: &Host, component: &str) -> Vec<u64> {
    let tag = format!("component={component} ");
    host.logs()
        .lines()
        .filter(|l| l.contains("instance ended") && l.contains(&tag))
        .filter_map(|l| l.split("peak_memory_bytes=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Renders `args` of object `id`; the image, after checking the status and
/// the instance's peak.
fn render(host: &Host, ticket: &str, id: &str, args: &str, what: &str) -> image::RgbImage {
    let before = preview_peaks(host).len();
    let r = get(&host.url(&format!(
        "/proxy?ticket={ticket}&objectid={id}&rendition=preview&preview-args={args}"
    )));
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    // The instance ends after its answer: its line follows.
    let peak = wait_for(5, || preview_peaks(host).get(before).copied())
        .expect("the host logs each instance's peak");
    eprintln!(
        "{what}: {args}: peak instance memory {:.1} MiB (cap {CAP_MIB} MiB)",
        peak as f64 / (1 << 20) as f64
    );
    assert!(peak < CAP_MIB << 20, "{what}: {peak}");
    image::load_from_memory(&r.body).unwrap().into_rgb8()
}

/// Largest channel difference between `img` and the drawing's region
/// `(x, y)` + `img`'s size, scaled by `scale` (output pixel → source).
fn off_by(img: &image::RgbImage, src: (u32, u32), at: (u32, u32), scale: f64) -> u8 {
    let mut worst = 0;
    for (x, y, p) in img.enumerate_pixels() {
        // Inner pixels only: edges blend with what lies outside the region.
        if x < 2 || y < 2 || x + 2 >= img.width() || y + 2 >= img.height() {
            continue;
        }
        let sx = at.0 + ((x as f64 + 0.5) * scale) as u32;
        let sy = at.1 + ((y as f64 + 0.5) * scale) as u32;
        let want = drawn(sx, sy, src.0, src.1);
        for c in 0..3 {
            worst = worst.max(p[c].abs_diff(want[c]));
        }
    }
    worst
}

#[test]
fn a_48_mp_png_previews_and_crops_within_128_mib() {
    let dir = temp_dir("imaging-png");
    let host = start(&dir);
    let ticket = ticket(&host);
    let (w, h) = (8000, 6000);
    let id = deposit(&host, "big.png", &png(w, h));
    let img = render(
        &host,
        &ticket,
        &id,
        "maxWidth_600_maxHeight_400.jpg",
        "8000x6000 PNG",
    );
    assert_eq!(img.dimensions(), (533, 400));
    let d = off_by(&img, (w, h), (0, 0), 6000.0 / 400.0);
    assert!(d <= 6, "preview differs from the drawing by {d}");
    // The reference's crop, at full resolution.
    let img = render(
        &host,
        &ticket,
        &id,
        "cropWidth_590_cropHeight_390_cropOffsetX_10_cropOffsetY_10.jpg",
        "8000x6000 PNG",
    );
    assert_eq!(img.dimensions(), (590, 390));
    let d = off_by(&img, (w, h), (10, 10), 1.0);
    assert!(d <= 6, "crop differs from the drawing by {d}");
    // A large crop, shrunk, as PNG.
    let img = render(
        &host,
        &ticket,
        &id,
        "cropWidth_4000_cropHeight_2800_cropOffsetX_1234_cropOffsetY_777_maxWidth_1000.png",
        "8000x6000 PNG",
    );
    assert_eq!(img.dimensions(), (1000, 700));
    let d = off_by(&img, (w, h), (1234, 777), 4.0);
    assert!(d <= 6, "shrunk crop differs from the drawing by {d}");
    host.stop();
}

/// The reference's crop URL at full resolution, checked against the
/// drawing: exactly the 590x390 region at (10, 10).
fn reference_crop(host: &Host, ticket: &str, id: &str, src: (u32, u32), what: &str) {
    let img = render(
        host,
        ticket,
        id,
        "cropWidth_590_cropHeight_390_cropOffsetX_10_cropOffsetY_10.jpg",
        what,
    );
    assert_eq!(img.dimensions(), (590, 390));
    let d = off_by(&img, src, (10, 10), 1.0);
    assert!(d <= 8, "{what}: the crop differs from the drawing by {d}");
}

#[test]
fn a_50_mp_jpeg_previews_and_crops_within_128_mib() {
    let dir = temp_dir("imaging-jpeg");
    let host = start(&dir);
    let ticket = ticket(&host);
    // 49.99 MP: just within `preview_max_source_pixels`.
    let (w, h) = (8660, 5773);
    let id = deposit(&host, "big.jpg", &jpeg(w, h));
    let img = render(
        &host,
        &ticket,
        &id,
        "maxWidth_600_maxHeight_400.jpg",
        "50 MP JPEG",
    );
    assert_eq!(img.dimensions(), (600, 400));
    let d = off_by(&img, (w, h), (0, 0), w as f64 / 600.0);
    assert!(d <= 8, "preview differs from the drawing by {d}");
    // Full resolution: read in bands (a whole decode would be ~300 MB).
    reference_crop(&host, &ticket, &id, (w, h), "50 MP JPEG");
    // Near the bottom right corner: every band above is entropy-decoded
    // and dropped.
    let img = render(
        &host,
        &ticket,
        &id,
        "cropWidth_700_cropHeight_500_cropOffsetX_7901_cropOffsetY_5233.jpg",
        "50 MP JPEG",
    );
    assert_eq!(img.dimensions(), (700, 500));
    let d = off_by(&img, (w, h), (7901, 5233), 1.0);
    assert!(d <= 8, "corner crop differs from the drawing by {d}");
    host.stop();
}

/// An ordinary 24 MP camera JPEG (6000x4000): the reference's crop, a
/// 4000x2800 crop at full size, and Asset Compute's `crop` on it.
#[test]
fn a_24_mp_jpeg_crops_within_128_mib_in_both_protocols() {
    let dir = temp_dir("imaging-24mp");
    let (token, entry) = compute_client("aem", "key-main", "ORG@AdobeOrg", None);
    let users = serde_json::json!([
        {"user": "lab", "password": password_hash("lab-pw", 2000), "repositories": {"23": "uploader"}},
    ]);
    let host = HostConfig::new(root().join("spin.toml"), &dir)
        .var("epifiles_users", &users.to_string())
        .var("epifiles_max_chunk_size", &(32u64 << 20).to_string())
        .var("compute_clients", &serde_json::json!([entry]).to_string())
        .var("upload_api_key", "imaging-key-0123456789")
        .arg("--max-instance-memory-mib")
        .arg(&CAP_MIB.to_string())
        .start();
    let ticket = ticket(&host);
    let (w, h) = (6000, 4000);
    let camera = jpeg(w, h);
    let id = deposit(&host, "camera.jpg", &camera);
    reference_crop(&host, &ticket, &id, (w, h), "24 MP JPEG");
    let img = render(
        &host,
        &ticket,
        &id,
        "cropWidth_4000_cropHeight_2800_cropOffsetX_1001_cropOffsetY_603.jpg",
        "24 MP JPEG",
    );
    assert_eq!(img.dimensions(), (4000, 2800));
    let d = off_by(&img, (w, h), (1001, 603), 1.0);
    assert!(d <= 8, "large crop differs from the drawing by {d}");

    // Asset Compute: the same store, `asset:<id>` as the source, the
    // asset uploaded through the Phraseanet upload service.
    let r = send(
        "POST",
        &host.url("/assets"),
        &[
            ("authorization", "Bearer imaging-key-0123456789"),
            ("content-type", "image/jpeg"),
        ],
        &camera,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let asset = r.json()["id"].as_str().unwrap().to_string();
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("x-api-key", "key-main"),
        ("x-gw-ims-org-id", "ORG@AdobeOrg"),
        ("content-type", "application/json"),
    ];
    let reg = send("POST", &host.url("/register"), &headers, b"");
    assert_eq!(reg.status, 200, "{}", reg.text());
    let journal = reg.json()["journal"].as_str().unwrap().to_string();
    let body = serde_json::json!({
        "source": format!("asset:{asset}"),
        "renditions": [
            {"name": "crop.jpg", "fmt": "jpg", "postProcess": true, "crop": {"x": 10, "y": 10, "w": 590, "h": 390}},
            {"name": "big-crop.png", "fmt": "png", "width": 1000, "postProcess": true,
             "crop": {"x": 1001, "y": 603, "w": 4000, "h": 2800}},
        ]
    });
    let r = send(
        "POST",
        &host.url("/process"),
        &headers,
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let events = follow_journal(format!("{journal}?since=0"), 2, 120, |url| {
        send("GET", url, &headers[..3], b"")
    });
    for (name, size) in [("crop.jpg", (590, 390)), ("big-crop.png", (1000, 700))] {
        let e = events
            .iter()
            .find(|e| e["rendition"]["name"] == name)
            .unwrap_or_else(|| panic!("no event for {name}: {events:?}"));
        assert_eq!(e["type"], "rendition_created", "{e}");
        let m = &e["metadata"];
        assert_eq!(
            (
                m["tiff:ImageWidth"].as_u64(),
                m["tiff:ImageLength"].as_u64()
            ),
            (Some(size.0), Some(size.1)),
            "{e}"
        );
    }
    let peak = peaks(&host, "compute").into_iter().max().unwrap_or(0);
    eprintln!(
        "Asset Compute crops of the 24 MP JPEG: peak instance memory {:.1} MiB (cap {CAP_MIB} MiB)",
        peak as f64 / (1 << 20) as f64
    );
    assert!(peak > 0 && peak < CAP_MIB << 20, "{peak}");
    host.stop();
}
