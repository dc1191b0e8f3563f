//! Asset Compute end to end: the real `compute` and `journal` components on
//! the in-repo host, a small bucket server started here (serves sources,
//! records PUTs), and the journal read back the way Adobe's client reads it.

mod common;

use common::{HostConfig, Reply, compute_client, jpeg, openapi, temp_dir, wait_for};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

const ORG: &str = "TESTORG@AdobeOrg";

/// `common::send`, every response checked against docs/openapi.json
/// (`common::openapi`): the journal's pages too, read through it.
fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    openapi::send(method, url, headers, body)
}

/// Serves `GET /files/{name}` (after `delay_ms` for names starting with
/// `slow-`), records `PUT /put/{name}`, answers 500 to `PUT /broken/...`.
#[derive(Default)]
struct Bucket {
    files: HashMap<String, Vec<u8>>,
    puts: Vec<(String, String, Vec<u8>)>,
}

fn bucket(state: Arc<Mutex<Bucket>>) -> u16 {
    common::http_server(move |req| {
        let octets = "application/octet-stream";
        let name = req
            .path
            .splitn(3, '/')
            .nth(2)
            .unwrap_or_default()
            .to_string();
        match (req.method.as_str(), req.segments().first().copied()) {
            ("GET", Some("files")) => {
                if name.starts_with("slow-") {
                    std::thread::sleep(std::time::Duration::from_millis(1500));
                }
                match state.lock().unwrap().files.get(&name) {
                    Some(b) => (200, octets, b.clone()),
                    None => (404, octets, Vec::new()),
                }
            }
            ("PUT", Some("put")) => {
                let ctype = req.header("content-type").unwrap_or_default().to_string();
                state.lock().unwrap().puts.push((name, ctype, req.body));
                (200, octets, Vec::new())
            }
            ("PUT", Some("broken")) => (500, octets, Vec::new()),
            _ => (404, octets, Vec::new()),
        }
    })
}

fn png_rgba(w: u32, h: u32, px: [u8; 4]) -> Vec<u8> {
    use image::ImageEncoder;
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba(px));
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgba8)
        .unwrap();
    out
}

struct Client {
    token: String,
    api_key: String,
}

impl Client {
    fn headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("authorization", "Bearer "),
            ("x-api-key", self.api_key.as_str()),
            ("x-gw-ims-org-id", ORG),
            ("content-type", "application/json"),
        ]
    }

    fn call(&self, method: &str, url: &str, body: &Value) -> Reply {
        let auth = format!("Bearer {}", self.token);
        let mut h = self.headers();
        h[0] = ("authorization", auth.as_str());
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        send(method, url, &h, &bytes)
    }
}

/// Reads the journal from the start until `n` events arrived; follows
/// `Link: rel="next"` exactly as the Node client does.
fn events(c: &Client, journal: &str, n: usize) -> Vec<Value> {
    common::follow_journal(format!("{journal}?since=0"), n, 90, |url| {
        c.call("GET", url, &Value::Null)
    })
}

