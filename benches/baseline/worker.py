"""Drives the Python baselines for the Rust benchmark, one JSON request per stdin line, one JSON reply per
stdout line (the benchmark times nothing across the pipe: every duration is measured here).

  {"op": "run", "impl": "reference"|"reference-faithful"|"lean", "phase": "start"|"stop", "tag": T, "event": E}
    -> {"ms": wall, "cpu_ms": this thread's CPU, "calls": HTTP requests sent,
        "round_trips": sequential round trips (a send while none is in flight starts one), "error": null|str}
  {"op": "probe", "tag": T}  -> the same fields, for one SQS GetQueueUrl of the queue PROBE_QUEUE
  {"op": "burst", "impl": ..., "phase": ..., "tag": T, "events": [E...], "concurrency": C}
    -> {"wall_ms", "done_ms": [per event, from the burst start], "service_ms": [...], "calls", "errors"}
  {"op": "quit"}

Added latency is applied by the timed moto (`moto_timed.py`), to every client alike; nothing here waits.

Every request a client sends carries `x-bench-tag: T` (added after signing, like the Rust side) so the
timed moto can attribute its own time to the variant. HTTP sends are counted with botocore's
`before-send` event, so retries count too.
"""

import ctypes
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

try:
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # die with the benchmark
except OSError:
    pass

_state = threading.local()
_lock = threading.Lock()
_calls = [0]
_in_flight = [0]
_round_trips = [0]


def _before_send(request, **_kwargs):
    request.headers["x-bench-tag"] = getattr(_state, "tag", "-")
    with _lock:
        _calls[0] += 1
        if _in_flight[0] == 0:
            _round_trips[0] += 1
        _in_flight[0] += 1


def _response_received(**_kwargs):
    with _lock:
        _in_flight[0] = max(0, _in_flight[0] - 1)


boto3.setup_default_session()
boto3.DEFAULT_SESSION.events.register("before-send", _before_send)
boto3.DEFAULT_SESSION.events.register("response-received", _response_received)
PROBE_SQS = boto3.client("sqs")
PROBE_QUEUE = os.environ.get("PROBE_QUEUE", "bench-probe")

import lean  # noqa: E402  (clients must be created after the hook is registered)
import reference  # noqa: E402

IMPLS = {
    "reference": (reference.start_handler, reference.stop_handler),
    "lean": (lean.start_handler, lean.stop_handler),
}


def handler(impl, phase):
    faithful = impl == "reference-faithful"
    reference.SNS_CLIENT_PER_INVOCATION = faithful
    start, stop = IMPLS["reference" if faithful else impl]
    return start if phase == "start" else stop


def probe(_event):
    PROBE_SQS.get_queue_url(QueueName=PROBE_QUEUE)


def run(req):
    fn = probe if req.get("op") == "probe" else handler(req["impl"], req["phase"])
    _state.tag = req.get("tag", "-")
    before, trips_before = _calls[0], _round_trips[0]
    error = None
    c0, t0 = time.thread_time(), time.perf_counter()
    try:
        fn(req.get("event"))
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        error = f"{type(e).__name__}: {e}"
    t1, c1 = time.perf_counter(), time.thread_time()
    return {
        "ms": (t1 - t0) * 1e3,
        "cpu_ms": (c1 - c0) * 1e3,
        "calls": _calls[0] - before,
        "round_trips": _round_trips[0] - trips_before,
        "error": error,
    }


def burst(req):
    fn = handler(req["impl"], req["phase"])
    tag = req.get("tag", "-")
    events = req["events"]
    before = _calls[0]
    t0 = time.perf_counter()
    c0 = time.process_time()

    def one(event):
        _state.tag = tag
        s = time.perf_counter()
        try:
            fn(event)
            err = None
        except Exception as e:  # noqa: BLE001
            err = f"{type(e).__name__}: {e}"
        e_ = time.perf_counter()
        return (e_ - t0) * 1e3, (e_ - s) * 1e3, err

    with ThreadPoolExecutor(max_workers=req.get("concurrency", 16)) as pool:
        results = list(pool.map(one, events))
    wall = (time.perf_counter() - t0) * 1e3
    errors = [r[2] for r in results if r[2]]
    return {
        "wall_ms": wall,
        "cpu_ms": (time.process_time() - c0) * 1e3,
        "done_ms": [r[0] for r in results],
        "service_ms": [r[1] for r in results],
        "calls": _calls[0] - before,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "quit":
            break
        reply = run(req) if op in ("run", "probe") else burst(req) if op == "burst" else {"error": f"unknown op {op}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
