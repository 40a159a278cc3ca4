"""A minimal Python Lambda runtime interface loop (what awslambdaric does, without the C++ client):
import the handler module (the function's init: boto3 import, client creation), then loop on the
Lambda Runtime API at $AWS_LAMBDA_RUNTIME_API: GET next, call the handler, POST response or error.
One persistent HTTP connection, like the real runtime clients.

Usage: python runtime_loop.py MODULE FUNCTION   (e.g. reference start_handler)
"""

import http.client
import importlib
import json
import os
import sys
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"


def main():
    module, function = sys.argv[1], sys.argv[2]
    handler = getattr(importlib.import_module(module), function)
    conn = http.client.HTTPConnection(API)
    while True:
        conn.request("GET", f"{BASE}/invocation/next")
        r = conn.getresponse()
        request_id = r.getheader("Lambda-Runtime-Aws-Request-Id")
        event = json.loads(r.read())
        try:
            result = handler(event, None)
            path, body = f"{BASE}/invocation/{request_id}/response", json.dumps(result)
        except Exception as e:  # noqa: BLE001 - reported to the runtime API, as Lambda does
            path = f"{BASE}/invocation/{request_id}/error"
            body = json.dumps(
                {"errorMessage": str(e), "errorType": type(e).__name__, "stackTrace": traceback.format_exc().splitlines()}
            )
        conn.request("POST", path, body=body.encode(), headers={"Content-Type": "application/json"})
        conn.getresponse().read()


if __name__ == "__main__":
    main()
