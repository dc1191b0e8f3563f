//! `assetgate epifiles upload`: chunk 0 opens the upload (POST, which
//! answers a `process_id`), the other chunks follow by PUT with their
//! `chunk_index`, several in flight at once; the server hashes the file as
//! the chunks arrive, in any order, and the chunk that completes it gets
//! the `<manifest_file>`. What the server has acknowledged is written to
//! `FILE.assetgate-upload` after each chunk, so an interrupted upload
//! resumes where it stopped (a chunk sent twice is harmless: the protocol
//! takes the same bytes again as a no-op). The file's MD5 is computed on a
//! thread of its own while the chunks travel, and goes with the last chunk
//! (the server checks it when that chunk completes the file); only a resume
//! computes it first, to know that the saved state is this file's.

use super::{SERVICE, beside, file_md5, load_state, md5_hex, response, save_state, xml};
use crate::fail::{Fail, Result};
use crate::http::Client;
use crate::progress::Progress;
use serde_json::{Value, json};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct UploadOptions {
    pub chunk_size: u64,
    pub parallel: usize,
    /// Chunks as `application/octet-stream` bodies (an assetgate
    /// extension) instead of the reference's base64 form fields.
    pub raw: bool,
    /// `id_repository`, `comment`, `content_type` when given.
    pub fields: Vec<(&'static str, String)>,
    pub quiet: bool,
}

struct Shared {
    state: Value,
    /// The `<manifest_file>` of the answer that completed the upload.
    done: Option<String>,
    error: Option<Fail>,
}

pub fn upload(client: &Client, path: &Path, o: &UploadOptions) -> Result<Value> {
    let size = std::fs::metadata(path)
        .map_err(|e| Fail::io(path.display(), e))?
        .len();
    if size == 0 {
        return Err(Fail::Usage(format!(
            "{}: the file is empty",
            path.display()
        )));
    }
    let total = size.div_ceil(o.chunk_size);
    let state_path = beside(path, ".assetgate-upload");
    let saved = load_state(&state_path);
    // A resume must know the file is the one the state describes; a
    // one-chunk file is read whole anyway.
    let known_md5 = if saved.is_some() || total == 1 {
        Some(file_md5(path)?.0)
    } else {
        None
    };
    let fresh = json!({
        "server": client.base, "size": size, "md5": known_md5,
        "chunk_size": o.chunk_size, "total": total, "process_id": null, "done": [],
    });
    let state = match saved {
        Some(s)
            if ["server", "size", "md5", "chunk_size", "total"]
                .iter()
                .all(|k| s[k] == fresh[k])
                && s["process_id"].is_string() =>
        {
            s
        }
        Some(_) => {
            if !o.quiet {
                eprintln!(
                    "{}: the saved state is for another file, chunk size or server; starting over",
                    state_path.display()
                );
            }
            fresh
        }
        None => fresh,
    };
    let done: Vec<u64> = state["done"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let resumed = done.len();
    let chunk_len = |i: u64| (size - i * o.chunk_size).min(o.chunk_size);
    let already: u64 = done.iter().map(|&i| chunk_len(i)).sum();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".into());
    let progress = Progress::new(&format!("upload {name}"), size, already, o.quiet);
    let shared = Mutex::new(Shared {
        state,
        done: None,
        error: None,
    });
    let md5 = Mutex::new(known_md5.clone());
    // Every chunk sent once the MD5 is known carries it.
    let with_md5 = |mut fields: Vec<(&'static str, String)>| {
        if let Some(m) = md5.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            fields.push(("file_hash", m));
        }
        fields
    };

    // Chunk 0 opens the upload (and is the whole of a one-chunk file).
    if shared
        .lock()
        .map(|s| s.state["process_id"].is_null())
        .unwrap_or(true)
    {
        let chunk = read_chunk(path, 0, chunk_len(0))?;
        let mut fields = with_md5(vec![
            ("filename", name.clone()),
            ("total_chunks", total.to_string()),
            ("chunk_index", "0".into()),
        ]);
        fields.extend(o.fields.iter().cloned());
        let r = send_chunk(client, "POST", SERVICE, &chunk, &fields, o.raw)?;
        progress.add(chunk.len() as u64);
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mf) = xml::section(&r, "manifest_file") {
            s.done = Some(mf.to_string());
        } else {
            let pid = xml::tag(&r, "process_id")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    Fail::Integrity("the first chunk's answer has no process_id".into())
                })?;
            s.state["process_id"] = json!(pid);
            s.state["done"] = json!([0]);
            save_state(&state_path, &s.state)?;
        }
    }
    let (pid, mut queue) = {
        let s = shared.lock().unwrap_or_else(|e| e.into_inner());
        let have: Vec<u64> = s.state["done"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let pid = s.state["process_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let todo: Vec<u64> = if s.done.is_some() {
            Vec::new()
        } else {
            (0..total).rev().filter(|i| !have.contains(i)).collect()
        };
        (pid, todo)
    };
    let target = format!("{SERVICE}/{}", url_escape(&pid));
    // The last chunk waits for the file's MD5 when that is still being
    // computed, and goes after the others.
    let held =
        (known_md5.is_none() && queue.first() == Some(&(total - 1))).then(|| queue.remove(0));
    let queue = Mutex::new(queue);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        if known_md5.is_none() {
            scope.spawn(|| {
                let outcome = file_md5(path).and_then(|(m, n)| {
                    if n != size {
                        return Err(Fail::Integrity(format!(
                            "{}: the file changed during the upload",
                            path.display()
                        )));
                    }
                    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                    s.state["md5"] = json!(m);
                    *md5.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
                    if s.state["process_id"].is_string() {
                        save_state(&state_path, &s.state)?;
                    }
                    Ok(())
                });
                if let Err(e) = outcome {
                    shared
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .error
                        .get_or_insert(e);
                    stop.store(true, Ordering::Relaxed);
                }
            });
        }
        for _ in 0..o.parallel.max(1) {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let Some(i) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        break;
                    };
                    let outcome =
                        read_chunk(path, i * o.chunk_size, chunk_len(i)).and_then(|chunk| {
                            let fields = with_md5(vec![("chunk_index", i.to_string())]);
                            let r = send_chunk(client, "PUT", &target, &chunk, &fields, o.raw)?;
                            Ok((r, chunk.len() as u64))
                        });
                    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok((r, len)) => {
                            if let Some(mf) = xml::section(&r, "manifest_file") {
                                s.done = Some(mf.to_string());
                            } else if xml::tag(&r, "process_id").as_deref() != Some(pid.as_str()) {
                                s.error = Some(Fail::Integrity(format!(
                                    "chunk {i}: the answer names another process_id"
                                )));
                                stop.store(true, Ordering::Relaxed);
                                break;
                            }
                            if let Some(d) = s.state["done"].as_array_mut() {
                                d.push(json!(i));
                            }
                            if let Err(e) = save_state(&state_path, &s.state) {
                                s.error.get_or_insert(e);
                                stop.store(true, Ordering::Relaxed);
                            }
                            drop(s);
                            progress.add(len);
                        }
                        Err(e) => {
                            s.error.get_or_insert(e);
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let s = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = s.error {
        progress.finish();
        return Err(e);
    }
    let md5 = md5
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .expect("computed before the threads ended");
    let mf = match s.done {
        Some(mf) => mf,
        None => {
            // The held-back chunk, or (everything acknowledged already but
            // the completing answer lost) the last chunk again, which gives
            // the file back.
            let last = held.unwrap_or(total - 1);
            let chunk = read_chunk(path, last * o.chunk_size, chunk_len(last))?;
            let fields = [
                ("chunk_index", last.to_string()),
                ("file_hash", md5.clone()),
            ];
            let r = send_chunk(client, "PUT", &target, &chunk, &fields, o.raw)?;
            progress.add(if held.is_some() {
                chunk.len() as u64
            } else {
                0
            });
            xml::section(&r, "manifest_file")
                .map(str::to_string)
                .ok_or_else(|| {
                    Fail::Integrity("every chunk was sent but the upload is not complete".into())
                })?
        }
    };
    progress.finish();
    let file = xml::section(&mf, "file").unwrap_or_default();
    let stored_size = xml::tag(file, "size").and_then(|v| v.parse::<u64>().ok());
    let stored_md5 = xml::tag(file, "file_hash")
        .unwrap_or_default()
        .to_lowercase();
    if stored_size != Some(size) || stored_md5 != md5 {
        return Err(Fail::Integrity(format!(
            "the server stored size {stored_size:?} md5 {stored_md5}; sent size {size} md5 {md5}"
        )));
    }
    let _ = std::fs::remove_file(&state_path);
    Ok(json!({
        "id": xml::tag(&mf, "id"),
        "id_manifest": xml::tag(&mf, "id_manifest"),
        "file_id": xml::tag(file, "id"),
        "size": size,
        "md5": md5,
        "chunks": total,
        "resumed_chunks": resumed,
        "purge_date": xml::tag(&mf, "purge_date"),
    }))
}

/// `len` bytes at `offset`.
fn read_chunk(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).map_err(|e| Fail::io(path.display(), e))?;
    let mut buf = vec![0u8; len as usize];
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| Fail::io(path.display(), e))?;
    f.read_exact(&mut buf).map_err(|_| {
        Fail::Integrity(format!(
            "{}: the file changed during the upload",
            path.display()
        ))
    })?;
    Ok(buf)
}

/// Sends one chunk and its fields: a form body with the base64 content,
/// or (raw) the bytes as the body and the fields in the query string.
fn send_chunk(
    client: &Client,
    method: &str,
    target: &str,
    chunk: &[u8],
    fields: &[(&str, String)],
    raw: bool,
) -> Result<String> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("hash", &md5_hex(chunk));
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    let query = form.finish();
    let r = if raw {
        client.send(
            method,
            &format!("{target}?{query}"),
            &[
                ("content-type", "application/octet-stream"),
                ("accept", "application/xml"),
            ],
            chunk,
        )?
    } else {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(chunk);
        let mut body = Vec::with_capacity(b64.len() + b64.len() / 16 + query.len() + 16);
        body.extend_from_slice(b"content=");
        for b in b64.bytes() {
            match b {
                b'+' => body.extend_from_slice(b"%2B"),
                b'/' => body.extend_from_slice(b"%2F"),
                b'=' => body.extend_from_slice(b"%3D"),
                other => body.push(other),
            }
        }
        body.push(b'&');
        body.extend_from_slice(query.as_bytes());
        client.send(
            method,
            target,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept", "application/xml"),
            ],
            &body,
        )?
    };
    response(&r).map(str::to_string)
}

pub fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
