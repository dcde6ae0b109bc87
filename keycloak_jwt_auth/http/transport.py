"""How this app talks to Keycloak over HTTP: one policy for the token request and the Admin API.

- every exchange carries the client's timeout and TLS verification;
- redirects are never followed: a client assertion or a bearer token must not travel to
  wherever a ``Location`` header points;
- bodies are read up to a size cap, and a compressed body is inflated only up to that cap;
- a network failure becomes the caller's own "unavailable" error naming the cause, a refused
  answer (redirect, too large) the caller's "refused" error; neither chains the ``requests``
  exception, whose frames hold the request's headers and body (an error page or tracker that
  shows frame locals would show the assertion or the token).

What an answer *means* is mapped by tables in ``exceptions.py`` (OAuth errors, Admin API statuses)
and by the token flow. ``run_flow`` here and ``async_transport.arun_flow`` are the two drivers of
the sans-IO token flow (``tokens/flow.py``): the same decisions, sent with requests or httpx.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.exceptions import KeycloakJWTAuthError, KeycloakUnavailableError, TLSError
from keycloak_jwt_auth.http.steps import Pause, Pump, Reply, Send
from keycloak_jwt_auth.settings import ClientConfig

# Build the caller's errors: from the reason ("timed out", "Connection refused", ...), and
# from the reason and the HTTP status of an answer that is refused.
Unavailable = Callable[[str], KeycloakUnavailableError]
Refused = Callable[[str, int], KeycloakJWTAuthError]

T = TypeVar("T")

TOKEN_BODY_LIMIT = 64 * 1024  # a token response is a few KiB
ADMIN_BODY_LIMIT = 16 * 1024 * 1024  # a page of full user representations
CHUNK = 64 * 1024
# A refused answer read before a retry (a 401 for an expired token): only its first bytes.
REFUSED_BODY_LIMIT = 64 * 1024
COMPRESSED = ("gzip", "x-gzip", "deflate")
REDIRECTS = (301, 302, 303, 307, 308)


@sensitive_variables()
def exchange(
    session: requests.Session,
    method: str,
    url: str,
    *,
    config: ClientConfig,
    unavailable: Unavailable,
    refused: Refused,
    limit: int,
    **kwargs: Any,
) -> requests.Response:
    """Send one request to Keycloak under the client's policy; no retry, no redirect. The
    answer's body is already read (at most ``limit`` bytes, inflated)."""
    failure: KeycloakJWTAuthError | None
    try:
        response = session.request(
            method,
            url,
            timeout=config.timeout,
            verify=config.verify,
            allow_redirects=False,
            stream=True,
            **kwargs,
        )
    except requests.exceptions.SSLError as exc:
        failure = tls_error(url, network_cause(exc))
    except requests.Timeout:
        failure = unavailable("timed out")
    except requests.RequestException as exc:
        failure = unavailable(network_cause(exc))
    else:
        failure = _read_into(response, unavailable, refused, limit)
        if failure is None:
            return response
    raise failure  # raised outside the except blocks: no requests exception in its chain


def run_flow(
    flow: Generator[Send | Pause, Reply | None, T],
    session: requests.Session,
    config: ClientConfig,
    *,
    on_pause: Callable[[], None] | None = None,
) -> T:
    """Pump a sans-IO flow with requests: each ``Send`` goes out under the policy above (its
    error thrown back into the flow), each ``Pause`` is slept and followed by ``on_pause`` (a
    caller holding a cross-process lock extends it there); the flow's result is returned."""
    pump = Pump(flow, on_pause)
    for step in pump:
        with pump.answering():
            if isinstance(step, Pause):
                time.sleep(step.seconds)
            else:
                answer = exchange(session, step.method, step.url, config=config, **step.options())
                pump.reply = Reply(answer.status_code, answer.headers, answer.content, answer.url)
    return pump.result


def _read_into(
    response: requests.Response, unavailable: Unavailable, refused: Refused, limit: int
) -> KeycloakJWTAuthError | None:
    """Read the answer's body into ``response``; the caller's error when it is cut short or
    refused (see ``judge``)."""
    try:
        raw = read_at_most(response.raw.stream(CHUNK, decode_content=False), limit)
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # cut short, timed out mid-body
        return unavailable(network_cause(exc))
    finally:
        response.close()  # a fully read connection is back in the pool; a cut one is dropped
    response._content, failure = judge(
        response.status_code, response.headers, raw, refused=refused, limit=limit
    )
    return failure


