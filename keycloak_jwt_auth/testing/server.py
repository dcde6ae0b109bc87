"""The fake's HTTP shell: ``FakeKeycloak``, a threaded HTTP server on 127.0.0.1 that routes each
request to the token endpoint or the Admin API (which answer without any I/O), counts what it
received, fails on purpose, and gives the settings that point the app at it."""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from keycloak_jwt_auth.testing.admin_api import AdminApi
from keycloak_jwt_auth.testing.dpop import ProofChecker
from keycloak_jwt_auth.testing.realm import FakeClient, Realm
from keycloak_jwt_auth.testing.token_endpoint import TokenEndpoint
from keycloak_jwt_auth.testing.wire import Answer

FAULTS = ("down", "slow", "5xx", "html")


class FakeKeycloak(Realm):
    """A realm (``Realm``: what a test arranges and inspects) served over HTTP with its token
    endpoint and Admin API; see the package's docstring. ``clients``: the realm's clients
    (default: one ``client_secret_jwt`` client ``django-service`` with a random secret and the
    Admin API's read roles). ``password_min_length``: the realm's password policy "length"
    (None: none). ``port``: where to listen (0: a free port)."""

    listening: ClassVar[set[str]] = set()  # the URLs of the fakes started and not stopped

    def __init__(
        self,
        *,
        realm: str = "demo",
        clients: list[FakeClient] | None = None,
        token_lifespan: int = 300,
        password_min_length: int | None = None,
        port: int = 0,
    ) -> None:
        self._options: dict[str, Any] = {
            "realm": realm,
            "clients": copy.deepcopy(clients),  # what reset() restores
            "token_lifespan": token_lifespan,
            "password_min_length": password_min_length,
        }
        self._server: ThreadingHTTPServer | None = None
        self._port = port  # 0: any free port
        self._begin(copy.deepcopy(clients))

    def _begin(self, clients: list[FakeClient] | None) -> None:
        """The realm and counters of a new fake (the server, if any, keeps listening)."""
        options = self._options
        clients = clients or [FakeClient("django-service", secret=secrets.token_urlsafe(32))]
        super().__init__(
            options["realm"],
            clients,
            token_lifespan=options["token_lifespan"],
            password_min_length=options["password_min_length"],
        )
        self.received: list[tuple[str, str]] = []  # (method, path) of every request
        self.slow_seconds = 3.0
        self._tokens = TokenEndpoint(self)
        self._admin = AdminApi(self, self._tokens.verify_token)
        self._fault: tuple[str, int | None] | None = None
        if self._port:
            self.serve_at(f"http://127.0.0.1:{self._port}")

    def reset(self) -> None:
        """Be a new fake on the same port: the clients it was made with (default ones get a new
        secret, so no token cached for an earlier test matches), no users, nothing received,
        healthy, Keycloak's own clock."""
        if self._is_down():
            self.fail(None)
        self._begin(copy.deepcopy(self._options["clients"]))

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "(stopped)"
        return f"<FakeKeycloak {where} realm={self.realm!r}>"

    @property
    def port(self) -> int:
        """The port it listens on (0 before it first starts on a free one)."""
        return self._port

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeKeycloak:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeKeycloak:
        """Serve, on ``port`` (or the port it had before, if it had one)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler(self))
        self._server.daemon_threads = True
        self._port = int(self._server.server_address[1])
        self.serve_at(f"http://127.0.0.1:{self._port}")
        self._wakeup = socket.socketpair()
        self._serving = threading.Thread(
            target=_serve_until_woken,
            args=(self._server, self._wakeup[0]),
            name="fake-keycloak",
            daemon=True,
        )
        self._serving.start()
        FakeKeycloak.listening.add(self.url)
        return self

    def stop(self) -> None:
        """Stop listening, at once (``shutdown()`` would wait for its 0.5 s poll)."""
        FakeKeycloak.listening.discard(self.url)
        self._close()

    def _close(self) -> None:
        if self._server is not None:
            self._wakeup[1].send(b"x")
            self._serving.join()
            self._server.server_close()
            for end in self._wakeup:
                end.close()
            self._server = None

    # --- what it received, its settings, its clock and tokens ---------------------------------

    @property
    def token_requests(self) -> int:
        """POSTs to the token endpoint so far, refused ones included."""
        path = urlsplit(self.token_endpoint).path
        return sum(1 for method, p in list(self.received) if method == "POST" and p == path)

    @property
    def exchanges(self) -> list[tuple[str, str | None]]:
        """(client id, audience) of every token exchange it granted so far."""
        return list(self._tokens.exchanges)

    def settings(self, client_id: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A ``KEYCLOAK_JWT_AUTH`` dict for ``client_id`` (default: the first client) here."""
        client = self.client(client_id)
        own: dict[str, Any] = {
            "SERVER_URL": self.url,
            "REALM": self.realm,
            "CLIENT_ID": client.client_id,
        }
        if client.federated_issuer is not None:  # ASSERTION_FILE/_PROVIDER: the test's own
            own["AUTH_METHOD"] = "federated_jwt"
        elif client.uses_keys:
            own |= {"AUTH_METHOD": "private_key_jwt", "PRIVATE_KEY": client.private_key}
            own["ALGORITHM"] = client.algorithm or "RS256"
        else:
            own |= {"CLIENT_SECRET": client.secret, "ALGORITHM": client.algorithm or "HS256"}
        return {**own, **overrides}

    @property
    def clock(self) -> Callable[[], float]:
        """Keycloak's clock (replace it to test clock skew)."""
        return self._tokens.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._tokens.clock = clock

    def verify_token(self, token: str) -> dict[str, Any]:
        """The claims of an access token this fake issued; ``jwt.PyJWTError`` otherwise."""
        return self._tokens.verify_token(token)

    @property
    def dpop(self) -> ProofChecker:
        """Its DPoP proof checks (``fake.dpop.nonce_mode = True``: nonces demanded)."""
        return self._tokens.proofs

    # --- faults --------------------------------------------------------------------------

    def fail(self, fault: str | None, *, status: int | None = None) -> None:
        """From now on: ``"down"`` (connections refused), ``"slow"`` (each answer waits
        ``slow_seconds``), ``"5xx"`` (503 with Keycloak's JSON error), ``"html"`` (an HTML page
        with ``status``, default 200, as a proxy or a login portal answers); None: healthy."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)} or None, not {fault!r}")
        was_down = self._is_down()
        self._fault = None if fault is None else (fault, status)
        if fault == "down" and not was_down:
            self._close()  # still a fake's URL for the keycloak_offline guard
        elif fault != "down" and was_down:
            self.start()  # on the same port

    @contextlib.contextmanager
    def failing(self, fault: str, *, status: int | None = None) -> Iterator[FakeKeycloak]:
        """``fail(fault)`` for the ``with`` block, healthy again after it."""
        self.fail(fault, status=status)
        try:
            yield self
        finally:
            self.fail(None)

    def _is_down(self) -> bool:
        return self._fault is not None and self._fault[0] == "down"

    def _faulty_answer(self) -> Answer | None:
        fault = self._fault
        if fault is None:
            return None
        kind, status = fault
        if kind == "slow":
            time.sleep(self.slow_seconds)
            return None
        if kind == "5xx":
            return Answer(status or 503, {"error": "unknown_error"})
        page = b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
        return Answer(status or 200, page, "text/html;charset=utf-8")


# --- HTTP ----------------------------------------------------------------------------------------


def _serve_until_woken(server: ThreadingHTTPServer, wakeup: socket.socket) -> None:
    """Accept connections until ``wakeup`` is readable."""
    with selectors.DefaultSelector() as selector:
        selector.register(server, selectors.EVENT_READ)
        selector.register(wakeup, selectors.EVENT_READ)
        while True:
            ready = {key.fileobj for key, _ in selector.select()}
            if wakeup in ready:
                return
            server.handle_request()  # the listening socket is readable: does not block


def _encoded(body: Any) -> bytes:
    if body is None:
        return b""
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _handler(fake: FakeKeycloak) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeKeycloak"

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if fake._is_down():
                self.close_connection = True  # a kept-alive connection: dropped, unanswered
                return
            url = urlsplit(self.path)
            fake.received.append((self.command, url.path))
            answer = fake._faulty_answer() or self._route(url.path, url.query, body)
            self._send(answer)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def _route(self, path: str, query: str, body: bytes) -> Answer:
            params = {k: v[0] for k, v in parse_qs(query).items()}
            realm_prefix = f"/realms/{fake.realm}"
            admin_prefix = f"/admin/realms/{fake.realm}"
            if path == urlsplit(fake.token_endpoint).path and self.command == "POST":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                return fake._tokens.token(form, self.headers.get("DPoP"))
            if path == f"{realm_prefix}/.well-known/openid-configuration":
                return Answer(200, fake._tokens.discovery())
            if path == admin_prefix or path.startswith(f"{admin_prefix}/"):
                bearer = fake.dpop.admin_token(
                    self.headers.get("Authorization", ""),
                    self.headers.get("DPoP"),
                    self.command,
                    f"{fake.url}{path}",
                    fake.verify_token,
                )
                if isinstance(bearer, Answer):
                    return bearer
                admin_path = path[len(admin_prefix) :]
                return fake._admin.answer(self.command, admin_path, params, bearer, body)
            if path.startswith(("/realms/", "/admin/realms/")) and not path.startswith(
                (f"{realm_prefix}/", f"{admin_prefix}/")
            ):
                return Answer(404, {"error": "Realm does not exist"})
            return Answer(404, {"error": "HTTP 404 Not Found"})

        def _send(self, answer: Answer) -> None:
            body = _encoded(answer.body)
            self.send_response(answer.status)
            if answer.body is not None:
                self.send_header("Content-Type", answer.content_type)
            if answer.location is not None:
                self.send_header("Location", answer.location)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def date_time_string(self, timestamp: float | None = None) -> str:
            return super().date_time_string(fake.clock() if timestamp is None else timestamp)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
