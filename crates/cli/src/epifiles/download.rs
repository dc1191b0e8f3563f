//! `assetgate epifiles download`: chunk 0 says how many chunks there are,
//! their size and the whole file's MD5; the others are fetched several at
//! once and written at their offsets in `OUT.part`, each checked against
//! its MD5. `OUT.assetgate-download` records the chunks on disk, so an
//! interrupted download resumes; the whole file's MD5, computed on a
//! thread of its own that follows the chunks on disk in order while the
//! others travel, is checked before `OUT.part` becomes `OUT`.

use super::{SERVICE, beside, load_state, md5_hex, response, save_state, xml};
use crate::epifiles::upload::url_escape;
use crate::fail::{Fail, Result};
use crate::http::Client;
use crate::progress::Progress;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

const SAVE_EVERY: Duration = Duration::from_millis(250);

/// One chunk as the server sends it: the `<file>` element's fields but
/// its content, and the content decoded.
struct Chunk {
    file: String,
    bytes: Vec<u8>,
}

fn fetch(client: &Client, id: &str, index: u64) -> Result<Chunk> {
    let r = client.send(
        "GET",
        &format!("{SERVICE}/{}?chunk_index={index}", url_escape(id)),
        &[("accept", "application/xml")],
        b"",
    )?;
    let inner = response(&r)?;
    let whole = xml::section(inner, "file")
        .ok_or_else(|| Fail::Integrity(format!("chunk {index}: no <file> in the answer")))?;
    // The content is base64 (no entities to decode): used in place; the
    // rest of the element is kept for its small fields.
    let content = xml::section(whole, "content").unwrap_or_default();
    let at = content.as_ptr() as usize - whole.as_ptr() as usize;
    let file = [&whole[..at], &whole[at + content.len()..]].concat();
    if xml::tag(&file, "chunk_index").and_then(|v| v.parse::<u64>().ok()) != Some(index) {
        return Err(Fail::Integrity(format!(
            "chunk {index}: the server answered chunk {:?}",
            xml::tag(&file, "chunk_index")
        )));
    }
    // SIMD base64 (AVX2/SSE4.1/NEON, chosen at run time): the scalar
    // decoder was a fifth of the client's time per chunk.
    let bytes = base64_simd::STANDARD
        .decode_to_vec(content.trim().as_bytes())
        .map_err(|e| Fail::Integrity(format!("chunk {index}: invalid base64: {e}")))?;
    let want = xml::tag(&file, "hash").unwrap_or_default().to_lowercase();
    if md5_hex(&bytes) != want {
        return Err(Fail::Integrity(format!(
            "chunk {index}: MD5 {} does not match the hash {want}",
            md5_hex(&bytes)
        )));
    }
    Ok(Chunk { file, bytes })
}

fn number(file: &str, name: &str) -> Result<u64> {
    xml::tag(file, name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Fail::Integrity(format!("the answer has no numeric <{name}>")))
}