def read_refused(response: requests.Response) -> None:
    """Read a refused answer before its request is retried, capped like every other answer:
    at most ``REFUSED_BODY_LIMIT`` bytes read, and inflated (a gzip bomb) no further."""
    try:
        raw = read_at_most(response.raw.stream(CHUNK, decode_content=False), REFUSED_BODY_LIMIT)
    except (urllib3.exceptions.HTTPError, OSError):
        raw = b""
    finally:
        response.close()  # a cut connection is dropped, not pooled
    response._content = refused_body(response.status_code, response.headers, raw)


def refused_body(status: int, headers: Mapping[str, str], raw: bytes) -> bytes:
    """``raw`` inflated up to ``REFUSED_BODY_LIMIT``; nothing when it is larger or unreadable
    (it is kept only for the response's history)."""
    body, failure = judge(
        status,
        headers,
        raw,
        refused=lambda reason, _: KeycloakJWTAuthError(reason),
        limit=REFUSED_BODY_LIMIT,
    )
    return b"" if failure is not None else body


def read_at_most(chunks: Iterable[bytes], limit: int) -> bytes:
    """The raw body, stopping once it is over ``limit`` bytes (the caller then refuses it)."""
    read, size = [], 0
    for chunk in chunks:
        read.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(read)


def judge(
    status: int, headers: Mapping[str, str], raw: bytes, *, refused: Refused, limit: int
) -> tuple[bytes, KeycloakJWTAuthError | None]:
    """The body, inflated up to ``limit``; and the caller's error when the answer is refused:
    too large, compressed in a way we do not read, corrupt, or a redirect."""
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", *COMPRESSED):
        return b"", refused(f"answered an unsupported Content-Encoding {encoding!r}", status)
    try:
        inflate = encoding in COMPRESSED
        body = (
            zlib.decompressobj(32 + zlib.MAX_WBITS).decompress(raw, limit + 1) if inflate else raw
        )
    except zlib.error as exc:
        return b"", refused(f"answered a corrupt {encoding} body ({exc})", status)
    if len(body) > limit:
        return b"", refused(f"answered a body larger than {limit} bytes", status)
    if status in REDIRECTS and "Location" in headers:
        return body, refused(
            f"answered HTTP {status} redirecting to {headers['Location']!r}; redirects are not "
            "followed (no credential follows one): configure the final URL instead",
            status,
        )
    return body, None


# What OpenSSL says when the other end answers a TLS hello in plain HTTP.
PLAIN_HTTP_SYMPTOMS = ("wrong version number", "record layer failure", "packet length too long")


def tls_error(url: str, cause: str) -> TLSError:
    where = urlsplit(url).netloc
    if any(symptom in cause.lower() for symptom in PLAIN_HTTP_SYMPTOMS):
        return TLSError(
            f"TLS with {where} failed: {cause}. The port seems to speak plain HTTP: check the "
            "scheme and the port of SERVER_URL (https:// to an http:// port fails this way).",
            plain_http=True,
        )
    return TLSError(
        f"TLS with {where} failed: {cause}. Check VERIFY (True, or the path of "
        "the CA bundle that signed Keycloak's certificate)."
    )


def url_origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port filled in: where a credential may go."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def network_cause(exc: BaseException) -> str:
    """The innermost readable reason of a requests/urllib3 error, e.g. 'Connection refused'."""
    reason: Any = exc
    while True:
        inner = getattr(reason, "reason", None) or (reason.args[0] if reason.args else None)
        if not isinstance(inner, BaseException) or inner is reason:
            break
        reason = inner
    text = str(reason)
    # urllib3 prefixes '<urllib3.connection.HTTPConnection object at 0x...>: '.
    return text.split(">: ", 1)[-1] if text.startswith("<") else text


def json_body(response: requests.Response) -> Any:
    """The decoded JSON body, or None when there is none (an HTML page, an empty body...)."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None
