//! Validation of EpiFiles XML answers against `docs/epifiles.xsd`, with
//! `xmllint` (Debian's libxml2-utils; `scripts/setup --for-tests`
//! installs it).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Answers validated so far by this test binary.
static VALIDATED: AtomicUsize = AtomicUsize::new(0);

/// How many answers [`check_epifiles`] validated in this test binary.
pub fn validated() -> usize {
    VALIDATED.load(Ordering::SeqCst)
}

/// Panics, with xmllint's message and the answer, unless `body` is a
/// valid EpiFiles answer: valid against `docs/epifiles.xsd`, and a
/// failure's `<response>` holds `<message><code>` while a success's
/// does not (which XML Schema 1.0 cannot say).
pub fn check_epifiles(body: &str) {
    let schema = super::root().join("docs/epifiles.xsd");
    let mut child = Command::new("xmllint")
        .arg("--schema")
        .arg(&schema)
        .args(["--noout", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "xmllint does not run ({e}): run scripts/setup --for-tests (Debian package libxml2-utils)"
            )
        });
    // xmllint may stop reading at the first error: a broken pipe here is
    // its answer, read below.
    let _ = child.stdin.take().unwrap().write_all(body.as_bytes());
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        panic!(
            "EpiFiles answer not valid against {}:\n{}\nThe answer:\n{}",
            schema.display(),
            String::from_utf8_lossy(&out.stderr).trim_end(),
            excerpt(body)
        );
    }
    let failed = body.contains("<status>failed</status>");
    let failure_shape = body.contains("<response><message>");
    assert_eq!(
        failed,
        failure_shape,
        "EpiFiles answer: <status>{}</status> with a {} <response>:\n{}",
        if failed { "failed" } else { "success" },
        if failure_shape {
            "failure's"
        } else {
            "success's"
        },
        excerpt(body)
    );
    let n = VALIDATED.fetch_add(1, Ordering::SeqCst) + 1;
    eprintln!("epifiles.xsd: answer #{n} valid ({} bytes)", body.len());
}

/// The answer for a panic message: whole, or its ends when it carries a
/// large chunk.
fn excerpt(body: &str) -> String {
    const KEEP: usize = 4000;
    if body.len() <= 2 * KEEP {
        return body.to_string();
    }
    let mut head = KEEP;
    while !body.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = body.len() - KEEP;
    while !body.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}\n… ({} bytes left out) …\n{}",
        &body[..head],
        tail - head,
        &body[tail..]
    )
}
