"""Summarises a `py-spy record -f raw` profile of moto into buckets: where moto's busy time goes.

Usage: python pyspy_summary.py PROFILE.raw
"""

import collections
import sys

# The innermost frame (searched from the leaf upwards) that matches one of these names the bucket.
BUCKETS = [
    ("SQS queue scans (Queue.messages, every attribute per received message, datetime clock)", "moto/sqs/models.py"),
    ("service logic (moto backends, responses, serialisation)", "moto/core/responses.py"),
    ("request routing (get_backend_for_host, module scan with isdir)", "get_backend_for_host"),
    ("moto dispatch and flask", "moto/moto_server/"),
    ("moto dispatch and flask", "flask/"),
    ("in the timing middleware's frame: GIL waits (its own cost is 2 clock reads, < 1 µs)", "moto_timed.py"),
    ("HTTP server: werkzeug / http.server / sockets / logging", "werkzeug/serving.py"),
    ("HTTP server: werkzeug / http.server / sockets / logging", "socketserver.py"),
]


def bucket(frames):
    for frame in reversed(frames):
        for name, needle in BUCKETS:
            if needle in frame:
                return name
    return "other (threading, idle wakeups)"


def main(path):
    counts = collections.Counter()
    total = 0
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(" ")
        n = int(n)
        total += n
        counts[bucket(stack.split(";"))] += n
    print(f"{total} samples")
    for name, n in counts.most_common():
        print(f"{100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main(sys.argv[1])
