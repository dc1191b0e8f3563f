#!/usr/bin/env python3
"""assetgate benchmarks (run through scripts/bench).

Every figure is measured in the same run as its baseline and printed as a
ratio, so it holds on a noisy shared machine. Inputs are generated here.
Exits non-zero when a run fails, never because a figure is slow.

  P1  preview of a 24 MP JPEG to fit 600x400 (JPEG), median of N renders
      vs vipsthumbnail producing the same box
  P1c the reference's crop, 590x390 at (10, 10) of the 24 MP JPEG at full
      resolution, median of N renders
      vs `vips crop` + JPEG save of the same region
  P1m peak memory of one P1 render: the preview instance's linear memory
      (the host's `instance ended … peak_memory_bytes`)
      vs vipsthumbnail's peak RSS for the same box
  P2  /process with 3 renditions (2000 px JPEG q85, 600 px PNG, 200 px WebP)
      to a local target, until the 3 events are in the journal
      vs ImageMagick convert producing the same three files
  P3  1 GiB through the EpiFiles chunked protocol, MD5 checked, then
      downloaded: with the Python reference client one chunk at a time (8 MiB
      raw chunks, and 1 MiB base64 chunks), and with the `assetgate` CLI at
      --parallel 4 (8 MiB base64 chunks, and 8 MiB raw chunks)
      vs the same bytes PUT to and GET from a trivial loopback HTTP server;
      P3c rows: the CPU each transfer cost (host + client, ms per MiB) vs
      the baseline's (curl + the loopback server)
  P4  peak RSS of the host during P3 (absolute)
  P3r, P4r  P3 and P4 with the whole store in Redis (store_redis_url, a
      redis-server started here), same baseline
  P5  If-None-Match revalidations (304) per second at concurrency 16, 10 s
      vs a hello-world component on the same host, same load tool (wrk)
  P6  journal: append 10 000 events, then page through them with limit=100
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST_BIN = os.environ.get("ASSETGATE_HOST") or os.path.join(ROOT, "target", "release", "assetgate-host")
CLI_BIN = os.environ.get("ASSETGATE_CLI") or os.path.join(ROOT, "target", "release", "assetgate")
WORK = os.path.join(ROOT, "target", "bench")
ORG = "BENCH@AdobeOrg"
RESULTS = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name, candidates):
    for c in candidates:
        path = shutil.which(c) if "/" not in c else (c if os.path.exists(c) else None)
        if path:
            return path
    sys.exit(f"bench: {name} is missing (scripts/bench installs it as root: apt-get install {name})")


def convert_bin():
    # /usr/local/bin may hold a stand-in; Debian's ImageMagick is /usr/bin/convert.
    for c in ["/usr/bin/convert", shutil.which("magick"), shutil.which("convert")]:
        if c and os.path.exists(c):
            out = subprocess.run([c, "-version"], capture_output=True, text=True).stdout
            if "ImageMagick" in out:
                return c
    sys.exit("bench: ImageMagick is missing (apt-get install imagemagick)")


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def request(method, url, body=None, headers=None, timeout=600):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Host:
    """assetgate-host (release) with a manifest and variables."""

    def __init__(self, manifest, state, variables):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [HOST_BIN, "--from", manifest, "--listen", f"127.0.0.1:{self.port}",
                "--state-dir", state, "--cache-dir", os.path.join(WORK, "compile-cache")]
        for k, v in variables.items():
            args += ["--variable", f"{k}={v}"]
        self.state = state
        self.stderr = open(os.path.join(state, "host.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"bench: host exited; see {state}/host.log")
                time.sleep(0.1)
        sys.exit("bench: host did not start")

    def cpu_seconds(self):
        """User + system CPU the host process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            kb = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
        return kb / 1024

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Sink(http.server.ThreadingHTTPServer):
    """The trivial native HTTP server of the baselines and the rendition
    target: GET serves files of a folder, PUT stores the body."""

    daemon_threads = True

    def __init__(self, folder):
        self.folder = folder
        self.puts = []
        handler = type("H", (SinkHandler,), {})
        super().__init__(("127.0.0.1", 0), handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server_address[1]}"


class SinkHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_PUT(self):
        n = int(self.headers.get("content-length", 0))
        h = hashlib.md5()
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            n -= len(chunk)
        self.server.puts.append((self.path, h.hexdigest()))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        path = os.path.join(self.server.folder, os.path.basename(self.path))
        if not os.path.exists(path):
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("content-length", str(size))
        self.end_headers()
        with open(path, "rb") as f:
            shutil.copyfileobj(f, self.wfile, 1 << 20)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def costed(fn, host=None):
    """Wall time of `fn`, and the CPU seconds it cost: the host's (when
    given), the child processes' (the client), and this process's (the
    baselines' loopback server runs on a thread here)."""
    h0, c0, s0 = host.cpu_seconds() if host else 0.0, children_cpu(), self_cpu()
    wall = timed(fn)
    h1 = host.cpu_seconds() if host else 0.0
    return wall, h1 - h0, children_cpu() - c0, self_cpu() - s0


def record(pid, what, ours, base, unit, baseline_name):
    """One figure; the ratio is ours / baseline (for times lower is better,
    for rates higher is better)."""
    ratio = None if base is None else ours / base
    RESULTS.append((pid, what, ours, base, unit, baseline_name, ratio))
    r = "-" if ratio is None else f"{ratio:.2f}"
    b = "-" if base is None else f"{base:.3f}"
    log(f"{pid}: ours {ours:.3f} {unit}, baseline {b} ({baseline_name}), ours/baseline {r}")


def make_inputs(convert, big_mib):
    os.makedirs(WORK, exist_ok=True)
    photo = os.path.join(WORK, "photo24mp.jpg")
    if not os.path.exists(photo):
        log("generating a 6000x4000 photographic-like JPEG (gradient + noise, q90)")
        run([convert, "-size", "6000x4000", "gradient:#203060-#f0c070", "-attenuate", "0.5",
             "+noise", "Gaussian", "-quality", "90", photo])
    big = os.path.join(WORK, f"random{big_mib}m.bin")
    if not os.path.exists(big) or os.path.getsize(big) != big_mib << 20:
        log(f"generating {big_mib} MiB of random bytes")
        with open(big, "wb") as f:
            for _ in range(big_mib):
                f.write(os.urandom(1 << 20))
    return photo, big


def token():
    out = run([sys.executable, os.path.join(ROOT, "scripts", "compute-token"), "--name", "bench",
               "--api-key", "bench-key", "--org", ORG, "--max-in-flight", "16"])
    v = json.loads(out.stdout)
    return v["token"], v["client"]


def password_hash(pw):
    out = run([sys.executable, os.path.join(ROOT, "scripts", "epifiles-client"), "hash-password",
               "--iterations", "1000"], input=(pw + "\n").encode())
    return out.stdout.decode().strip()


def logged_peaks(app, component):
    """The peaks the host logged so far for `component`'s instances."""
    with open(os.path.join(app.state, "host.log"), "rb") as f:
        text = f.read().decode(errors="replace")
    return [int(m) for m in re.findall(
        rf"instance ended component={component} peak_memory_bytes=(\d+)", text)]


