"""A real HTTP server on 127.0.0.1 that answers from a script and records what it receives.

Used as a fake Keycloak that misbehaves (redirects, gzip bombs, huge bodies) and as an
"attacker" host that must never receive a credential.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def raw(self) -> bytes:
        lines = [f"{self.method} {self.path}", *(f"{k}: {v}" for k, v in self.headers.items())]
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + self.body


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Script = Callable[[Received], Answer]


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up on a body it refuses is expected here


class Loopback:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.routes: dict[str, Script] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                got = Received(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                server.received.append(got)
                route = server.routes.get(self.path.split("?", 1)[0])
                answer = route(got) if route else Answer(404, b'{"error": "not scripted"}')
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def route(self, path: str, answer: Answer | Script) -> None:
        self.routes[path] = answer if callable(answer) else (lambda received: answer)

    def everything_received(self) -> bytes:
        return b"\n".join(r.raw for r in self.received)

    def __enter__(self) -> Loopback:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
