//! The whole EpiFiles service driven through `handle` with the in-memory
//! store and a controllable clock (the wasm component is exercised by the
//! end-to-end tests in the repository's `tests/epifiles.rs`).

use assetgate_epifiles::{Body, Config, Request, Response, Service, handle};
use assetgate_store::MemoryKv;
use base64::Engine;
use std::cell::Cell;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn pw_hash(password: &str) -> String {
    assetgate_identity::users::hash_password(password, "salt", 1000)
}

fn md5(b: &[u8]) -> String {
    assetgate_store::hash::md5_hex(b)
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    assetgate_web::query::form_encode(pairs).into_bytes()
}

/// The text of the first `<tag>` in `xml`.
fn tag<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

struct T {
    kv: MemoryKv,
    cfg: Config,
    now: Cell<u64>,
}

/// An answer, and its body in one buffer (a download chunk's is made part
/// by part).
struct R(Response, Vec<u8>);

impl R {
    fn new(mut r: Response) -> R {
        let len = r.body.len();
        let body = std::mem::replace(&mut r.body, Body::Whole(Vec::new())).into_bytes();
        assert_eq!(body.len(), len, "the announced length is the body's");
        R(r, body)
    }
    fn text(&self) -> String {
        String::from_utf8(self.1.clone()).unwrap()
    }
    fn get(&self, t: &str) -> String {
        tag(&self.text(), t)
            .unwrap_or_else(|| panic!("no <{t}> in {}", self.text()))
            .to_string()
    }
    fn ok(self) -> R {
        assert_eq!(self.0.status, 200, "{}", self.text());
        assert_eq!(tag(&self.text(), "status"), Some("success"));
        self
    }
    fn fails(self, status: u16, code: &str) -> R {
        assert_eq!(self.0.status, status, "{}", self.text());
        assert_eq!(
            tag(&self.text(), "status"),
            Some("failed"),
            "{}",
            self.text()
        );
        assert_eq!(tag(&self.text(), "code"), Some(code), "{}", self.text());
        self
    }
}