fn by_name(events: &[Value]) -> Events {
    events
        .iter()
        .map(|e| {
            (
                e["rendition"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e.clone(),
            )
        })
        .collect()
}

type Events = HashMap<String, Value>;

fn created(ev: &Events, name: &str) -> Value {
    let e = ev
        .get(name)
        .unwrap_or_else(|| panic!("no event for {name}: {:?}", ev.keys()));
    assert_eq!(e["type"], "rendition_created", "{name}: {e}");
    e.clone()
}

fn failed(ev: &Events, name: &str, reason: &str) -> Value {
    let e = ev
        .get(name)
        .unwrap_or_else(|| panic!("no event for {name}: {:?}", ev.keys()));
    assert_eq!(
        (e["type"].as_str(), e["errorReason"].as_str()),
        (Some("rendition_failed"), Some(reason)),
        "{name}: {e}"
    );
    assert!(e["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
    e.clone()
}

struct App {
    host: common::Host,
    bucket: Arc<Mutex<Bucket>>,
    port: u16,
    main: Client,
    slow: Client,
}

fn start(dir: &std::path::Path, bucket_state: Arc<Mutex<Bucket>>, port: u16, listen: u16) -> App {
    let (token, entry) = compute_client("aem", "key-main", ORG, None);
    let (slow_token, slow_entry) = compute_client("one-at-a-time", "key-slow", ORG, Some(1));
    let clients = json!([entry, slow_entry]).to_string();
    let host = HostConfig::new("spin.toml", dir)
        .listen(listen)
        .var("compute_clients", &clients)
        .var("compute_allowed_http_hosts", &format!("127.0.0.1:{port}"))
        .var("compute_http_host", &format!("http://127.0.0.1:{port}"))
        .var("compute_max_source_pixels", "4000000")
        .var("compute_max_decode_bytes", "8388608")
        .start();
    App {
        host,
        bucket: bucket_state,
        port,
        main: Client {
            token,
            api_key: "key-main".into(),
        },
        slow: Client {
            token: slow_token,
            api_key: "key-slow".into(),
        },
    }
}

#[test]
fn renditions_events_and_errors() {
    let state = Arc::new(Mutex::new(Bucket::default()));
    {
        let mut b = state.lock().unwrap();
        b.files.insert("photo.jpg".into(), jpeg(800, 600));
        b.files.insert("slow-photo.jpg".into(), jpeg(80, 60));
        b.files
            .insert("mark.png".into(), png_rgba(20, 20, [0, 0, 0, 255]));
        b.files.insert("a.txt".into(), b"alpha".to_vec());
        b.files.insert("b.txt".into(), b"bravo".to_vec());
        b.files.insert("page.html".into(), b"<html><head><style>p{}</style></head><body><h1>Heading</h1><p>Some &amp; more</p></body></html>".to_vec());
        b.files
            .insert("huge.png".into(), png_rgba(2500, 2000, [9, 9, 9, 255]));
        // Interlaced: decoded whole (a plain PNG would be read by rows and
        // fit), which is over compute_max_decode_bytes.
        let big = image::RgbaImage::from_pixel(1900, 1900, image::Rgba([9, 9, 9, 255]));
        b.files.insert(
            "big.png".into(),
            assetgate_imaging::encode::png(big.as_raw(), 1900, 1900, 4, true, None),
        );
        let mut corrupt = jpeg(64, 64);
        corrupt.truncate(corrupt.len() / 3);
        b.files.insert("corrupt.jpg".into(), corrupt);
    }
    let port = bucket(state.clone());
    let dir = temp_dir("compute");
    let listen = common::free_port();
    let app = start(&dir, state.clone(), port, listen);
    let (c, url) = (&app.main, |p: &str| app.host.url(p));
    let files = |name: &str| format!("http://127.0.0.1:{port}/files/{name}");
    let put = |name: &str| format!("http://127.0.0.1:{port}/put/{name}");

    // Authentication and registration.
    assert_eq!(send("POST", &url("/register"), &[], b"").status, 401);
    let mut forged = Client {
        token: "eyJ.forged.token".into(),
        api_key: "key-main".into(),
    };
    assert_eq!(
        forged.call("POST", &url("/register"), &Value::Null).status,
        401
    );
    // A valid token with another client's API key is an invalid API key.
    forged.token = c.token.clone();
    forged.api_key = "key-slow".into();
    assert_eq!(
        forged.call("POST", &url("/register"), &Value::Null).status,
        401
    );
    // A valid caller naming another organisation is forbidden.
    let auth = format!("Bearer {}", c.token);
    let other_org = [
        ("authorization", auth.as_str()),
        ("x-api-key", "key-main"),
        ("x-gw-ims-org-id", "OTHER@AdobeOrg"),
    ];
    assert_eq!(send("POST", &url("/register"), &other_org, b"").status, 403);
    let simple = json!({"source": files("photo.jpg"), "renditions": [{"fmt": "png"}]});
    let r = c.call("POST", &url("/process"), &simple);
    assert_eq!(r.status, 404, "process before register: {}", r.text());
    assert!(r.header("x-request-id").is_some());
    let reg = c.call("POST", &url("/register"), &Value::Null);
    assert_eq!(reg.status, 200, "{}", reg.text());
    let journal = reg.json()["journal"].as_str().unwrap().to_string();
    assert_eq!(reg.json()["ok"], true);
    assert_eq!(reg.json()["requestId"].as_str(), reg.header("x-request-id"));
    let again = c.call("POST", &url("/register"), &Value::Null);
    assert_eq!(
        again.json()["journal"],
        journal.as_str(),
        "register is idempotent"
    );
    assert_eq!(c.call("GET", &url("/register"), &Value::Null).status, 405);

    // Synchronous refusals.
    for (body, want) in [
        (
            json!({"source": files("photo.jpg"), "renditions": [{"fmt": "png"}, {"fmt": 7}]}),
            "renditions[1]: `fmt` must be a string",
        ),
        (
            json!({"source": files("photo.jpg")}),
            "`renditions` is required",
        ),
        (
            json!({"source": files("photo.jpg"), "renditions": [{"fmt": "png", "target": "https://169.254.169.254/latest"}]}),
            "link-local",
        ),
        (
            json!({"source": "http://example.com/a.jpg", "renditions": [{"fmt": "png"}]}),
            "plain http",
        ),
        (
            json!({"source": files("photo.jpg"), "renditions": [{"fmt": "jpg", "quality": 0}]}),
            "`quality`",
        ),
        (
            json!({"source": files("photo.jpg"), "renditions": vec![json!({"fmt": "png"}); 21]}),
            "at most 20",
        ),
    ] {
        let r = c.call("POST", &url("/process"), &body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["ok"], false);
        assert!(
            r.json()["message"].as_str().unwrap().contains(want),
            "{}",
            r.text()
        );
    }
    let r = send(
        "POST",
        &url("/process"),
        &[
            ("authorization", &format!("Bearer {}", c.token)),
            ("x-api-key", "key-main"),
            ("x-gw-ims-org-id", ORG),
        ],
        b"{not json",
    );
    assert_eq!(r.status, 400);

    // Every format and instruction, from one JPEG.
    let body = json!({
        "source": {"url": files("photo.jpg"), "name": "photo.jpg", "mimetype": "image/jpeg"},
        "userData": {"batch": 7},
        "renditions": [
            {"name": "fit.png", "fmt": "png", "width": 200, "target": format!("{}?X-Amz-Signature=SECRET1", put("fit.png")), "userData": {"i": 0}},
            {"name": "q.jpg", "fmt": "jpg", "width": 300, "quality": 60, "interlace": true, "dpi": 300, "target": put("q.jpg")},
            {"name": "small.jpeg", "fmt": "jpeg", "jpegSize": 20000, "target": put("small.jpeg")},
            {"name": "w.webp", "fmt": "webp", "width": 100, "quality": 10, "target": put("w.webp")},
            {"name": "h.gif", "fmt": "gif", "height": 50, "target": put("h.gif")},
            {"name": "d.tif", "fmt": "tiff", "width": 80, "dpi": {"xdpi": 200, "ydpi": 100}, "target": put("d.tif")},
            {"name": "post.png", "fmt": "png", "postProcess": true, "crop": {"x": 100, "y": 100, "w": 400, "h": 300},
             "watermark": {"image": files("mark.png"), "scale": 0.5}, "interlace": true, "target": put("post.png")},
            {"name": "dpi.jpg", "fmt": "jpg", "convertToDpi": 144, "target": put("dpi.jpg")},
            {"name": "meta.xmp", "fmt": "xmp", "target": put("meta.xmp")},
            {"name": "meta.txt", "fmt": "text", "target": put("meta.txt")},
            {"name": "tiny.png", "fmt": "png", "width": 16, "embedBinaryLimit": 100000, "target": put("tiny.png")},
            {"name": "parts.png", "fmt": "png", "width": 400,
             "target": {"urls": [put("part1"), put("part2"), put("part3"), put("part4")], "minPartSize": 20000, "maxPartSize": 1000000}},
            {"name": "toolarge.png", "fmt": "png", "target": {"urls": [put("x1"), put("x2")], "minPartSize": 10, "maxPartSize": 100}},
            {"name": "kept.png", "fmt": "png", "width": 64},
            {"name": "broken.png", "fmt": "png", "width": 10, "target": format!("http://127.0.0.1:{port}/broken/x?sig=SECRET2")}
        ]
    });
    let r = c.call("POST", &url("/process"), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let request_id = r.json()["requestId"].as_str().unwrap().to_string();
    assert_eq!(Some(request_id.as_str()), r.header("x-request-id"));
    let ev = by_name(&events(c, &journal, 15));
    assert!(ev.values().all(|e| e["requestId"] == request_id.as_str()));
    assert!(ev.values().all(|e| e["userData"]["batch"] == 7));
    let puts: HashMap<String, (String, Vec<u8>)> = state
        .lock()
        .unwrap()
        .puts
        .iter()
        .map(|(n, t, b)| (n.clone(), (t.clone(), b.clone())))
        .collect();
    let stored = |n: &str| {
        puts.get(n)
            .unwrap_or_else(|| panic!("no PUT of {n}"))
            .1
            .clone()
    };
    let dims = |b: &[u8]| {
        let i = image::load_from_memory(b).unwrap();
        (i.width(), i.height())
    };

    let e = created(&ev, "fit.png");
    assert_eq!(dims(&stored("fit.png")), (200, 150));
    assert_eq!(
        (
            e["metadata"]["tiff:ImageWidth"].as_u64(),
            e["metadata"]["tiff:ImageLength"].as_u64()
        ),
        (Some(200), Some(150))
    );
    assert_eq!(e["metadata"]["dc:format"], "image/png");
    assert_eq!(
        e["metadata"]["repo:size"].as_u64(),
        Some(stored("fit.png").len() as u64)
    );
    let sha1 = {
        use sha1_smol_check::digest;
        digest(&stored("fit.png"))
    };
    assert_eq!(e["metadata"]["repo:sha1"], sha1.as_str());
    assert_eq!(e["rendition"]["userData"]["i"], 0);
    assert_eq!(e["source"]["url"], files("photo.jpg").as_str());
    assert_eq!(
        e["rendition"]["target"],
        format!("{}?REDACTED", put("fit.png")).as_str()
    );
    assert_eq!(puts["fit.png"].0, "image/png");

    created(&ev, "q.jpg");
    let q = stored("q.jpg");
    assert_eq!(dims(&q), (300, 225));
    assert!(
        q.windows(2).any(|w| w == [0xFF, 0xC2]),
        "progressive JPEG (SOF2)"
    );
    assert_eq!(&q[6..11], b"JFIF\0");
    assert_eq!(
        (q[13], u16::from_be_bytes([q[14], q[15]])),
        (1, 300),
        "300 dpi"
    );

    created(&ev, "small.jpeg");
    assert!(
        stored("small.jpeg").len() <= 20000,
        "{}",
        stored("small.jpeg").len()
    );
    assert!(
        stored("q.jpg").len() * 800 * 600 / (300 * 225) > 20000,
        "the size limit mattered"
    );
    assert_eq!(dims(&stored("small.jpeg")), (800, 600));
    created(&ev, "w.webp");
    assert_eq!(dims(&stored("w.webp")), (100, 75));
    created(&ev, "h.gif");
    assert_eq!(dims(&stored("h.gif")), (67, 50));
    let e = created(&ev, "d.tif");
    let tif = stored("d.tif");
    assert!(tif.starts_with(b"II*\0") || tif.starts_with(b"MM\0*"));
    assert_eq!(e["metadata"]["tiff:ImageWidth"], 80);
    assert_eq!(e["metadata"]["dc:format"], "image/tiff");

    created(&ev, "post.png");
    let post = stored("post.png");
    assert_eq!(post[8 + 8 + 12], 1, "Adam7 interlaced PNG");
    let img = image::load_from_memory(&post).unwrap().into_rgb8();
    assert_eq!(img.dimensions(), (400, 300));
    // The 20×20 black mark, fitted to 200×150 → 150×150, centred.
    assert_eq!(img.get_pixel(200, 150).0, [0, 0, 0]);
    assert_ne!(img.get_pixel(20, 20).0, [0, 0, 0]);

    created(&ev, "dpi.jpg");
    assert_eq!(
        dims(&stored("dpi.jpg")),
        (1600, 1200),
        "72 → 144 dpi keeps the physical size"
    );
    let xmp = String::from_utf8(stored("meta.xmp")).unwrap();
    assert!(
        xmp.contains("<tiff:ImageWidth>800</tiff:ImageWidth>"),
        "{xmp}"
    );
    created(&ev, "meta.xmp");
    failed(&ev, "meta.txt", "RenditionFormatUnsupported");

    let e = created(&ev, "tiny.png");
    let data = e["data"].as_str().unwrap();
    assert!(data.starts_with("data:image/png;base64,"));
    assert!(
        !puts.contains_key("tiny.png"),
        "embedded renditions are not uploaded"
    );

    let e = created(&ev, "parts.png");
    let size = e["metadata"]["repo:size"].as_u64().unwrap() as usize;
    let mut whole = Vec::new();
    for p in ["part1", "part2", "part3", "part4"] {
        if let Some((_, b)) = puts.get(p) {
            assert!(
                b.len() >= 20000 || whole.len() + b.len() == size,
                "{p}: {}",
                b.len()
            );
            whole.extend_from_slice(b);
        }
    }
    assert_eq!(whole.len(), size);
    assert_eq!(dims(&whole), (400, 300));
    assert_eq!(e["rendition"]["target"]["urls"][0], put("part1").as_str());

    let e = failed(&ev, "toolarge.png", "RenditionTooLarge");
    assert!(e["metadata"]["repo:size"].as_u64().unwrap() > 200);
    failed(&ev, "broken.png", "GenericError");

    // No target: kept in the store, and usable as a source.
    let e = created(&ev, "kept.png");
    let asset = e["asset"]["url"].as_str().unwrap().to_string();
    assert!(asset.starts_with("asset:"));
    let r = c.call("POST", &url("/process"), &json!({"source": asset, "renditions": [{"name": "again.jpg", "fmt": "jpg", "width": 32, "target": put("again.jpg")}]}));
    assert_eq!(r.status, 200, "{}", r.text());
    let all = events(c, &journal, 16);
    assert_eq!(all[15]["type"], "rendition_created", "{}", all[15]);
    assert_eq!(
        dims(
            &state
                .lock()
                .unwrap()
                .puts
                .iter()
                .find(|p| p.0 == "again.jpg")
                .unwrap()
                .2
        ),
        (32, 24)
    );

    // Zip, and every remaining error reason.
    let body = json!({
        "source": files("photo.jpg"),
        "renditions": [
            {"name": "bundle.zip", "fmt": "zip", "files": [files("a.txt"), {"url": files("b.txt"), "path": "dir/b.txt"}], "target": put("bundle.zip")},
            {"name": "dup.zip", "fmt": "zip", "files": [{"url": files("a.txt"), "path": "x.txt"}, {"url": files("b.txt"), "path": "x.txt"}], "target": put("dup.zip")},
            {"name": "dup-ok.zip", "fmt": "zip", "duplicate": "ignore", "files": [{"url": files("a.txt"), "path": "x.txt"}, {"url": files("b.txt"), "path": "x.txt"}], "target": put("dup-ok.zip")}
        ]
    });
    assert_eq!(c.call("POST", &url("/process"), &body).status, 200);
    for (source, name) in [
        (files("missing.jpg"), "missing"),
        (files("corrupt.jpg"), "corrupt"),
        (files("huge.png"), "huge"),
        (files("big.png"), "big"),
        (
            "data:application/pdf;base64,JVBERi0xLjQK".to_string(),
            "pdf",
        ),
    ] {
        let body = json!({"source": source, "renditions": [{"name": name, "fmt": "png", "width": 100, "target": put(name)}]});
        assert_eq!(c.call("POST", &url("/process"), &body).status, 200);
    }
    // Text from a text source, with the request id the caller chose.
    let text = json!({"source": {"url": files("page.html"), "mimetype": "text/html"},
                      "renditions": [{"name": "page.txt", "fmt": "text", "target": put("page.txt")}]});
    let auth = format!("Bearer {}", c.token);
    let h = [
        ("authorization", auth.as_str()),
        ("x-api-key", "key-main"),
        ("x-gw-ims-org-id", ORG),
        ("x-request-id", "my-request-1"),
    ];
    let r = send("POST", &url("/process"), &h, text.to_string().as_bytes());
    assert_eq!(
        (r.status, r.header("x-request-id")),
        (200, Some("my-request-1"))
    );
    assert_eq!(r.json()["requestId"], "my-request-1");
    // A body declared as something else than JSON: 415, nothing accepted.
    for ct in ["application/x-www-form-urlencoded", "text/plain"] {
        let mut typed = h.to_vec();
        typed.push(("content-type", ct));
        let r = send(
            "POST",
            &url("/process"),
            &typed,
            text.to_string().as_bytes(),
        );
        assert_eq!(
            (r.status, r.json()["ok"].as_bool()),
            (415, Some(false)),
            "{ct}"
        );
        openapi::check_reply("POST", "/process", &r);
    }
    // A body over compute_max_request_bytes: 413, in the same shape.
    let head = format!(
        "POST /process HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\nx-api-key: key-main\r\nx-gw-ims-org-id: {ORG}\r\nx-request-id: my-request-2\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        17 << 20
    );
    let (status, head) = common::raw_request(&app.host, head.as_bytes(), &vec![b' '; 17 << 20]);
    assert_eq!(status, 413, "{head}");
    openapi::check_raw("POST", "/process", status, &head, None);
    assert!(
        head.to_ascii_lowercase()
            .contains("x-request-id: my-request-2"),
        "{head}"
    );
    let ev = by_name(&events(c, &journal, 25));
    let e = created(&ev, "page.txt");
    assert_eq!(
        (
            e["requestId"].as_str(),
            e["metadata"]["repo:encoding"].as_str()
        ),
        (Some("my-request-1"), Some("utf-8"))
    );
    let page = state
        .lock()
        .unwrap()
        .puts
        .iter()
        .find(|p| p.0 == "page.txt")
        .unwrap()
        .2
        .clone();
    assert_eq!(String::from_utf8(page).unwrap(), "Heading\nSome & more");
    created(&ev, "bundle.zip");
    let zip_bytes = state
        .lock()
        .unwrap()
        .puts
        .iter()
        .find(|p| p.0 == "bundle.zip")
        .unwrap()
        .2
        .clone();
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let mut s = String::new();
    z.by_name("dir/b.txt")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "bravo");
    let mut s = String::new();
    z.by_name("a.txt").unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "alpha");
    failed(&ev, "dup.zip", "GenericError");
    created(&ev, "dup-ok.zip");
    failed(&ev, "missing", "GenericError");
    failed(&ev, "corrupt", "SourceCorrupt");
    failed(&ev, "huge", "SourceUnsupported");
    failed(&ev, "big", "ServiceOverLoad");
    failed(&ev, "pdf", "SourceFormatUnsupported");
    // No presigned URL's signature leaks into events or logs.
    assert!(
        app.host.logs().contains("broken/x?REDACTED"),
        "the failure is logged, redacted"
    );
    assert!(!app.host.logs().contains("SECRET"));
    assert!(!ev.values().any(|e| e.to_string().contains("SECRET")));

    // 429 with Retry-After and an empty body, for a client over its limit.
    let s = &app.slow;
    let sj = s.call("POST", &url("/register"), &Value::Null).json()["journal"]
        .as_str()
        .unwrap()
        .to_string();
    let slow_body = json!({"source": files("slow-photo.jpg"), "renditions": [{"fmt": "png", "target": put("slow.png")}]});
    let first = s.call("POST", &url("/process"), &slow_body);
    assert_eq!(first.status, 200, "{}", first.text());
    // Its source takes 1.5 s to arrive: meanwhile the client is at its limit.
    let busy = s.call("POST", &url("/process"), &slow_body);
    assert_eq!(busy.status, 429, "{}", busy.text());
    assert_eq!(busy.header("retry-after"), Some("2"));
    assert!(busy.body.is_empty());
    events(s, &sj, 1);
    let r = s.call("POST", &url("/process"), &slow_body);
    assert_eq!(r.status, 200, "the slot is free once the job is done");
    events(s, &sj, 2);

    // Journal paging: limit, since, latest, 204 + Retry-After.
    let r = c.call("GET", &format!("{journal}?since=0&limit=10"), &Value::Null);
    let page = r.json();
    assert_eq!(page["_page"]["count"], 10);
    assert_eq!(page["_page"]["last"], "10");
    let positions: Vec<String> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        positions,
        (1..=10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    assert!(
        r.header("link")
            .unwrap()
            .contains("?since=10&limit=10>; rel=\"next\"")
    );
    let r = c.call("GET", &format!("{journal}?since=25"), &Value::Null);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert!(r.header("link").unwrap().contains("?since=25>"));
    // `latest=true`: from the end, less the events of the last seconds;
    // its link is the end either way.
    let r = c.call("GET", &format!("{journal}?latest=true"), &Value::Null);
    assert!(r.header("link").unwrap().contains("?since=25>"));
    if r.status == 200 {
        let p = r.json();
        assert_eq!(p["_page"]["last"], "25");
        let first: u64 = p["events"][0]["position"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(p["_page"]["count"].as_u64(), Some(26 - first));
    } else {
        assert_eq!(r.status, 204);
    }
    assert_eq!(
        c.call("GET", &format!("{journal}?since=abc"), &Value::Null)
            .status,
        400
    );
    // Another client cannot read this journal.
    assert_eq!(s.call("GET", &journal, &Value::Null).status, 404);

    // The journal is durable: same events after a restart.
    let old_token = c.token.clone();
    let App { host, .. } = app;
    host.stop();
    let app = start(&dir, state.clone(), port, listen);
    let old = Client {
        token: old_token,
        api_key: "key-main".into(),
    };
    let r = old.call(
        "GET",
        &format!("{journal}?since=0&limit=1000"),
        &Value::Null,
    );
    assert_eq!(
        r.status, 401,
        "tokens are per start here (new compute_clients)"
    );
    let c = &app.main;
    let reg = c.call("POST", &app.host.url("/register"), &Value::Null);
    assert_eq!(
        reg.json()["journal"],
        journal.as_str(),
        "the registration survived the restart"
    );
    let r = c.call(
        "GET",
        &format!("{journal}?since=0&limit=1000"),
        &Value::Null,
    );
    assert_eq!(r.json()["_page"]["count"], 25);

    // Unregister: the journal is gone, /process is 404 again.
    assert_eq!(
        c.call("POST", &app.host.url("/unregister"), &Value::Null)
            .status,
        200
    );
    assert_eq!(
        c.call("POST", &app.host.url("/unregister"), &Value::Null)
            .status,
        404
    );
    assert_eq!(c.call("GET", &journal, &Value::Null).status, 404);
    assert_eq!(
        c.call("POST", &app.host.url("/process"), &simple).status,
        404
    );
    let _ = app.port;
    let _ = app.bucket;
}

/// The `rel="next"` URL of a journal answer.
fn next_link(r: &Reply) -> String {
    let link = r.header("link").expect("every journal answer has a Link");
    assert!(link.ends_with("rel=\"next\""), "{link}");
    link.trim_start_matches('<')
        .split(">;")
        .next()
        .unwrap()
        .to_string()
}

/// One journal consumer: follows its links from `start` until it holds the
/// event at position `last`; answers (position, event) in the order
/// received.
fn consume(c: &Client, start: String, last: u64) -> Vec<(u64, Value)> {
    let mut out: Vec<(u64, Value)> = Vec::new();
    let mut next = start;
    let done = wait_for(90, || {
        loop {
            let r = c.call("GET", &next, &Value::Null);
            next = next_link(&r);
            match r.status {
                200 => out.extend(r.json()["events"].as_array().unwrap().iter().map(|e| {
                    (
                        e["position"].as_str().unwrap().parse().unwrap(),
                        e["event"].clone(),
                    )
                })),
                204 => return None,
                s => panic!("journal answered {s}: {}", r.text()),
            }
            if out.last().is_some_and(|(p, _)| *p >= last) {
                return Some(());
            }
        }
    });
    assert!(done.is_some(), "{} events, not up to {last}", out.len());
    out
}

/// Credentials are judged from the headers: a caller without valid ones
/// gets its 401 (or 403) at once, whatever body it announces, before
/// sending a byte of it, and a flood of large unauthenticated bodies does
/// not grow the server's memory.
#[test]
fn unauthenticated_bodies_are_refused_unread() {
    let state = Arc::new(Mutex::new(Bucket::default()));
    let port = bucket(state.clone());
    let dir = temp_dir("compute-auth-first");
    let app = start(&dir, state, port, common::free_port());
    let t = &app.main.token;
    let cases: Vec<(&str, String, u16)> = vec![
        ("/process", String::new(), 401),
        (
            "/process",
            format!(
                "authorization: Bearer forged\r\nx-api-key: key-main\r\nx-gw-ims-org-id: {ORG}\r\n"
            ),
            401,
        ),
        (
            "/process",
            format!("authorization: Bearer {t}\r\nx-gw-ims-org-id: {ORG}\r\n"),
            401,
        ),
        (
            "/process",
            format!(
                "authorization: Bearer {t}\r\nx-api-key: key-slow\r\nx-gw-ims-org-id: {ORG}\r\n"
            ),
            401,
        ),
        (
            "/process",
            format!(
                "authorization: Bearer {t}\r\nx-api-key: key-main\r\nx-gw-ims-org-id: X@AdobeOrg\r\n"
            ),
            403,
        ),
        ("/register", String::new(), 401),
        (
            "/unregister",
            format!(
                "authorization: Bearer {t}\r\nx-api-key: key-slow\r\nx-gw-ims-org-id: {ORG}\r\n"
            ),
            401,
        ),
    ];
    let framings = [
        format!("content-length: {}\r\n", 15 << 20),
        "transfer-encoding: chunked\r\n".to_string(),
    ];
    for (path, creds, want) in &cases {
        for framing in &framings {
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-request-id: early-1\r\n{creds}{framing}\r\n"
            );
            let began = std::time::Instant::now();
            // The head only: the answer cannot wait for a body never sent.
            let (status, head, body) = common::raw_exchange(&app.host, head.as_bytes(), b"");
            let took = began.elapsed();
            assert_eq!(status, *want, "{path} {creds:?} {framing:?}: {head}");
            openapi::check_raw("POST", path, status, &head, Some(body.as_bytes()));
            assert!(took < std::time::Duration::from_secs(2), "{path}: {took:?}");
            assert!(
                head.to_ascii_lowercase().contains("x-request-id: early-1"),
                "{head}"
            );
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (v["ok"].as_bool(), v["requestId"].as_str()),
                (Some(false), Some("early-1"))
            );
            assert!(!v["message"].as_str().unwrap().is_empty());
        }
    }

    // 12 parallel unauthenticated 33 MB bodies, sent in full as a careless
    // client would, chunked (no length to refuse them by): all refused,
    // the host's peak memory barely moves.
    let peak = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", app.host.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    let before = peak();
    let mut body = Vec::new();
    for _ in 0..33 {
        body.extend_from_slice(format!("{:x}\r\n", 1 << 20).as_bytes());
        body.extend(std::iter::repeat_n(b' ', 1 << 20));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /process HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| s.spawn(|| common::raw_request(&app.host, head.as_bytes(), &body).0))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 401);
        }
    });
    let grew = peak().saturating_sub(before);
    eprintln!("host peak memory grew by {} KiB", grew >> 10);
    assert!(grew < 100 << 20, "peak memory grew by {} MiB", grew >> 20);
    // Nothing was registered, queued or kept by any of it.
    let keys = common::store_keys(&dir);
    assert!(keys.is_empty(), "refused callers left {keys:?}");
    let r = app
        .main
        .call("GET", &app.host.url("/journal/x"), &Value::Null);
    assert_eq!(r.status, 404);
}

