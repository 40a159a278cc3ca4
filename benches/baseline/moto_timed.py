"""moto_server, exactly as `moto_server -H HOST -p PORT` runs it, plus a timing middleware.

The middleware records, for every request, the time moto's WSGI application spent on it (wall clock and
the serving thread's CPU time), keyed by the `x-bench-tag` request header (set by the benchmark clients
to name the variant that sent the request) and by `service:Action`. It adds two perf_counter and two
thread_time calls per request; everything else is moto's own `DomainDispatcherApplication` served by
werkzeug's threaded server with moto's request handler, as in `moto.server.main`.

Added latency (a stand-in for the network and service time of real AWS, which loopback moto lacks): with
a delay set, every request waits that long in its own serving thread *before* it enters moto's
application. werkzeug serves each connection in its own thread and `time.sleep` releases the GIL, so
requests in flight at the same time wait concurrently, as they would on separate connections to AWS;
only moto's own work on them is serialised (by the GIL), as before. The delay is applied here, in the
server, so it is the same for every client (Rust SDK, boto3) by construction; it is not part of the
recorded moto app time. Requests whose `x-bench-tag` starts with an exempt prefix are not delayed (the
benchmarks' own setup and feeding traffic).

Admin endpoints (never reach moto):
  GET  /__bench/stats  -> {"tag": {"service:Action": {"n", "wall_ms_sum", "wall_ms_median", "cpu_ms_sum", ...}}}
  POST /__bench/reset  -> clears the records
  GET  /__bench/pid    -> the server's pid
  POST /__bench/latency?ms=N[&exempt=prefix1,prefix2]  -> sets the added delay (and the exempt tag prefixes)

Usage: python moto_timed.py -H 127.0.0.1 -p PORT [--added-latency-ms N]
"""

import argparse
import ctypes
import io
import json
import os
import re
import signal
import statistics
import sys
import threading
import time
from urllib.parse import parse_qs

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


def _die_with_parent():
    """Stops this server when the benchmark that started it goes away, however it ends."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Timed:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.records = {}
        self.delay_s = 0.0
        self.exempt = ()

    def _action(self, environ):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        m = _SERVICE.search(auth)
        service = m.group(1) if m else "?"
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return f"{service}:{target.rsplit('.', 1)[-1]}"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
        if action == "?":
            action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", ["?"])[0]
        return f"{service}:{action}"

    def _admin(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/__bench/reset":
            with self.lock:
                self.records = {}
            body = b"{}"
        elif path == "/__bench/latency":
            q = parse_qs(environ.get("QUERY_STRING", ""))
            self.delay_s = float(q.get("ms", ["0"])[0]) / 1000.0
            self.exempt = tuple(p for p in q.get("exempt", [""])[0].split(",") if p)
            body = json.dumps({"ms": self.delay_s * 1000.0, "exempt": list(self.exempt)}).encode()
        elif path == "/__bench/pid":
            body = json.dumps({"pid": os.getpid()}).encode()
        else:
            with self.lock:
                snapshot = {t: {k: list(v) for k, v in a.items()} for t, a in self.records.items()}
            out = {}
            for tag, actions in snapshot.items():
                out[tag] = {}
                for key, samples in actions.items():
                    walls = [s[0] for s in samples]
                    cpus = [s[1] for s in samples]
                    out[tag][key] = {
                        "n": len(samples),
                        "wall_ms_sum": sum(walls),
                        "wall_ms_median": statistics.median(walls),
                        "cpu_ms_sum": sum(cpus),
                        "cpu_ms_median": statistics.median(cpus),
                    }
            body = json.dumps(out).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/__bench/"):
            return self._admin(environ, start_response)
        tag = environ.get("HTTP_X_BENCH_TAG", "-")
        key = self._action(environ)
        delay = self.delay_s
        if delay and not tag.startswith(self.exempt):
            time.sleep(delay)  # in this request's own thread, GIL released: concurrent requests overlap
        t0, c0 = time.perf_counter(), time.thread_time()
        result = self.app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        wall, cpu = (time.perf_counter() - t0) * 1e3, (time.thread_time() - c0) * 1e3
        with self.lock:
            self.records.setdefault(tag, {}).setdefault(key, []).append((wall, cpu))
        return [body]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--added-latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    _die_with_parent()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    timed = Timed(app)
    timed.delay_s = args.added_latency_ms / 1000.0
    run_simple(args.host, args.port, timed, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