impl T {
    fn new(extra: &[(&str, &str)]) -> T {
        let users = format!(
            r#"[{{"user":"lab","password":"{}","email":"lab@x.org","repositories":{{"23":"uploader"}}}},
                {{"user":"multi","password":"{}","repositories":{{"23":"uploader","24":"uploader"}}}},
                {{"user":"boss","password":"{}","email":"boss@x.org","repositories":{{"23":"manager"}}}},
                {{"user":"reader","password":"{}","repositories":{{"23":"downloader"}}}},
                {{"user":"other","password":"{}","repositories":{{"24":["uploader","manager"]}}}}]"#,
            pw_hash("lab-pw"),
            pw_hash("multi-pw"),
            pw_hash("boss-pw"),
            pw_hash("reader-pw"),
            pw_hash("other-pw")
        );
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cfg = Config::from_lookup(|n| {
            if n == "epifiles_users" {
                return Some(users.clone());
            }
            if n == "epifiles_admin_token" {
                return Some("admin-secret".into());
            }
            extra.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
        .unwrap();
        T {
            kv: MemoryKv::new(),
            cfg,
            now: Cell::new(1_700_000_000),
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        user: Option<&str>,
        body: Vec<u8>,
        ct: Option<&str>,
    ) -> R {
        let auth = user.map(|u| format!("Basic {}", B64.encode(format!("{u}:{u}-pw"))));
        let svc = Service {
            kv: &self.kv,
            cfg: &self.cfg,
            now: self.now.get(),
            webhook: false,
        };
        R::new(handle(
            &svc,
            Request {
                method,
                path,
                query,
                authorization: auth.as_deref(),
                content_type: ct,
                body,
            },
        ))
    }

    fn post(&self, user: &str, pairs: &[(&str, &str)]) -> R {
        self.call(
            "POST",
            "/epifiles/ws/manifestfile",
            "",
            Some(user),
            form(pairs),
            Some("application/x-www-form-urlencoded"),
        )
    }

    fn put(&self, user: &str, pid: &str, pairs: &[(&str, &str)]) -> R {
        self.call(
            "PUT",
            &format!("/epifiles/ws/manifestfile/{pid}"),
            "",
            Some(user),
            form(pairs),
            Some("application/x-www-form-urlencoded"),
        )
    }

    fn get(&self, user: &str, path: &str, query: &str) -> R {
        self.call("GET", path, query, Some(user), Vec::new(), None)
    }

    /// Uploads `data` in `cs`-byte chunks, in order; the ManifestFile id.
    fn upload(&self, user: &str, name: &str, data: &[u8], cs: usize, extra: &[(&str, &str)]) -> R {
        let chunks: Vec<&[u8]> = data.chunks(cs).collect();
        let total = chunks.len().to_string();
        let (c0, h0) = (B64.encode(chunks[0]), md5(chunks[0]));
        let mut first = vec![
            ("content", c0.as_str()),
            ("hash", h0.as_str()),
            ("filename", name),
            ("total_chunks", total.as_str()),
        ];
        first.extend_from_slice(extra);
        let mut r = self.post(user, &first).ok();
        for (i, c) in chunks.iter().enumerate().skip(1) {
            let pid = r.get("process_id");
            let (b, h, n) = (B64.encode(c), md5(c), i.to_string());
            r = self
                .put(
                    user,
                    &pid,
                    &[("content", &b), ("hash", &h), ("chunk_index", &n)],
                )
                .ok();
        }
        r
    }

    fn download(&self, user: &str, id: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = 0;
        loop {
            let r = self
                .get(
                    user,
                    &format!("/epifiles/ws/manifestfile/{id}"),
                    &format!("chunk_index={n}"),
                )
                .ok();
            let bytes = B64.decode(r.get("content")).unwrap();
            assert_eq!(md5(&bytes), r.get("hash"));
            assert_eq!(r.get("chunk_index"), n.to_string());
            out.extend_from_slice(&bytes);
            n += 1;
            if n.to_string() == r.get("total_chunks") {
                assert_eq!(md5(&out), r.get("file_hash"));
                return out;
            }
        }
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 7 % 251) as u8 ^ (i >> 10) as u8)
        .collect()
}

#[test]
fn single_chunk_upload_creates_file_and_manifest_at_once() {
    let t = T::new(&[]);
    let body = b"<analyses>ok</analyses>";
    let r = t.upload(
        "lab",
        "analyses.xml",
        body,
        1 << 20,
        &[("comment", "Analyses du 15/07/13")],
    );
    let text = r.text();
    assert!(
        tag(&text, "process_id").is_none(),
        "no process id for one chunk: {text}"
    );
    let id = r.get("id");
    assert_eq!(r.get("id_manifest"), "1");
    assert_eq!(r.get("file_hash"), md5(body));
    assert_eq!(r.get("size"), body.len().to_string());
    assert_eq!(r.get("content_type"), "application/xml");
    assert_eq!(
        r.get("purge_date"),
        "2023-12-14",
        "30 days after 2023-11-14"
    );
    assert_eq!(t.download("boss", &id), body);
    let list = t.get("lab", "/epifiles/ws/manifest", "").ok();
    assert_eq!(list.get("comment"), "Analyses du 15/07/13");
    assert_eq!(list.get("creation_date"), "2023-11-14 22:13:20");
    assert_eq!(list.get("manifest_files"), format!("<id>{id}</id>"));
    // The file is an asset of the shared store.
    let cat = assetgate_catalog::Catalog::new(
        &t.kv,
        assetgate_store::Blobs::new(&t.kv, Default::default()),
    );
    let file_id = tag(tag(&text, "file").unwrap(), "id").unwrap();
    let asset = cat.get(file_id, t.now.get()).unwrap();
    assert_eq!(asset.md5, md5(body));
    assert_eq!(asset.original_name, "analyses.xml");
}

/// `total_chunks` of a file is what downloads serve, in the completion
/// answer as in every listing, whatever chunks the file was uploaded in.
#[test]
fn total_chunks_is_the_download_count_in_every_answer() {
    let t = T::new(&[("epifiles_download_chunk_size", "1024")]);
    let body = data(3000);
    for upload_chunk in [3000, 1000] {
        let done = t.upload("lab", "f.bin", &body, upload_chunk, &[]);
        assert_eq!(done.get("total_chunks"), "3", "upload in {upload_chunk}");
        let id = done.get("id");
        let shown = t
            .get("lab", &format!("/epifiles/ws/manifestfile/{id}"), "")
            .ok();
        assert_eq!(shown.get("total_chunks"), "3");
        assert_eq!(t.download("boss", &id), body);
    }
}

#[test]
fn chunks_out_of_order_repeated_and_bad_leave_the_upload_resumable() {
    out_of_order_scenario(&[("epifiles_download_chunk_size", "1500")]);
}

/// The same with a store chunk size (1 KiB) that divides the upload chunks
/// (4 KiB): each upload chunk is stored as four pieces, and every rule
/// holds the same.
#[test]
fn upload_chunks_stored_in_store_sized_pieces() {
    let t = out_of_order_scenario(&[
        ("epifiles_download_chunk_size", "1500"),
        ("blob_chunk_size", "1024"),
    ]);
    use assetgate_store::Kv;
    let metas: Vec<String> =
        t.kv.keys()
            .into_iter()
            .filter(|k| k.starts_with("blob/") && k.ends_with("/meta"))
            .collect();
    assert_eq!(metas.len(), 1, "{metas:?}");
    let blob = metas[0].trim_end_matches("/meta");
    let stored: Vec<usize> = (0..12)
        .map_while(|n| t.kv.get(&format!("{blob}/c/{n}")).unwrap().map(|v| v.len()))
        .collect();
    // 10 000 bytes: nine 1 KiB pieces and a short tenth.
    assert_eq!(
        stored,
        [1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 784]
    );
}

fn out_of_order_scenario(extra: &[(&str, &str)]) -> T {
    let t = T::new(extra);
    let content = data(10_000);
    let chunks: Vec<&[u8]> = content.chunks(4096).collect(); // 3 chunks, last short
    let c = |i: usize| B64.encode(chunks[i]);
    let h = |i: usize| md5(chunks[i]);
    let r = t
        .post(
            "lab",
            &[
                ("content", &c(0)),
                ("hash", &h(0)),
                ("filename", "big.bin"),
                ("total_chunks", "3"),
                ("file_hash", &md5(&content)),
            ],
        )
        .ok();
    let pid = r.get("process_id");
    assert_eq!(
        (r.get("received_chunks"), r.get("next_chunk_index")),
        ("1".into(), "1".into())
    );
    // Wrong MD5, truncated base64, out of range, wrong size: refused, nothing stored.
    t.put(
        "lab",
        &pid,
        &[("content", &c(2)), ("hash", &h(1)), ("chunk_index", "2")],
    )
    .fails(400, "chunk_hash_mismatch");
    let truncated = &c(2)[..c(2).len() - 3];
    t.put(
        "lab",
        &pid,
        &[
            ("content", truncated),
            ("hash", &h(2)),
            ("chunk_index", "2"),
        ],
    )
    .fails(400, "bad_base64");
    t.put(
        "lab",
        &pid,
        &[("content", &c(2)), ("hash", &h(2)), ("chunk_index", "3")],
    )
    .fails(400, "chunk_index_out_of_range");
    t.put(
        "lab",
        &pid,
        &[("content", &c(2)), ("hash", &h(2)), ("chunk_index", "1")],
    )
    .fails(400, "chunk_size_mismatch");
    t.put("lab", &pid, &[("content", &c(2)), ("hash", &h(2))])
        .fails(400, "chunk_size_mismatch");
    t.put(
        "lab",
        &pid,
        &[("content", ""), ("hash", &md5(b"")), ("chunk_index", "2")],
    )
    .fails(400, "empty_chunk");
    // Out of order, then the same chunk again: accepted, nothing changes.
    let r = t
        .put(
            "lab",
            &pid,
            &[("content", &c(2)), ("hash", &h(2)), ("chunk_index", "2")],
        )
        .ok();
    assert_eq!(
        (
            r.get("process_id"),
            r.get("received_chunks"),
            r.get("next_chunk_index")
        ),
        (pid.clone(), "2".into(), "1".into())
    );
    t.put(
        "lab",
        &pid,
        &[("content", &c(2)), ("hash", &h(2)), ("chunk_index", "2")],
    )
    .ok();
    // Different content where a chunk already is: refused.
    t.put(
        "lab",
        &pid,
        &[("content", &c(0)), ("hash", &h(0)), ("chunk_index", "0")],
    )
    .ok(); // same → fine
    let other = B64.encode(vec![9u8; 4096]);
    t.put(
        "lab",
        &pid,
        &[
            ("content", &other),
            ("hash", &md5(&[9u8; 4096])),
            ("chunk_index", "0"),
        ],
    )
    .fails(409, "chunk_conflict");
    // Another user cannot touch the process.
    t.put(
        "multi",
        &pid,
        &[("content", &c(1)), ("hash", &h(1)), ("chunk_index", "1")],
    )
    .fails(403, "forbidden");
    // The missing chunk completes the file.
    let r = t
        .put(
            "lab",
            &pid,
            &[("content", &c(1)), ("hash", &h(1)), ("chunk_index", "1")],
        )
        .ok();
    let id = r.get("id");
    assert_eq!(r.get("file_hash"), md5(&content));
    // A resend of the last chunk after completion answers the same file;
    // anything else is refused.
    assert_eq!(
        t.put(
            "lab",
            &pid,
            &[("content", &c(1)), ("hash", &h(1)), ("chunk_index", "1")]
        )
        .ok()
        .get("id"),
        id
    );
    t.put(
        "lab",
        &pid,
        &[("content", &c(1)), ("hash", &h(1)), ("chunk_index", "2")],
    )
    .fails(409, "upload_complete");
    t.put("lab", &pid, &[("content", &c(1)), ("hash", &h(1))])
        .fails(409, "upload_complete");
    // Download chunks (1500 bytes) differ from upload chunks (4096).
    let got = t.download("reader", &id);
    assert_eq!(got, content);
    t.get(
        "reader",
        &format!("/epifiles/ws/manifestfile/{id}"),
        "chunk_index=7",
    )
    .fails(400, "chunk_index_out_of_range");
    // `GET manifestfile?id=` works too.
    assert_eq!(
        t.get(
            "reader",
            "/epifiles/ws/manifestfile",
            &format!("id={id}&chunk_index=6")
        )
        .ok()
        .get("chunk_index"),
        "6"
    );
    t
}

#[test]
fn sequential_chunks_without_index_and_resends() {
    let t = T::new(&[]);
    let content = data(3000);
    let chunks: Vec<&[u8]> = content.chunks(1024).collect();
    let r = t
        .post(
            "lab",
            &[
                ("content", &B64.encode(chunks[0])),
                ("hash", &md5(chunks[0])),
                ("filename", "s.bin"),
                ("total_chunks", "3"),
            ],
        )
        .ok();
    let pid = r.get("process_id");
    let send = |i: usize| {
        t.put(
            "lab",
            &pid,
            &[
                ("content", &B64.encode(chunks[i])),
                ("hash", &md5(chunks[i])),
            ],
        )
    };
    assert_eq!(send(1).ok().get("chunk_index"), "1");
    assert_eq!(
        send(1).ok().get("received_chunks"),
        "2",
        "a resend is not a new chunk"
    );
    let r = send(2).ok();
    assert_eq!(t.download("boss", &r.get("id")), content);
}

#[test]
fn file_hash_mismatch_discards_the_upload() {
    let t = T::new(&[]);
    let content = data(2048);
    let (a, b) = content.split_at(1024);
    let r = t
        .post(
            "lab",
            &[
                ("content", &B64.encode(a)),
                ("hash", &md5(a)),
                ("filename", "x"),
                ("total_chunks", "2"),
                ("file_hash", &md5(b"not it")),
            ],
        )
        .ok();
    let pid = r.get("process_id");
    t.put(
        "lab",
        &pid,
        &[
            ("content", &B64.encode(b)),
            ("hash", &md5(b)),
            ("chunk_index", "1"),
        ],
    )
    .fails(400, "file_hash_mismatch");
    t.put(
        "lab",
        &pid,
        &[
            ("content", &B64.encode(b)),
            ("hash", &md5(b)),
            ("chunk_index", "1"),
        ],
    )
    .fails(409, "upload_failed");
    assert!(
        !t.kv.keys().iter().any(|k| k.starts_with("blob/")),
        "{:?}",
        t.kv.keys()
    );
    assert!(
        t.get("lab", "/epifiles/ws/manifest", "")
            .ok()
            .text()
            .contains("<response></response>")
    );
}

/// A client that hashes the file while its chunks travel sends
/// `file_hash` with a later chunk: it is checked at completion all the
/// same, and the first one given holds.
#[test]
fn file_hash_sent_with_a_later_chunk_is_checked() {
    let t = T::new(&[]);
    let content = data(3072);
    let parts: Vec<&[u8]> = content.chunks(1024).collect();
    for (file_hash, outcome) in [(md5(b"not it"), 400), (md5(&content), 200)] {
        let r = t
            .post(
                "lab",
                &[
                    ("content", &B64.encode(parts[0])),
                    ("hash", &md5(parts[0])),
                    ("filename", "x"),
                    ("total_chunks", "3"),
                ],
            )
            .ok();
        let pid = r.get("process_id");
        let put = |i: usize, extra: &[(&str, &str)]| {
            let (content, hash, index) = (B64.encode(parts[i]), md5(parts[i]), i.to_string());
            let mut pairs = vec![
                ("content", content.as_str()),
                ("hash", hash.as_str()),
                ("chunk_index", index.as_str()),
            ];
            pairs.extend_from_slice(extra);
            t.put("lab", &pid, &pairs)
        };
        put(2, &[("file_hash", &file_hash)]).ok();
        put(2, &[("file_hash", &md5(b"another"))]).fails(400, "file_hash_mismatch");
        let last = put(1, &[]);
        if outcome == 200 {
            let r = last.ok();
            assert_eq!(r.get("file_hash"), md5(&content));
            assert_eq!(t.download("lab", &r.get("id")), content);
        } else {
            last.fails(400, "file_hash_mismatch");
        }
    }
}

#[test]
fn credentials_roles_and_repositories() {
    let t = T::new(&[]);
    let one = B64.encode(b"x");
    let h = md5(b"x");
    let base = [
        ("content", one.as_str()),
        ("hash", h.as_str()),
        ("filename", "x.txt"),
        ("total_chunks", "1"),
    ];
    let r = t
        .call("GET", "/epifiles/ws/manifest", "", None, vec![], None)
        .fails(401, "unauthorized");
    assert!(r.0.header("www-authenticate").unwrap().starts_with("Basic"));
    let bad = format!("Basic {}", B64.encode("lab:wrong"));
    let svc = Service {
        kv: &t.kv,
        cfg: &t.cfg,
        now: t.now.get(),
        webhook: false,
    };
    let r = handle(
        &svc,
        Request {
            method: "GET",
            path: "/epifiles/ws/manifest",
            query: "",
            authorization: Some(&bad),
            content_type: None,
            body: vec![],
        },
    );
    assert_eq!(r.status, 401);
    t.post("multi", &base).fails(400, "ambiguous_repository");
    let mut with_repo = base.to_vec();
    with_repo.push(("id_repository", "24"));
    let r = t.post("multi", &with_repo).ok();
    let mf = r.get("id");
    t.post("lab", &with_repo).fails(403, "forbidden");
    t.post("boss", &base).fails(403, "forbidden"); // managers do not deposit
    // Visibility: the uploader and the repository's managers/downloaders.
    let mine = t.upload("lab", "mine.txt", b"mine", 100, &[]).get("id");
    assert!(
        t.get("boss", "/epifiles/ws/manifest", "")
            .ok()
            .text()
            .contains("<comment></comment>")
    );
    assert!(
        !t.get("other", "/epifiles/ws/manifest", "")
            .ok()
            .text()
            .contains(&format!("<id>{mine}</id>"))
    );
    t.get("other", &format!("/epifiles/ws/manifestfile/{mine}"), "")
        .fails(403, "forbidden");
    t.get("lab", &format!("/epifiles/ws/manifestfile/{mf}"), "")
        .fails(403, "forbidden");
    t.get("lab", "/epifiles/ws/manifestfile/999", "")
        .fails(404, "not_found");
    t.get("lab", "/epifiles/ws/manifest/abc", "")
        .fails(404, "not_found");
    t.put("lab", "nope", &[("content", &one), ("hash", &h)])
        .fails(404, "unknown_process");
}

#[test]
fn manager_downloads_complete_the_manifest_and_archive_notifies() {
    let t = T::new(&[]);
    let first = t.upload(
        "lab",
        "a.txt",
        b"first file",
        4,
        &[("comment", "two files")],
    );
    let manifest = first.get("id_manifest");
    let second = t.upload(
        "lab",
        "b.txt",
        b"second",
        100,
        &[("id_manifest", &manifest)],
    );
    assert_eq!(second.get("id_manifest"), manifest);
    let show = |u: &str| {
        t.get(u, &format!("/epifiles/ws/manifest/{manifest}"), "")
            .ok()
    };
    assert_eq!(show("lab").get("manifest_status"), "1");
    // A downloader's download does not count; a manager's does, per file.
    t.download("reader", &first.get("id"));
    assert_eq!(show("lab").get("manifest_status"), "1");
    t.download("boss", &first.get("id"));
    let r = t
        .get(
            "boss",
            &format!("/epifiles/ws/manifestfile/{}", first.get("id")),
            "",
        )
        .ok();
    assert_eq!(r.get("downloaded_by_mg"), "1");
    assert_eq!(show("lab").get("manifest_status"), "1");
    t.download("boss", &second.get("id"));
    assert_eq!(show("lab").get("manifest_status"), "2");
    // The list of files of the manifest.
    let files = t
        .get(
            "boss",
            "/epifiles/ws/manifestfile",
            &format!("id_manifest={manifest}"),
        )
        .ok()
        .text();
    assert_eq!(files.matches("<manifest_file>").count(), 2);
    assert!(!files.contains("<content>"));
    // Archive: only the owner or a manager; a message over 74 characters.
    let msg = "Fichiers bien reçus et traités. Merci pour l'envoi — l'équipe du laboratoire central vous remercie.";
    let b64 = B64.encode(msg);
    let archive = |u: &str, pairs: &[(&str, &str)]| {
        t.call(
            "PUT",
            &format!("/epifiles/ws/manifest/{manifest}"),
            "",
            Some(u),
            form(pairs),
            Some("application/x-www-form-urlencoded"),
        )
    };
    archive("reader", &[("archived", "1")]).fails(403, "forbidden");
    archive("boss", &[("archived", "0")]).fails(400, "invalid_parameter");
    archive(
        "boss",
        &[
            ("archived", "1"),
            ("notify", "1"),
            ("notify_message", "%%%"),
        ],
    )
    .fails(400, "bad_base64");
    let r = archive(
        "boss",
        &[("archived", "1"), ("notify", "1"), ("notify_message", &b64)],
    )
    .ok();
    assert!(
        r.text()
            .contains("<response></response><status>success</status>")
    );
    archive("boss", &[("archived", "1"), ("notify", "1")]).ok(); // again: no second notification
    assert!(
        !t.get("lab", "/epifiles/ws/manifest", "")
            .ok()
            .text()
            .contains("<manifest>")
    );
    assert_eq!(show("lab").get("archived"), "1", "details still answer");
    // The outbox: two deposits and one archive, in order.
    let svc = Service {
        kv: &t.kv,
        cfg: &t.cfg,
        now: t.now.get(),
        webhook: false,
    };
    let r = handle(
        &svc,
        Request {
            method: "GET",
            path: "/epifiles/admin/outbox",
            query: "",
            authorization: Some("Bearer admin-secret"),
            content_type: None,
            body: vec![],
        },
    );
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body.into_bytes()).unwrap();
    let n = v["notifications"].as_array().unwrap();
    assert_eq!(
        n.iter()
            .map(|n| n["event"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["deposit", "deposit", "archive"]
    );
    let archive_note = &n[2];
    assert_eq!(
        archive_note["subject"].as_str().unwrap(),
        msg.chars().take(74).collect::<String>()
    );
    assert_eq!(archive_note["message"], msg);
    let to: Vec<&str> = archive_note["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["lab", "boss"]);
    let deposit_to: Vec<&str> = n[0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"].as_str().unwrap())
        .collect();
    assert_eq!(deposit_to, ["lab", "boss", "reader"]);
    assert_eq!(n[0]["recipients"][1]["email"], "boss@x.org");
    let r = handle(
        &svc,
        Request {
            method: "GET",
            path: "/epifiles/admin/outbox",
            query: "",
            authorization: Some("Bearer wrong"),
            content_type: None,
            body: vec![],
        },
    );
    assert_eq!(r.status, 401);
}

#[test]
fn idle_uploads_expire_and_purged_files_are_gone() {
    let t = T::new(&[
        ("upload_reclaim_after_secs", "600"),
        ("epifiles_retention_days", "2"),
    ]);
    let content = data(2048);
    let (a, b) = content.split_at(1024);
    let pid = t
        .post(
            "lab",
            &[
                ("content", &B64.encode(a)),
                ("hash", &md5(a)),
                ("filename", "x"),
                ("total_chunks", "2"),
            ],
        )
        .ok()
        .get("process_id");
    t.now.set(t.now.get() + 601);
    t.put(
        "lab",
        &pid,
        &[
            ("content", &B64.encode(b)),
            ("hash", &md5(b)),
            ("chunk_index", "1"),
        ],
    )
    .fails(404, "upload_expired");
    assert!(
        !t.kv.keys().iter().any(|k| k.starts_with("blob/")),
        "chunks reclaimed: {:?}",
        t.kv.keys()
    );
    // An abandoned one is found by the sweep.
    let pid2 = t
        .post(
            "lab",
            &[
                ("content", &B64.encode(a)),
                ("hash", &md5(a)),
                ("filename", "y"),
                ("total_chunks", "2"),
            ],
        )
        .ok()
        .get("process_id");
    t.now.set(t.now.get() + 601);
    let svc = Service {
        kv: &t.kv,
        cfg: &t.cfg,
        now: t.now.get(),
        webhook: false,
    };
    assert_eq!(svc.sweep().unwrap(), 1);
    t.put(
        "lab",
        &pid2,
        &[("content", &B64.encode(b)), ("hash", &md5(b))],
    )
    .fails(404, "unknown_process");
    // Purge date.
    let id = t.upload("lab", "p.txt", b"purge me", 100, &[]).get("id");
    t.now.set(t.now.get() + 2 * 86_400);
    t.get("boss", &format!("/epifiles/ws/manifestfile/{id}"), "")
        .fails(404, "purged");
    assert!(
        !t.kv.keys().iter().any(|k| k.starts_with("blob/")),
        "bytes reclaimed: {:?}",
        t.kv.keys()
    );
}

#[test]
fn limits_methods_and_raw_chunks() {
    let t = T::new(&[
        ("epifiles_max_chunk_size", "2048"),
        ("epifiles_max_file_size", "5000"),
    ]);
    let big = B64.encode(vec![1u8; 2049]);
    t.post(
        "lab",
        &[
            ("content", &big),
            ("hash", &md5(&[1u8; 2049])),
            ("filename", "x"),
            ("total_chunks", "1"),
        ],
    )
    .fails(413, "chunk_too_large");
    let c = B64.encode(vec![1u8; 2048]);
    t.post(
        "lab",
        &[
            ("content", &c),
            ("hash", &md5(&[1u8; 2048])),
            ("filename", "x"),
            ("total_chunks", "4"),
        ],
    )
    .fails(413, "file_too_large");
    t.post(
        "lab",
        &[
            ("content", ""),
            ("hash", &md5(b"")),
            ("filename", "x"),
            ("total_chunks", "1"),
        ],
    )
    .fails(400, "empty_chunk");
    t.post(
        "lab",
        &[
            ("content", &c),
            ("hash", &md5(&[1u8; 2048])),
            ("filename", "x"),
        ],
    )
    .fails(400, "missing_parameter");
    t.post(
        "lab",
        &[
            ("content", &c),
            ("hash", "zz"),
            ("filename", "x"),
            ("total_chunks", "1"),
        ],
    )
    .fails(400, "invalid_parameter");
    let r = t
        .call(
            "DELETE",
            "/epifiles/ws/manifest/1",
            "",
            Some("lab"),
            vec![],
            None,
        )
        .fails(405, "method_not_allowed");
    assert_eq!(r.0.header("allow"), Some("GET, PUT"));
    t.call("GET", "/epifiles/ws/other", "", Some("lab"), vec![], None)
        .fails(404, "not_found");
    t.call(
        "POST",
        "/epifiles/ws/manifestfile",
        "",
        Some("lab"),
        b"{}".to_vec(),
        Some("application/json"),
    )
    .fails(415, "unsupported_media_type");
    // Raw chunks: the body is the chunk, parameters in the query string.
    let content = data(3000);
    let (a, b) = content.split_at(2048);
    let q = format!("hash={}&filename=raw.bin&total_chunks=2", md5(a));
    let pid = t
        .call(
            "POST",
            "/epifiles/ws/manifestfile",
            &q,
            Some("lab"),
            a.to_vec(),
            Some("application/octet-stream"),
        )
        .ok()
        .get("process_id");
    let q = format!("hash={}&chunk_index=1", md5(b));
    let id = t
        .call(
            "PUT",
            &format!("/epifiles/ws/manifestfile/{pid}"),
            &q,
            Some("lab"),
            b.to_vec(),
            Some("application/octet-stream"),
        )
        .ok()
        .get("id");
    assert_eq!(t.download("lab", &id), content);
}

/// Malformed percent-encoding in the path, the query string and the form
/// body: 400 `invalid_encoding` with a message, nothing stored; in
/// credentials: 401.
#[test]
fn malformed_encoding_is_400_everywhere_and_401_in_credentials() {
    let t = T::new(&[]);
    let hostile: [&[u8]; 9] = [
        "%C3é".as_bytes(),
        b"%",
        b"%G1",
        b"%C",
        b"%C0%AF",
        b"%FF",
        b"%00",
        b"%ED%A0%80",
        b"a%C3%28",
    ];
    let form = Some("application/x-www-form-urlencoded");
    let good = |name: &str| {
        assetgate_web::query::form_encode(&[
            ("content", &B64.encode(b"hi")),
            ("hash", &md5(b"hi")),
            ("filename", name),
            ("total_chunks", "1"),
        ])
    };
    for h in hostile {
        let bad = |r: R| {
            let r = r.fails(400, "invalid_encoding");
            let message = r.get("message");
            assert!(message.starts_with("malformed "), "{message}");
            assert!(!message.contains("Resource") && !message.contains('{'));
        };
        // Path segments (the host hands over text, so only text here).
        if let Ok(s) = std::str::from_utf8(h) {
            bad(t.get("lab", &format!("/epifiles/ws/manifest/{s}"), ""));
            bad(t.get("lab", &format!("/epifiles/ws/manifestfile/1{s}"), ""));
            bad(t.get(
                "lab",
                "/epifiles/ws/manifestfile",
                &format!("id_manifest={s}"),
            ));
            bad(t.get("lab", "/epifiles/ws/manifestfile", &format!("{s}=1")));
            bad(t.call(
                "POST",
                "/epifiles/ws/manifestfile",
                &format!("comment={s}"),
                Some("lab"),
                good("a.txt").into_bytes(),
                form,
            ));
        }
        // Form bodies: in a value, in a name, next to good fields.
        for body in [
            [good("a.txt").as_bytes(), b"&comment=", h].concat(),
            [b"filename=".as_slice(), h, b"&", good("").as_bytes()].concat(),
            [h, b"=1&", good("a.txt").as_bytes()].concat(),
        ] {
            bad(t.call(
                "POST",
                "/epifiles/ws/manifestfile",
                "",
                Some("lab"),
                body.clone(),
                form,
            ));
            bad(t.call(
                "PUT",
                "/epifiles/ws/manifest/1",
                "",
                Some("lab"),
                body,
                form,
            ));
        }
        // Credentials: wrong, whatever the bytes.
        for raw in [
            [b"lab:".as_slice(), h].concat(),
            [h, b":lab-pw".as_slice()].concat(),
        ] {
            let svc = Service {
                kv: &t.kv,
                cfg: &t.cfg,
                now: t.now.get(),
                webhook: false,
            };
            let auth = format!("Basic {}", B64.encode(&raw));
            let r = R::new(handle(
                &svc,
                Request {
                    method: "GET",
                    path: "/epifiles/ws/manifest",
                    query: "",
                    authorization: Some(&auth),
                    content_type: None,
                    body: Vec::new(),
                },
            ));
            r.fails(401, "unauthorized");
        }
    }
    // Nothing was stored by any of them.
    assert_eq!(
        t.get("lab", "/epifiles/ws/manifest", "")
            .text()
            .matches("<manifest>")
            .count(),
        0
    );
    t.get("lab", "/epifiles/ws/manifestfile/1", "")
        .fails(404, "not_found");
}

/// Method, path, credentials, and the refusal expected (status, code).
type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<(u16, &'a str)>);

/// What needs no body is decided before it: the component reads a body
/// only for an admitted request.
#[test]
fn admission_decides_route_method_and_credentials_without_the_body() {
    use assetgate_epifiles::api::admit;
    let t = T::new(&[]);
    let svc = Service {
        kv: &t.kv,
        cfg: &t.cfg,
        now: t.now.get(),
        webhook: false,
    };
    let lab = format!("Basic {}", B64.encode("lab:lab-pw"));
    let cases: [Case; 9] = [
        (
            "POST",
            "/epifiles/ws/manifestfile",
            None,
            Some((401, "unauthorized")),
        ),
        (
            "POST",
            "/epifiles/ws/manifestfile",
            Some("Basic bGFiOndyb25n"),
            Some((401, "unauthorized")),
        ),
        ("POST", "/epifiles/ws/manifestfile", Some(&lab), None),
        ("PUT", "/epifiles/ws/manifestfile/abc", Some(&lab), None),
        (
            "POST",
            "/epifiles/ws/manifest",
            Some(&lab),
            Some((405, "method_not_allowed")),
        ),
        ("POST", "/epifiles/ws/nope", None, Some((404, "not_found"))),
        (
            "POST",
            "/epifiles/ws/manifestfile/%C3é",
            None,
            Some((400, "invalid_encoding")),
        ),
        (
            "GET",
            "/epifiles/admin/outbox",
            Some(&lab),
            Some((401, "unauthorized")),
        ),
        (
            "GET",
            "/epifiles/admin/outbox",
            Some("Bearer admin-secret"),
            None,
        ),
    ];
    for (method, path, auth, refused) in cases {
        match (admit(&svc, method, path, auth), refused) {
            (Ok(_), None) => {}
            (Err(r), Some((status, code))) => {
                assert_eq!(r.status, status, "{method} {path}");
                let challenged = r.header("www-authenticate").is_some();
                let text = String::from_utf8_lossy(&r.body.into_bytes()).into_owned();
                assert!(text.contains(code), "{method} {path}: {text}");
                assert_eq!(challenged, status == 401, "{method} {path}");
            }
            (Ok(_), Some(x)) => panic!("{method} {path}: admitted, expected {x:?}"),
            (Err(r), None) => panic!("{method} {path}: refused with {}", r.status),
        }
    }
}