/// Renditions this service cannot make (an unknown `fmt`, a custom
/// `worker`) beside valid ones: the request is accepted, the valid ones are
/// made, each odd one gets `rendition_failed` `RenditionFormatUnsupported`.
/// Meanwhile consumers read the journal concurrently, following their
/// links: two from the start (one through `latest=true` on the empty
/// journal), one with `latest=true` after the first batch; each sees every
/// event after its start exactly once, in journal order.
#[test]
fn concurrent_consumers_and_unsupported_formats() {
    let state = Arc::new(Mutex::new(Bucket::default()));
    state
        .lock()
        .unwrap()
        .files
        .insert("p.jpg".into(), jpeg(64, 48));
    let port = bucket(state.clone());
    let dir = temp_dir("compute-consumers");
    let app = start(&dir, state.clone(), port, common::free_port());
    let c = &app.main;
    let reg = c.call("POST", &app.host.url("/register"), &Value::Null);
    let journal = reg.json()["journal"].as_str().unwrap().to_string();
    let put = |name: &str| format!("http://127.0.0.1:{port}/put/{name}");
    let batch = |b: usize| {
        json!({
            "source": format!("http://127.0.0.1:{port}/files/p.jpg"),
            "renditions": [
                {"name": format!("{b}-odd"), "fmt": "bmp", "userData": {"b": b}},
                {"name": format!("{b}-png"), "fmt": "png", "width": 16, "target": put(&format!("{b}.png"))},
                {"name": format!("{b}-worker"), "worker": "https://worker.example/run?sig=SECRET"},
                {"name": format!("{b}-jpg"), "fmt": "jpeg", "width": 8, "target": put(&format!("{b}.jpg"))}
            ]
        })
    };
    const BATCHES: usize = 5;
    const PER: usize = 4;
    let total = BATCHES * PER;
    // `latest=true` on the empty journal: a 204 whose link is the start.
    let first = c.call("GET", &format!("{journal}?latest=true"), &Value::Null);
    assert_eq!(first.status, 204);
    let a_start = next_link(&first);
    assert!(a_start.ends_with("?since=0"), "{a_start}");
    let total = total as u64;
    let (a, b, late) = std::thread::scope(|s| {
        let a = s.spawn(|| consume(c, a_start, total));
        let b = s.spawn(|| consume(c, format!("{journal}?limit=3"), total));
        let r = c.call("POST", &app.host.url("/process"), &batch(0));
        assert_eq!(r.status, 200, "{}", r.text());
        // The late consumer joins once the first batch is in, before the
        // next is sent: its `latest=true` may bring the first batch's
        // events (they are seconds old), never fewer than what follows.
        let in_first = wait_for(60, || {
            let r = c.call("GET", &format!("{journal}?since={}", PER - 1), &Value::Null);
            (r.status == 200).then_some(())
        });
        assert!(in_first.is_some());
        let r = c.call("GET", &format!("{journal}?latest=true"), &Value::Null);
        let mut late: Vec<(u64, Value)> = match r.status {
            204 => Vec::new(),
            _ => r.json()["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["position"].as_str().unwrap().parse().unwrap(),
                        e["event"].clone(),
                    )
                })
                .collect(),
        };
        let late_start = next_link(&r);
        assert!(
            late_start.ends_with(&format!("since={PER}")),
            "{late_start}"
        );
        let rest = s.spawn(move || consume(c, late_start, total));
        for n in 1..BATCHES {
            let r = c.call("POST", &app.host.url("/process"), &batch(n));
            assert_eq!(r.status, 200, "{}", r.text());
        }
        late.extend(rest.join().unwrap());
        (a.join().unwrap(), b.join().unwrap(), late)
    });
    let late_from = late[0].0 - 1;
    assert!(
        late_from <= PER as u64,
        "the late consumer starts at {late_from}"
    );
    for (who, seen, from) in [("a", &a, 0), ("b", &b, 0), ("late", &late, late_from)] {
        let positions: Vec<u64> = seen.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, (from + 1..=total).collect::<Vec<_>>(), "{who}");
    }
    // The same events, in the same order, for everyone.
    assert_eq!(a, b);
    assert_eq!(&a[late_from as usize..], &late[..]);
    for (_, e) in &a {
        let name = e["rendition"]["name"].as_str().unwrap();
        if name.ends_with("-odd") || name.ends_with("-worker") {
            assert_eq!(
                (e["type"].as_str(), e["errorReason"].as_str()),
                (Some("rendition_failed"), Some("RenditionFormatUnsupported")),
                "{e}"
            );
            assert!(
                e["errorMessage"]
                    .as_str()
                    .unwrap()
                    .contains("not supported")
            );
        } else {
            assert_eq!(e["type"], "rendition_created", "{e}");
        }
        if name.ends_with("-odd") {
            assert_eq!(e["rendition"]["fmt"], "bmp");
            assert_eq!(
                e["userData"]["b"].as_u64(),
                name.split('-').next().unwrap().parse().ok()
            );
        }
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }
    let puts = state.lock().unwrap().puts.len();
    assert_eq!(puts, 2 * BATCHES, "the valid renditions were made");
}

