"""A tiny stdlib HTTP model stand-in for tests/byo (not chaosml code): answers /infer with a fixed V2-like body.

Usage: python echo_server.py PORT. /health answers 200; GET /env/NAME answers the environment variable NAME. POST /infer answers
{"outputs": [{"data": [1]}], "version": "echo-1"} with header X-Replica.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Replica", sys.argv[1])
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/env/"):
            self._send(200, {"value": os.environ.get(self.path[5:])})
            return
        self._send(200 if self.path == "/health" else 404, {"ok": self.path == "/health"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        if self.path != "/infer":
            self._send(404, {"error": "no such path"})
            return
        ok = isinstance(body, dict) and isinstance(body.get("inputs"), list)
        self._send(200 if ok else 400, {"outputs": [{"data": [1]}, {"data": [0.1, 0.9]}], "version": "echo-1"} if ok else {"error": "bad"})


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
