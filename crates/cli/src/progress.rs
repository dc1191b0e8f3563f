//! Progress of a transfer on stderr: a bar with bytes, rate and ETA on a
//! terminal; plain lines (every 10 % or 5 s) otherwise, so logs of a
//! script stay readable. `--quiet` silences both.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    what: String,
    total: u64,
    bar: Option<ProgressBar>,
    plain: Option<Mutex<Plain>>,
}

struct Plain {
    done: u64,
    started: Instant,
    last: Instant,
    last_tenth: u64,
}

impl Progress {
    pub fn new(what: &str, total: u64, already: u64, quiet: bool) -> Progress {
        let (bar, plain) = if quiet {
            (None, None)
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            bar.set_position(already);
            (Some(bar), None)
        } else {
            let now = Instant::now();
            let plain = Plain {
                done: already,
                started: now,
                last: now,
                last_tenth: already * 10 / total.max(1),
            };
            (None, Some(Mutex::new(plain)))
        };
        Progress {
            what: what.to_string(),
            total,
            bar,
            plain,
        }
    }

    pub fn add(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
        if let Some(p) = &self.plain {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            p.done += bytes;
            let tenth = p.done * 10 / self.total.max(1);
            if tenth > p.last_tenth || p.last.elapsed() >= Duration::from_secs(5) {
                p.last_tenth = tenth;
                p.last = Instant::now();
                let secs = p.started.elapsed().as_secs_f64().max(1e-3);
                eprintln!(
                    "{}: {:.1}/{:.1} MiB ({}%), {:.1} MiB/s",
                    self.what,
                    p.done as f64 / 1048576.0,
                    self.total as f64 / 1048576.0,
                    p.done * 100 / self.total.max(1),
                    p.done as f64 / 1048576.0 / secs
                );
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
