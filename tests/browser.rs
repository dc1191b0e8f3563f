//! A real browser (Debian's headless `chromium`) loads one preview URL
//! twice in a page session, then once more on a later visit with the same
//! profile: the in-page reload must come from the browser's cache or a
//! 304, the revisit must revalidate (max-age is 0) and get a 304 — never a
//! second full download. The host's request log is the witness.

mod common;

use common::*;
use std::process::Command;

fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c.to_string();
        }
    }
    panic!(
        "this test needs Chromium: `apt-get install chromium` (scripts/setup does it when run as root)"
    );
}

#[test]
fn a_browser_reuses_or_revalidates_a_preview() {
    let browser = chromium();
    let dir = temp_dir("browser");
    let users = serde_json::json!([{"user": "lab", "password": password_hash("lab-pw", 2000), "repositories": {"23": "uploader"}}]);
    // max-age 0: the browser must revalidate (or reuse its in-page copy).
    let host = HostConfig::new(root().join("spin.toml"), &dir)
        .var("epifiles_users", &users.to_string())
        .var("preview_cache_max_age", "0")
        .start();
    let img = image::RgbImage::from_fn(1200, 800, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode(img.as_raw(), 1200, 800, image::ExtendedColorType::Rgb8)
        .unwrap();
    let md5 = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(&jpeg))
    };
    let auth = format!("Basic {}", {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("lab:lab-pw")
    });
    let r = send(
        "POST",
        &host.url(&format!(
            "/epifiles/ws/manifestfile?hash={md5}&filename=p.jpg&total_chunks=1"
        )),
        &[
            ("authorization", &auth),
            ("content-type", "application/octet-stream"),
        ],
        &jpeg,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let id = &text[text.find("<id>").unwrap() + 4..];
    let id = &id[..id.find('<').unwrap()];
    let r = send(
        "POST",
        &host.url("/proxy/logon"),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"user=lab&password=lab-pw",
    );
    let ticket = r.json()["ticket"].as_str().unwrap().to_string();

    let url = host.url(&format!("/proxy?ticket={ticket}&objectid={id}&rendition=preview&preview-args=maxWidth_600_maxHeight_400.jpg"));
    // Load the image, then load it again in the same page; the second
    // load may come from the browser's cache or, as max-age is 0, be
    // revalidated with If-None-Match. Both sizes go to the title.
    let page = format!(
        r#"<html><body><script>
        const url = {url:?};
        const one = new Image();
        one.onload = () => {{
          const two = new Image();
          two.onload = () => {{
            document.title = `loaded ${{one.naturalWidth}}x${{one.naturalHeight}} then ${{two.naturalWidth}}x${{two.naturalHeight}}`;
          }};
          two.onerror = () => {{ document.title = "second load failed"; }};
          two.src = url;
          document.body.appendChild(two);
        }};
        one.onerror = () => {{ document.title = "first load failed"; }};
        one.src = url;
        document.body.appendChild(one);
        </script></body></html>"#
    );
    let profile = dir.join("profile");
    let run = |name: &str, page: &str| -> String {
        let page_path = dir.join(name);
        std::fs::write(&page_path, page).unwrap();
        let out = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=10000",
                &format!("--user-data-dir={}", profile.display()),
                "--dump-dom",
                &format!("file://{}", page_path.display()),
            ])
            .output()
            .expect("chromium runs");
        let dom = String::from_utf8_lossy(&out.stdout).to_string();
        format!("{dom}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    };
    let dom = run("page.html", &page);
    assert!(
        dom.contains("<title>loaded 600x400 then 600x400</title>"),
        "page result: {dom}"
    );
    // A later visit with the same browser profile: the disk cache holds the
    // preview, max-age 0 makes the browser revalidate it.
    let revisit = format!(
        r#"<html><body><script>
        const img = new Image();
        img.onload = () => {{ document.title = `again ${{img.naturalWidth}}x${{img.naturalHeight}}`; }};
        img.onerror = () => {{ document.title = "failed"; }};
        img.src = {url:?};
        document.body.appendChild(img);
        </script></body></html>"#
    );
    let dom = run("revisit.html", &revisit);
    assert!(
        dom.contains("<title>again 600x400</title>"),
        "revisit result: {dom}"
    );
    // The host saw one full answer, then only 304s (its log line is
    // written as the response completes).
    host.wait_for_log("path=/proxy status=304");
    let logs = host.logs();
    let statuses: Vec<&str> = logs
        .lines()
        .filter(|l| {
            l.contains("component=preview")
                && l.contains("path=/proxy ")
                && l.contains("method=GET")
        })
        .filter_map(|l| l.split("status=").nth(1)?.split_whitespace().next())
        .collect();
    assert_eq!(statuses.first(), Some(&"200"), "{statuses:?}");
    assert!(
        statuses[1..].iter().all(|s| *s == "304"),
        "later loads revalidated, never re-downloaded: {statuses:?}"
    );
    assert!(
        statuses.contains(&"304"),
        "the revisit revalidated: {statuses:?}"
    );
    eprintln!("browser: preview requests seen by the host: {statuses:?}");
}
