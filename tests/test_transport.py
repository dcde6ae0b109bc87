"""One HTTP policy for every request to Keycloak, tried against real loopback servers: no
redirect is followed, bodies are capped (compressed ones too), TLS failures say so."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth import (
    AdminAPIError,
    InvalidTokenResponseError,
    KeycloakAdmin,
    TokenEndpointUnavailableError,
    get_access_token,
)
from keycloak_jwt_auth.exceptions import TLSError

from .loopback import Answer, Loopback

TOKEN_PATH = "/realms/demo/protocol/openid-connect/token"
USERS_PATH = "/admin/realms/demo/users"


def token_answer(value: str = "loopback-token") -> Answer:
    body = {"access_token": value, "expires_in": 300, "token_type": "Bearer"}
    return Answer(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.fixture
def keycloak() -> Iterator[Loopback]:
    with Loopback() as server:
        server.route(TOKEN_PATH, token_answer())
        with override_settings(
            KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, "SERVER_URL": server.url}
        ):
            yield server


@pytest.fixture
def attacker() -> Iterator[Loopback]:
    with Loopback() as server:
        server.route("/steal", Answer(401, b"{}"))
        yield server


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_the_token_endpoint_is_not_redirected(
    keycloak: Loopback, attacker: Loopback, status: int
) -> None:
    keycloak.route(TOKEN_PATH, Answer(status, b"", {"Location": f"{attacker.url}/steal"}))
    with pytest.raises(InvalidTokenResponseError) as info:
        get_access_token()
    assert f"redirecting to '{attacker.url}/steal'" in str(info.value)
    assert info.value.status == status
    assert attacker.received == []  # no assertion went there
    assert len(keycloak.received) == 1  # a 3xx is not retried


def test_the_admin_api_is_not_redirected(keycloak: Loopback, attacker: Loopback) -> None:
    keycloak.route(USERS_PATH, Answer(302, b"", {"Location": f"{attacker.url}/steal"}))
    with pytest.raises(AdminAPIError) as info:
        KeycloakAdmin().users()
    assert f"redirecting to '{attacker.url}/steal'" in str(info.value)
    assert attacker.received == []  # no bearer token went there


def gzip_bomb(megabytes: int) -> bytes:
    return gzip.compress(b"{" + b" " * (megabytes << 20), compresslevel=9)


@pytest.mark.parametrize("path", [TOKEN_PATH, USERS_PATH])
def test_a_gzip_bomb_is_refused_without_inflating_it(keycloak: Loopback, path: str) -> None:
    bomb = gzip_bomb(64)  # ~64 KiB on the wire, 64 MiB inflated
    keycloak.route(path, Answer(200, bomb, {"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        with pytest.raises((InvalidTokenResponseError, AdminAPIError), match="larger than"):
            KeycloakAdmin().users() if path == USERS_PATH else get_access_token()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20  # the cap (16 MiB for the Admin API), not the bomb's 64 MiB


def test_an_oversized_token_response_is_refused(keycloak: Loopback) -> None:
    keycloak.route(TOKEN_PATH, Answer(200, b'{"access_token": "' + b"a" * (1 << 20) + b'"}'))
    with pytest.raises(InvalidTokenResponseError, match="larger than 65536 bytes"):
        get_access_token()


def test_a_compressed_token_response_within_the_cap_is_read(keycloak: Loopback) -> None:
    body = json.dumps({"access_token": "zipped", "expires_in": 300, "token_type": "Bearer"})
    keycloak.route(
        TOKEN_PATH, Answer(200, gzip.compress(body.encode()), {"Content-Encoding": "gzip"})
    )
    assert get_access_token() == "zipped"
    assert keycloak.received[0].headers["Accept-Encoding"] == "identity"


def test_an_identity_encoded_token_response_is_read(keycloak: Loopback) -> None:
    body = json.dumps({"access_token": "plain", "expires_in": 300, "token_type": "Bearer"})
    keycloak.route(TOKEN_PATH, Answer(200, body.encode(), {"Content-Encoding": "identity"}))
    assert get_access_token() == "plain"


def test_an_unknown_content_encoding_is_refused(keycloak: Loopback) -> None:
    keycloak.route(TOKEN_PATH, Answer(200, b"\x00\x01", {"Content-Encoding": "br"}))
    with pytest.raises(InvalidTokenResponseError, match="unsupported Content-Encoding 'br'"):
        get_access_token()


class CountingListener:
    """A TCP listener that speaks no TLS: counts the connections it accepts."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted += 1
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            connection.close()


def test_a_tls_failure_says_tls_and_is_not_retried() -> None:
    plain = CountingListener()
    custom = {**settings.KEYCLOAK_JWT_AUTH, "SERVER_URL": f"https://127.0.0.1:{plain.port}"}
    try:
        with override_settings(KEYCLOAK_JWT_AUTH=custom), pytest.raises(TLSError) as info:
            get_access_token()
    finally:
        plain.socket.close()
    assert str(info.value).startswith(f"TLS with 127.0.0.1:{plain.port} failed")
    # a plain-HTTP port: the scheme or the port is wrong, not VERIFY
    assert "check the scheme and the port of SERVER_URL" in str(info.value)
    assert plain.accepted == 1  # RETRIES = 2, but a TLS failure is no outage


def test_errors_do_not_chain_the_requests_exception() -> None:
    custom = {**settings.KEYCLOAK_JWT_AUTH, "SERVER_URL": "http://127.0.0.1:9", "RETRIES": 0}
    with override_settings(KEYCLOAK_JWT_AUTH=custom), pytest.raises(Exception) as info:
        get_access_token()
    error: Any = info.value
    assert error.__cause__ is None and error.__context__ is None
    assert "Connection refused" in str(error)


def test_a_body_cut_short_is_an_outage_and_retried() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port, answered = listener.getsockname()[1], []

    def serve() -> None:
        for _ in range(3):
            connection, _ = listener.accept()
            connection.recv(65536)
            answered.append(1)
            connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"access')
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    custom = {**settings.KEYCLOAK_JWT_AUTH, "SERVER_URL": f"http://127.0.0.1:{port}"}
    try:
        with (
            override_settings(KEYCLOAK_JWT_AUTH=custom),
            pytest.raises(TokenEndpointUnavailableError),
        ):
            get_access_token()
    finally:
        listener.close()
    assert len(answered) == 3  # RETRIES = 2: a cut-short answer is worth another try