mod sha1_smol_check {
    /// Hex SHA-1, to check `repo:sha1`.
    pub fn digest(bytes: &[u8]) -> String {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(bytes))
    }
}

/// Adobe's published Node client (`@adobe/asset-compute-client`, pinned in
/// tests/node) runs register → process two renditions → wait for both
/// events → unregister against the app, unchanged.
#[test]
fn adobe_node_client_drop_in() {
    let state = Arc::new(Mutex::new(Bucket::default()));
    state
        .lock()
        .unwrap()
        .files
        .insert("src.jpg".into(), jpeg(480, 360));
    let port = bucket(state.clone());
    let (token, entry) = compute_client("node-client", "node-key", ORG, None);
    let dir = temp_dir("compute-node");
    let host = HostConfig::new("spin.toml", &dir)
        .var("compute_clients", &json!([entry]).to_string())
        .var("compute_allowed_http_hosts", &format!("127.0.0.1:{port}"))
        .var("compute_http_host", &format!("http://127.0.0.1:{port}"))
        .start();
    let out = std::process::Command::new("node")
        .arg(common::root().join("tests/node/check.js"))
        .env("AC_URL", &host.base)
        .env("AC_TOKEN", &token)
        .env("AC_ORG", ORG)
        .env("AC_API_KEY", "node-key")
        .env(
            "AC_SOURCE",
            format!("http://127.0.0.1:{port}/files/src.jpg"),
        )
        .env(
            "AC_TARGET_1",
            format!("http://127.0.0.1:{port}/put/one.png"),
        )
        .env(
            "AC_TARGET_2",
            format!("http://127.0.0.1:{port}/put/two.jpg"),
        )
        .output()
        .expect("node runs tests/node/check.js (scripts/setup --for-tests installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Node client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let events = seen["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{seen}");
    for (e, (name, width)) in events.iter().zip([("one.png", 120), ("two.jpg", 60)]) {
        assert_eq!(e["type"], "rendition_created", "{seen}");
        assert_eq!(e["requestId"], seen["requestId"]);
        assert_eq!(
            (e["name"].as_str(), e["width"].as_u64()),
            (Some(name), Some(width))
        );
    }
    assert!(seen["journal"].as_str().unwrap().starts_with(&host.base));
    let puts: Vec<String> = state
        .lock()
        .unwrap()
        .puts
        .iter()
        .map(|p| p.0.clone())
        .collect();
    assert!(
        puts.contains(&"one.png".to_string()) && puts.contains(&"two.jpg".to_string()),
        "{puts:?}"
    );
    // The client unregistered: its journal is gone.
    let r = send(
        "GET",
        seen["journal"].as_str().unwrap(),
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-api-key", "node-key"),
            ("x-ims-org-id", ORG),
        ],
        b"",
    );
    assert_eq!(r.status, 404);
}

