#!/usr/bin/env python3
"""A small non-Rust app behind tasksub-relay (tests and the demo): standard library only.

    python3 relay/tests/app.py --port 8080

GET /health answers 200. POST /messages receives one message per request from the relay; its answer
decides the message's fate: 2xx deletes it, 429/503 make the relay back off and retry, anything else
leaves it for redelivery. What the app does depends on the body, so tests can script it:

    fail-once...   500 the first time this SQS message ID is seen, then 200
    busy-once...   503 (Retry-After: 1) the first time, then 200
    slow:<secs>... sleep <secs> seconds, then 200
    slow-once:<secs>...   the first time this SQS message ID is seen, sleep <secs> seconds first
    late-body:<secs>...   200 and its headers at once, the body <secs> seconds later
    anything else  200 at once

Every request is printed to stdout as one JSON line: {"event": "received", ...} when it arrives and
{"event": "answered", "status": ...} when answered, with the decoded headers (see tasksub_metadata).
"""

import argparse
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

ATTR_PREFIX = "x-tasksub-attr-"


def tasksub_metadata(headers):
    """Decodes the relay's headers: message IDs, receive count, sent time and message attributes.

    Attribute names travel in header names (case-insensitive, so every byte that is not a-z, 0-9,
    '-', '_' or '.' is %XX-encoded); text values are percent-encoded UTF-8, binary values base64.
    X-Tasksub-Attribute-Types lists name=DataType pairs.
    """
    get = lambda name: headers.get(name)  # noqa: E731 (headers are case-insensitive)
    types = {}
    for pair in filter(None, (get("x-tasksub-attribute-types") or "").split(",")):
        name, _, data_type = pair.partition("=")
        types[unquote(name.strip().lower())] = unquote(data_type)
    attributes = {}
    for raw_name, value in headers.items():
        lower = raw_name.lower()
        if not lower.startswith(ATTR_PREFIX):
            continue
        name = unquote(lower[len(ATTR_PREFIX):])
        data_type = types.get(name, "String")
        if data_type.startswith("Binary"):
            decoded = base64.b64decode(value).hex()
        else:
            decoded = unquote(value)
        attributes[name] = {"type": data_type, "value": decoded}
    optional = lambda name: unquote(get(name)) if get(name) is not None else None  # noqa: E731
    return {
        "message_id": optional("x-tasksub-message-id"),
        "sns_message_id": optional("x-tasksub-sns-message-id"),
        "topic_arn": optional("x-tasksub-topic-arn"),
        "subject": optional("x-tasksub-subject"),
        "receive_count": int(get("x-tasksub-receive-count") or 0),
        "sent_time": get("x-tasksub-sent-time"),
        "delivery": get("x-tasksub-delivery"),
        "attributes": attributes,
    }


SEEN = set()
LOCK = threading.Lock()
OUT = threading.Lock()


def emit(record):
    with OUT:
        sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
        sys.stdout.flush()


class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the relay's client expects

    def log_message(self, *args):  # quiet: stdout carries the JSON lines
        pass

    def answer(self, status, extra=None):
        body = b"ok\n" if status < 300 else b"not now\n"
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200 if self.path == "/health" else 404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        meta = tasksub_metadata(self.headers)
        meta.update(body=body, content_type=self.headers.get("Content-Type"), path=self.path)
        emit(dict(meta, event="received"))
        with LOCK:
            first = meta["message_id"] not in SEEN
            SEEN.add(meta["message_id"])
        status, extra = 200, None
        if body.startswith("fail-once") and first:
            status = 500
        elif body.startswith("busy-once") and first:
            status, extra = 503, {"Retry-After": "1"}
        elif body.startswith("slow:"):
            time.sleep(float(body[5:].split()[0]))
        elif body.startswith("slow-once:") and first:
            time.sleep(float(body[10:].split()[0]))
        elif body.startswith("late-body:"):
            self.late_body(meta, float(body[10:].split()[0]))
            return
        emit(dict(meta, event="answered", status=status))
        self.answer(status, extra)

    def late_body(self, meta, delay):
        """200 and the headers now (end_headers sends them), the body after `delay` seconds."""
        payload = b"ok, at last\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        emit(dict(meta, event="answered", status=200))
        time.sleep(delay)
        try:
            self.wfile.write(payload)
        except OSError:
            pass  # the relay stopped waiting for the body: the status had decided


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), App)
    server.daemon_threads = True
    emit({"event": "listening", "port": args.port})
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
