"""A test issuer for ``federated_jwt``: an OpenID Connect issuer served from the test process
(discovery and JWKS over plain HTTP on 127.0.0.1, one RSA key) that mints Kubernetes-like
service-account tokens, and ``ProjectedToken``, which writes them to a directory the way the
kubelet writes a projected ``serviceAccountToken`` volume.

The kubelet's layout (its "atomic writer"): each version of the volume is a timestamped
directory ``..2026_12_04_22_30_00.123456789``; ``..data`` is a symlink to the current one,
replaced by renaming a new symlink over it; ``token`` is a stable symlink to ``..data/token``.
So the path the app reads never changes, while the file behind it does: only a ``stat()`` that
follows the links sees a new token.

    with TestIssuer() as issuer:
        projected = ProjectedToken(tmp_path, issuer, audience=realm_issuer)
        projected.rotate()          # a new token, as the kubelet writes it
        settings = {"AUTH_METHOD": "federated_jwt", "ASSERTION_FILE": projected.path, ...}

Needs ``cryptography`` (the RSA key).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"  # where a Kubernetes API server serves its keys


class TestIssuer:
    """An OIDC issuer at ``http://127.0.0.1:PORT`` (``url``, its ``iss``): discovery + JWKS.
    ``port`` 0 picks a free one. ``jwks_requests`` counts the JWKS reads (Keycloak's)."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, *, port: int = 0) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:16]
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self.jwks_requests = 0
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> TestIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<TestIssuer {self.url}>"

    def start(self) -> TestIssuer:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler(self))
        self._server.daemon_threads = True
        self._port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self._port}"
        threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def jwks_url(self) -> str:
        return f"{self.url}{JWKS_PATH}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_url,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def mint(
        self,
        subject: str,
        audience: str | list[str],
        *,
        lifetime: int = 3600,
        issued_at: float | None = None,
        **claims: Any,
    ) -> str:
        """A signed JWT from this issuer: ``iss``, ``sub``, ``aud``, ``iat``, ``nbf``, ``exp``,
        a new ``jti``, and ``claims`` on top (None removes a claim)."""
        now = int(time.time() if issued_at is None else issued_at)
        body: dict[str, Any] = {
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        body = {key: value for key, value in body.items() if value is not None}
        return jwt.encode(body, self._key, algorithm="RS256", headers={"kid": self.kid})

    def service_account_token(
        self,
        namespace: str,
        name: str,
        audience: str,
        *,
        lifetime: int = 3600,
        issued_at: float | None = None,
    ) -> str:
        """A token shaped like a projected service-account token (``aud`` a list of one, the
        ``kubernetes.io`` claims of a pod's service account)."""
        pod = f"{name}-{uuid.uuid4().hex[:5]}"
        kubernetes = {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": str(uuid.uuid4())},
            "pod": {"name": pod, "uid": str(uuid.uuid4())},
        }
        return self.mint(
            f"system:serviceaccount:{namespace}:{name}",
            [audience],
            lifetime=lifetime,
            issued_at=issued_at,
            **{"kubernetes.io": kubernetes},
        )


class ProjectedToken:
    """A projected service-account token volume in ``directory``, as the kubelet keeps it;
    ``path`` (``directory/token``) is what the pod reads. ``rotate()`` writes a new token."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        issuer: TestIssuer,
        *,
        audience: str,
        namespace: str = "default",
        service_account: str = "django-service",
        lifetime: int = 3600,
    ) -> None:
        self.directory = Path(directory)
        self.issuer = issuer
        self.audience = audience
        self.namespace, self.service_account = namespace, service_account
        self.lifetime = lifetime
        self.rotations = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rotate()
        (self.directory / "token").symlink_to("..data/token")

    @property
    def path(self) -> str:
        return str(self.directory / "token")

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def rotate(self, token: str | None = None, *, issued_at: float | None = None) -> str:
        """Write ``token`` (default: a new one from the issuer) as the kubelet does: a new
        timestamped directory, ``..data`` swapped to it by a rename, the old one removed."""
        token = token or self.issuer.service_account_token(
            self.namespace,
            self.service_account,
            self.audience,
            lifetime=self.lifetime,
            issued_at=issued_at,
        )
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.%f")
        version = self.directory / f"{stamp}{self.rotations:03d}"
        version.mkdir()
        (version / "token").write_text(token)
        data, new_link = self.directory / "..data", self.directory / "..data_tmp"
        old = os.readlink(data) if data.is_symlink() else None
        new_link.symlink_to(version.name)
        os.replace(new_link, data)  # the swap: atomic, the path "token" never disappears
        if old is not None:
            shutil.rmtree(self.directory / old)
        self.rotations += 1
        return token


def _handler(issuer: TestIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            answers: Mapping[str, Any] = {DISCOVERY_PATH: issuer.discovery, JWKS_PATH: issuer.jwks}
            path = self.path.split("?")[0]
            if path == JWKS_PATH:
                issuer.jwks_requests += 1
            answer = answers.get(path)
            body = json.dumps(answer() if answer else {"error": "not found"}).encode()
            self.send_response(200 if answer else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
