"""A stdlib stand-in for a V2 model server needing three ports (not chaosml code): HTTP, a TCP "grpc" listener, metrics.

Usage: python three_port_server.py --http PORT --grpc PORT --metrics PORT. Like MLServer or Triton it
refuses to start (exit 2, a message on stderr) when a port is missing or taken. HTTP: GET
/v2/health/ready answers 200; POST /v2/models/m/infer answers a V2 body with two named outputs
(``predict`` and ``predict_proba``); GET /ports answers the three ports it serves. The grpc port
accepts connections and closes them; the metrics port answers GET /metrics with a Prometheus line.
"""

import argparse
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("http", "grpc", "metrics"):
        parser.add_argument(f"--{name}", type=int)
    args = parser.parse_args()
    missing = [n for n in ("http", "grpc", "metrics") if not getattr(args, n)]
    if missing:
        print(f"error: no port for {', '.join(missing)}: this server needs --http, --grpc and --metrics", file=sys.stderr)
        return 2
    ports = {"http": args.http, "grpc": args.grpc, "metrics": args.metrics}

    class Http(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/v2/health/ready":
                self._send(200, {"ready": True})
            elif self.path == "/ports":
                self._send(200, ports)
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            if self.path != "/v2/models/m/infer" or not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
                self._send(400, {"error": "bad request"})
                return
            wanted = [o.get("name") for o in body.get("outputs") or [] if isinstance(o, dict)]
            outputs = [{"name": "predict", "datatype": "INT64", "shape": [1], "data": [1]},
                       {"name": "predict_proba", "datatype": "FP64", "shape": [1, 2], "data": [0.2, 0.8]}]
            self._send(200, {"model_name": "m", "model_version": "three-port-1",
                             "outputs": [o for o in outputs if not wanted or o["name"] in wanted]})

    class Metrics(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            data = b"requests_total 0\n"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    try:
        http = ThreadingHTTPServer(("127.0.0.1", args.http), Http)
        metrics = ThreadingHTTPServer(("127.0.0.1", args.metrics), Metrics)
        grpc = socket.create_server(("127.0.0.1", args.grpc))
    except OSError as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        return 2

    def serve_grpc():
        while True:
            conn, _ = grpc.accept()
            conn.close()

    for target in (metrics.serve_forever, serve_grpc):
        threading.Thread(target=target, daemon=True).start()
    http.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
