"""A loopback HTTP proxy that records every request it forwards (tests and benchmarks only).

Pointing the app's SERVER_URL at it shows exactly what crosses the wire, and counts token
requests "at Keycloak's door" for all workers at once.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    raw: bytes  # request line, headers and body, as received
    status: int


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of new connections from concurrent tasks
    # would overflow it and be reset (a write cut off like that is not retried: it fails).
    request_queue_size = 128


class RecordingProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.requests: list[Recorded] = []
        self.connections = 0  # TCP connections accepted from clients
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One send per answer and no Nagle: else delayed ACKs add ~40 ms to each request.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy.connections += 1

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                raw = self.requestline.encode() + b"\r\n" + bytes(self.headers) + body
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    upstream.request(
                        self.command, self.path, body=body or None, headers=dict(self.headers)
                    )
                    answer = upstream.getresponse()
                    payload = answer.read()
                finally:
                    upstream.close()
                proxy._record(Recorded(self.command, self.path, raw, answer.status))
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def token_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/protocol/openid-connect/token")]

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