/// What Adobe's Node client does: the first poll, with `latest=true`, goes
/// out while `/process` is on its way, and renditions here are reported
/// within milliseconds. However late that poll (up to a second here), the
/// events of that request are in what it reads.
#[test]
fn latest_poll_sent_with_process_misses_nothing() {
    let state = Arc::new(Mutex::new(Bucket::default()));
    state
        .lock()
        .unwrap()
        .files
        .insert("src.jpg".into(), jpeg(480, 360));
    let port = bucket(state.clone());
    let dir = temp_dir("compute-latest");
    let app = start(&dir, state.clone(), port, common::free_port());
    let c = &app.main;
    let reg = c.call("POST", &app.host.url("/register"), &Value::Null);
    let journal = reg.json()["journal"].as_str().unwrap().to_string();
    let mut last = 0u64;
    for (i, delay_ms) in [0u64, 1, 5, 10, 20, 50, 100, 300, 1000]
        .into_iter()
        .enumerate()
    {
        let body = json!({"source": format!("http://127.0.0.1:{port}/files/src.jpg"), "renditions": [
            {"name": format!("a{i}"), "fmt": "png", "width": 120, "target": format!("http://127.0.0.1:{port}/put/a{i}")},
            {"name": format!("b{i}"), "fmt": "jpg", "width": 60, "target": format!("http://127.0.0.1:{port}/put/b{i}")}]});
        let (status, first) = std::thread::scope(|s| {
            let p = s.spawn(|| c.call("POST", &app.host.url("/process"), &body).status);
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            let first = c.call("GET", &format!("{journal}?latest=true"), &Value::Null);
            (p.join().unwrap(), first)
        });
        assert_eq!(status, 200);
        let mut seen: Vec<(u64, Value)> = Vec::new();
        if first.status == 200 {
            for e in first.json()["events"].as_array().unwrap() {
                seen.push((
                    e["position"].as_str().unwrap().parse().unwrap(),
                    e["event"].clone(),
                ));
            }
        }
        if !seen.iter().any(|(p, _)| *p >= last + 2) {
            seen.extend(consume(c, next_link(&first), last + 2));
        }
        let mine: Vec<&str> = seen
            .iter()
            .filter(|(p, _)| *p > last)
            .map(|(_, e)| e["rendition"]["name"].as_str().unwrap())
            .collect();
        let want = [format!("a{i}"), format!("b{i}")];
        assert_eq!(mine, want, "poll {delay_ms} ms after /process");
        last += 2;
    }
}