pub fn download(
    client: &Client,
    id: &str,
    out: &Path,
    parallel: usize,
    quiet: bool,
) -> Result<Value> {
    let first = fetch(client, id, 0)?;
    let total = number(&first.file, "total_chunks")?.max(1);
    let size = number(&first.file, "size")?;
    let md5 = xml::tag(&first.file, "file_hash")
        .unwrap_or_default()
        .to_lowercase();
    let chunk_size = first.bytes.len() as u64;
    if total > 1 && chunk_size * (total - 1) >= size.max(1) || chunk_size * total < size {
        return Err(Fail::Integrity(format!(
            "{total} chunks of {chunk_size} bytes cannot make {size} bytes"
        )));
    }
    let part = beside(out, ".part");
    let state_path = beside(out, ".assetgate-download");
    let fresh = json!({
        "server": client.base, "id": id, "size": size, "md5": md5,
        "total": total, "chunk_size": chunk_size, "done": [],
    });
    let resumable = std::fs::metadata(&part).is_ok_and(|m| m.len() == size);
    let state = match load_state(&state_path) {
        Some(s)
            if resumable
                && ["server", "id", "size", "md5", "total", "chunk_size"]
                    .iter()
                    .all(|k| s[k] == fresh[k]) =>
        {
            s
        }
        _ => fresh,
    };
    let have: Vec<u64> = state["done"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let resumed = have.len();
    // Each writer opens its own handle: a cloned one would share the
    // file position, and concurrent seek-then-write would interleave.
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&part)
            .map_err(|e| Fail::io(part.display(), e))
    };
    open()?
        .set_len(size)
        .map_err(|e| Fail::io(part.display(), e))?;
    let chunk_len = |i: u64| (size - i * chunk_size).min(chunk_size);
    let already: u64 = have.iter().map(|&i| chunk_len(i)).sum();
    let progress = Progress::new(&format!("download {id}"), size, already, quiet);
    // The state is written at most every SAVE_EVERY and once at the end:
    // a chunk whose acknowledgement was not saved is only fetched again.
    let shared = Mutex::new((state, None::<Fail>, Instant::now()));
    let write = |f: &mut std::fs::File, i: u64, bytes: &[u8]| -> Result<()> {
        if bytes.len() as u64 != chunk_len(i) {
            return Err(Fail::Integrity(format!(
                "chunk {i} has {} bytes, expected {}",
                bytes.len(),
                chunk_len(i)
            )));
        }
        f.seek(SeekFrom::Start(i * chunk_size))
            .and_then(|_| f.write_all(bytes))
            .map_err(|e| Fail::io(part.display(), e))
    };
    // Which chunks are on disk, for the hashing thread.
    let mut marks = vec![false; total as usize];
    for &i in &have {
        if let Some(d) = marks.get_mut(i as usize) {
            *d = true;
        }
    }
    let on_disk = (Mutex::new(marks), Condvar::new());
    let record = |i: u64, len: u64| -> Result<()> {
        on_disk.0.lock().unwrap_or_else(|e| e.into_inner())[i as usize] = true;
        on_disk.1.notify_all();
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = s.0["done"].as_array_mut() {
            d.push(json!(i));
        }
        if s.2.elapsed() >= SAVE_EVERY {
            save_state(&state_path, &s.0)?;
            s.2 = Instant::now();
        }
        drop(s);
        progress.add(len);
        Ok(())
    };
    if !have.contains(&0) {
        write(&mut open()?, 0, &first.bytes)?;
        record(0, first.bytes.len() as u64)?;
    }
    let queue = Mutex::new(
        (1..total)
            .rev()
            .filter(|i| !have.contains(i))
            .collect::<Vec<_>>(),
    );
    let stop = AtomicBool::new(false);
    let whole = std::thread::scope(|scope| {
        // Reads exactly `size` bytes (`read_exact`): a short file is an error.
        let hasher = scope.spawn(|| -> Result<Option<String>> {
            let mut f = std::fs::File::open(&part).map_err(|e| Fail::io(part.display(), e))?;
            let (mut h, mut buf) = (Md5::new(), vec![0u8; chunk_size as usize]);
            for i in 0..total {
                let mut d = on_disk.0.lock().unwrap_or_else(|e| e.into_inner());
                while !d[i as usize] {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    d = on_disk.1.wait(d).unwrap_or_else(|e| e.into_inner());
                }
                drop(d);
                let n = chunk_len(i) as usize;
                f.seek(SeekFrom::Start(i * chunk_size))
                    .and_then(|_| f.read_exact(&mut buf[..n]))
                    .map_err(|e| Fail::io(part.display(), e))?;
                h.update(&buf[..n]);
            }
            Ok(Some(hex::encode(h.finalize())))
        });
        let mut workers = Vec::new();
        for _ in 0..parallel.max(1) {
            workers.push(scope.spawn(|| {
                let mut f = match open() {
                    Ok(f) => f,
                    Err(e) => {
                        shared.lock().unwrap_or_else(|e| e.into_inner()).1 = Some(e);
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                };
                while !stop.load(Ordering::Relaxed) {
                    let Some(i) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        break;
                    };
                    let outcome = fetch(client, id, i).and_then(|c| {
                        if number(&c.file, "total_chunks")? != total {
                            return Err(Fail::Integrity(format!(
                                "chunk {i}: total_chunks changed"
                            )));
                        }
                        write(&mut f, i, &c.bytes)?;
                        record(i, c.bytes.len() as u64)
                    });
                    if let Err(e) = outcome {
                        shared
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .1
                            .get_or_insert(e);
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }));
        }
        for w in workers {
            let _ = w.join();
        }
        // A failed chunk never reaches the disk: wake the hasher to stop
        // (under its lock, so the wake-up cannot fall between its check of
        // `stop` and its wait).
        if stop.load(Ordering::Relaxed) {
            let _held = on_disk.0.lock().unwrap_or_else(|e| e.into_inner());
            on_disk.1.notify_all();
        }
        hasher.join().unwrap_or(Ok(None))
    });
    progress.finish();
    let (state, error, _) = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = error {
        save_state(&state_path, &state)?;
        return Err(e);
    }
    let got = whole?.ok_or_else(|| {
        Fail::Integrity("every chunk arrived but the file could not be hashed".into())
    })?;
    if got != md5 {
        let _ = std::fs::remove_file(&state_path);
        return Err(Fail::Integrity(format!(
            "the file's MD5 is {got}, expected {md5} ({size} bytes); {} is kept for inspection",
            part.display()
        )));
    }
    std::fs::rename(&part, out).map_err(|e| Fail::io(out.display(), e))?;
    let _ = std::fs::remove_file(&state_path);
    Ok(json!({
        "id": id,
        "size": size,
        "md5": md5,
        "chunks": total,
        "resumed_chunks": resumed,
        "filename": xml::tag(&first.file, "filename"),
        "content_type": xml::tag(&first.file, "content_type"),
        "path": out.display().to_string(),
    }))
}