def peak_rss_kib(cmd):
    """Runs `cmd` alone in a fresh Python and returns its peak RSS (KiB)."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    return int(run([sys.executable, "-c", probe] + cmd).stdout.decode().split()[-1])


def p1c_p1m(app, photo, vips, runs, asset, ticket):
    def render(args):
        status, _, body = request(
            "GET", f"{app.base}/proxy?ticket={ticket}&objectid={asset}&rendition=preview&preview-args={args}")
        assert status == 200, body
        return body

    crop = "cropWidth_590_cropHeight_390_cropOffsetX_10_cropOffsetY_10"
    render(f"{crop}_quality_99.jpg")
    ours = [timed(lambda: render(f"{crop}_quality_{60 + i}.jpg")) for i in range(runs)]
    out = os.path.join(WORK, "vips-crop.jpg")
    vips_cli = os.path.join(os.path.dirname(vips), "vips")
    base = [timed(lambda: run([vips_cli, "crop", photo, out + "[Q=85]", "10", "10", "590", "390"]))
            for _ in range(runs)]
    record("P1c", "crop 590x390 at (10,10) of the 24 MP JPEG, full resolution (median s)",
           statistics.median(ours), statistics.median(base), "s", "vips crop + save")

    before = len(logged_peaks(app, "preview"))
    render("maxWidth_600_maxHeight_400_quality_58.jpg")
    deadline = time.time() + 10
    while len(logged_peaks(app, "preview")) <= before and time.time() < deadline:
        time.sleep(0.05)
    ours_mib = logged_peaks(app, "preview")[before] / (1 << 20)
    vips_mib = peak_rss_kib([vips, photo, "-s", "600x400", "-o",
                             os.path.join(WORK, "vips-m.jpg") + "[Q=85]"]) / 1024
    record("P1m", "peak memory of one P1 render (MiB): instance linear memory vs peak RSS",
           ours_mib, vips_mib, "MiB", "vipsthumbnail peak RSS")


def upload_photo(app, photo):
    """The photo uploaded through the Phraseanet upload service, and a
    preview log-on ticket."""
    with open(photo, "rb") as f:
        status, _, body = request("POST", app.base + "/assets", f.read(), {
            "authorization": "Bearer bench-upload", "content-type": "image/jpeg",
            "x-filename": "photo24mp.jpg"})
    assert status == 201, body
    asset = json.loads(body)["id"]
    form = urllib.parse.urlencode({"user": "bench", "password": "bench-pw"}).encode()
    status, _, body = request("POST", app.base + "/proxy/logon", form,
                              {"content-type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    return asset, json.loads(body)["ticket"]


def p1_p5(app, photo, vips, runs, wrk, probe_host):
    asset, ticket = upload_photo(app, photo)

    def preview(q):
        args = f"maxWidth_600_maxHeight_400_quality_{q}.jpg"
        status, headers, body = request(
            "GET", f"{app.base}/proxy?ticket={ticket}&objectid={asset}&rendition=preview&preview-args={args}")
        assert status == 200, body
        return headers, body

    # Warm: the component is compiled and instantiated once before timing.
    preview(99)
    ours = []
    for i in range(runs):
        ours.append(timed(lambda: preview(60 + i)))  # a new quality each time: a real render
    out = os.path.join(WORK, "vips.jpg")
    base = [timed(lambda: run([vips, photo, "-s", "600x400", "-o", out + "[Q=85]"])) for _ in range(runs)]
    record("P1", "preview 24 MP JPEG -> fit 600x400 JPEG (median s)", statistics.median(ours),
           statistics.median(base), "s", "vipsthumbnail")

    headers, _ = preview(85)
    etag = headers.get("ETag") or headers.get("etag")
    url = f"{app.base}/proxy?ticket={ticket}&objectid={asset}&rendition=preview&preview-args=maxWidth_600_maxHeight_400_quality_85.jpg"
    status, _, _ = request("GET", url, headers={"if-none-match": etag})
    assert status == 304, status
    ours_rps = wrk_rps(wrk, url, {"If-None-Match": etag})
    base_rps = wrk_rps(wrk, probe_host.base + "/a/generate/5", {})
    record("P5", "If-None-Match -> 304, c=16, 10 s (req/s)", ours_rps, base_rps, "req/s",
           "hello-world component (probe /a/generate/5)")
    return asset


def wrk_rps(wrk, url, headers):
    cmd = [wrk, "-t2", "-c16", "-d10s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = run(cmd + [url]).stdout.decode()
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        sys.exit(f"bench: wrk saw {non2xx.group(1)} failed responses:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


class Compute:
    def __init__(self, app, tok):
        self.app = app
        self.h = {"authorization": f"Bearer {tok}", "x-api-key": "bench-key", "x-gw-ims-org-id": ORG,
                  "content-type": "application/json"}
        status, _, body = request("POST", app.base + "/register", b"", self.h)
        assert status == 200, body
        self.journal = json.loads(body)["journal"]
        self.since = self.last()

    def last(self):
        since = "0"
        while True:
            status, _, body = request("GET", f"{self.journal}?since={since}&limit=1000", headers=self.h)
            if status == 204:
                return since
            since = json.loads(body)["_page"]["last"]

    def process(self, body):
        """Submits a job; on 429 (the client's 16 jobs in flight) tries again
        shortly, as a client honouring backpressure does."""
        while True:
            status, _, out = request("POST", self.app.base + "/process", json.dumps(body).encode(), self.h)
            if status != 429:
                break
            time.sleep(0.02)
        assert status == 200, out

    def wait(self, n, limit=1000):
        got = []
        while len(got) < n:
            status, _, body = request("GET", f"{self.journal}?since={self.since}&limit={limit}", headers=self.h)
            if status == 204:
                time.sleep(0.01)
                continue
            page = json.loads(body)
            got += [e["event"] for e in page["events"]]
            self.since = page["_page"]["last"]
        return got


def p2(app, compute, asset, photo, convert, sink, runs):
    def ours():
        compute.process({"source": f"asset:{asset}", "renditions": [
            {"fmt": "jpg", "width": 2000, "height": 2000, "quality": 85, "target": sink.base + "/put/a.jpg"},
            {"fmt": "png", "width": 600, "height": 600, "target": sink.base + "/put/b.png"},
            {"fmt": "webp", "width": 200, "height": 200, "target": sink.base + "/put/c.webp"}]})
        events = compute.wait(3)
        bad = [e for e in events if e["type"] != "rendition_created"]
        assert not bad, bad

    def baseline():
        run([convert, photo, "-resize", "2000x2000", "-quality", "85", os.path.join(WORK, "a.jpg")])
        run([convert, photo, "-resize", "600x600", os.path.join(WORK, "b.png")])
        run([convert, photo, "-resize", "200x200", os.path.join(WORK, "c.webp")])

    ours_t = statistics.median([timed(ours) for _ in range(runs)])
    base_t = statistics.median([timed(baseline) for _ in range(runs)])
    record("P2", "/process 3 renditions from 24 MP JPEG (median s)", ours_t, base_t, "s",
           "ImageMagick convert x3")


class Redis:
    """A redis-server of the bench's own (no persistence), for P3 on Redis."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.time() > deadline:
                    sys.exit("bench: redis-server did not start")
                time.sleep(0.1)

    def variables(self):
        host = f"redis://127.0.0.1:{self.port}"
        return {"store_redis_url": host + "/0", "store_redis_host": host}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def p3_p4(state, big, sink, users, redis=None):
    """P3 (and P4) on the default store, or with the whole store in
    `redis` (then reported as P3r/P4r)."""
    variables = {"epifiles_users": users}
    if redis:
        variables.update(redis.variables())
    app = Host(os.path.join(ROOT, "spin.toml"), state, variables)
    client = os.path.join(ROOT, "scripts", "epifiles-client")
    url = app.base.replace("http://", "http://bench:bench-pw@")
    size = os.path.getsize(big)
    times = {}
    repo = ["--repository", "bench"]
    dest = os.path.join(WORK, "download.bin")

    def download(file_id, cli=False):
        if cli:
            run([CLI_BIN, "epifiles", "download", "--quiet", "--parallel", "4", url, file_id, dest])
        else:
            run([sys.executable, client, "download", url, file_id, dest])
        with open(dest, "rb") as f, open(big, "rb") as g:
            while True:
                a, b = f.read(1 << 20), g.read(1 << 20)
                assert a == b, "download differs from the source"
                if not a:
                    break
        os.remove(dest)

    transfers = {}
    cli = [CLI_BIN, "epifiles", "upload", "--quiet", "--parallel", "4"]
    for label, command in [
            ("8 MiB raw chunks", [sys.executable, client, "upload", *repo, "--raw", "--chunk-size", str(8 << 20)]),
            ("1 MiB base64 chunks", [sys.executable, client, "upload", *repo, "--chunk-size", str(1 << 20)]),
            ("CLI --parallel 4, 8 MiB base64 chunks", cli + [*repo, "--chunk-size", str(8 << 20)]),
            ("CLI --parallel 4, 8 MiB raw chunks", cli + [*repo, "--raw", "--chunk-size", str(8 << 20)])]:
        out = {}

        def up():
            out["r"] = json.loads(run(command + [url, big]).stdout)
        c_up = costed(up, app)
        # Downloads always come in epifiles_download_chunk_size (1 MiB)
        # base64 chunks, each with its MD5: the protocol has no raw download.
        by_cli = command[0] == CLI_BIN
        c_down = costed(lambda: download(out["r"]["id"], by_cli), app)
        transfers[label] = (c_up, c_down, by_cli)
    rss = app.peak_rss_mib()
    app.stop()

    def put():
        run(["curl", "-sS", "-f", "-T", big, "-o", "/dev/null", sink.base + "/put/raw.bin"])

    def get():
        run(["curl", "-sS", "-f", "-o", "/dev/null", sink.base + "/" + os.path.basename(big)])
    b_up, b_down = costed(put), costed(get)
    mib = size / (1 << 20)
    p3, p4, on = ("P3r", "P4r", ", store on Redis") if redis else ("P3", "P4", "")

    def cpu_row(what, ours, base, baseline_name):
        # Wall times on a shared 2-core machine move with its other load;
        # the CPU a transfer costs is steadier, and is what bounds it.
        _, host, client, _ = ours
        _, _, tool, server = base
        record(p3 + "c", f"{what}: CPU, host {1000 * host / mib:.1f} + client {1000 * client / mib:.1f} (ms/MiB)",
               1000 * (host + client) / mib, 1000 * (tool + server) / mib, "ms/MiB", baseline_name)

    for label, (c_up, c_down, by_cli) in transfers.items():
        what = f"{mib:.0f} MiB upload, {label}{on}"
        record(p3, f"{what} (s)", c_up[0], b_up[0], "s", "curl PUT to loopback sink")
        cpu_row(what, c_up, b_up, "curl + sink")
        how = "CLI --parallel 4, " if by_cli else ""
        what = f"{mib:.0f} MiB download of that file, {how}1 MiB base64 chunks{on}"
        record(p3, f"{what} (s)", c_down[0], b_down[0], "s", "curl GET from loopback server")
        cpu_row(what, c_down, b_down, "curl + server")
    record(p4, f"peak RSS of the host during {p3} (MiB)", rss, None, "MiB", "-")


def p6(compute, events, per_request, parallel):
    assert events % per_request == 0, "--events must be a multiple of 20"
    requests = events // per_request
    body = {"source": "data:text/plain,hello", "renditions": [
        {"fmt": "text", "embedBinaryLimit": 1024} for _ in range(per_request)]}
    start = compute.since

    def worker(n):
        for _ in range(n):
            compute.process(body)

    def append():
        shares = [requests // parallel + (1 if i < requests % parallel else 0) for i in range(parallel)]
        threads = [threading.Thread(target=worker, args=(n,)) for n in shares]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        compute.wait(events)
    t_append = timed(append)
    compute.since = start

    def page():
        got = compute.wait(events, limit=100)
        assert len(got) == events, len(got)
    t_page = timed(page)
    record("P6", f"journal append {events} events ({per_request} renditions per /process) (events/s)",
           events / t_append, None, "events/s", "-")
    record("P6", f"journal page through {events} events, limit=100 (events/s)", events / t_page, None,
           "events/s", "-")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=11)
    p.add_argument("--big-mib", type=int, default=1024)
    p.add_argument("--events", type=int, default=10000)
    p.add_argument("--only", default="P1,P1c,P1m,P2,P3,P3r,P5,P6", help="comma-separated figures")
    a = p.parse_args()
    only = set(a.only.split(","))
    vips = tool("libvips-tools", ["vipsthumbnail"])
    wrk = tool("wrk", ["wrk"])
    convert = convert_bin()
    tool("curl", ["curl"])
    photo, big = make_inputs(convert, a.big_mib)
    tok, client = token()
    users = json.dumps([{"user": "bench", "password": password_hash("bench-pw"),
                         "repositories": {"phraseanet": "manager", "bench": "uploader"}}])
    sink = Sink(WORK)
    shutil.rmtree(os.path.join(WORK, "state"), ignore_errors=True)
    for d in ["app", "probe", "p3", "p3r"]:
        os.makedirs(os.path.join(WORK, "state", d), exist_ok=True)
    app = Host(os.path.join(ROOT, "spin.toml"), os.path.join(WORK, "state", "app"), {
        "upload_api_key": "bench-upload", "epifiles_users": users,
        "compute_clients": json.dumps([client]),
        "compute_allowed_http_hosts": sink.base.removeprefix("http://"),
        "compute_http_host": sink.base})
    probe = Host(os.path.join(ROOT, "tests", "fixtures", "probe.toml"), os.path.join(WORK, "state", "probe"),
                 {"secret_token": "bench"})
    asset = None
    if only & {"P1", "P5", "P2"}:
        asset = p1_p5(app, photo, vips, a.runs, wrk, probe)
    if only & {"P1c", "P1m"}:
        p1c_p1m(app, photo, vips, a.runs, *upload_photo(app, photo))
    compute = Compute(app, tok)
    if "P2" in only:
        p2(app, compute, asset, photo, convert, sink, max(3, a.runs // 3))
    if "P6" in only:
        p6(compute, a.events, 20, 8)
    app.stop()
    probe.stop()
    if "P3" in only:
        p3_p4(os.path.join(WORK, "state", "p3"), big, sink, users)
    if "P3r" in only:
        redis = Redis()
        try:
            p3_p4(os.path.join(WORK, "state", "p3r"), big, sink, users, redis)
        finally:
            redis.stop()

    print(f"assetgate benchmarks, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    short = lambda cmd, n: " ".join(version(cmd).split()[:n])
    print(f"baselines: {short([vips, '--vips-version'], 2)}; {short([convert, '-version'], 3)}; "
          f"{short([wrk, '-v'], 2)}; {short(['curl', '--version'], 2)}; host: {os.path.relpath(HOST_BIN, ROOT)}")
    print()
    print("| id | what | assetgate | baseline | assetgate / baseline |")
    print("|---|---|---|---|---|")
    for pid, what, ours, base, unit, bname, ratio in RESULTS:
        b = f"{base:.3f} {unit} ({bname})" if base is not None else "-"
        r = "-" if ratio is None else f"{ratio:.2f}"
        print(f"| {pid} | {what} | {ours:.3f} {unit} | {b} | {r} |")


if __name__ == "__main__":
    main()
