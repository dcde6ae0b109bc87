"""How this app talks to Keycloak over HTTP: one policy for the token request and the Admin API.

- every exchange carries the client's timeout and TLS verification;
- redirects are never followed: a client assertion or a bearer token must not travel to
  wherever a ``Location`` header points;
- bodies are read up to a size cap, and a compressed body is inflated only up to that cap;
- a network failure becomes the caller's own "unavailable" error naming the cause, a refused
  answer (redirect, too large) the caller's "refused" error; neither chains the ``requests``
  exception, whose frames hold the request's headers and body (an error page or tracker that
  shows frame locals would show the assertion or the token).

What an answer *means* is mapped by tables in ``exceptions.py`` (OAuth errors, Admin API statuses).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from django.views.decorators.debug import sensitive_variables

from .conf import ClientConfig
from .exceptions import KeycloakJWTAuthError, KeycloakUnavailableError, TLSError

# Build the caller's errors: from the reason ("timed out", "Connection refused", ...), and
# from the reason and the HTTP status of an answer that is refused.
Unavailable = Callable[[str], KeycloakUnavailableError]
Refused = Callable[[str, int], KeycloakJWTAuthError]

TOKEN_BODY_LIMIT = 64 * 1024  # a token response is a few KiB
ADMIN_BODY_LIMIT = 16 * 1024 * 1024  # a page of full user representations
CHUNK = 64 * 1024
COMPRESSED = ("gzip", "x-gzip", "deflate")


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
        failure = TLSError(
            f"TLS with {urlsplit(url).netloc} failed: {network_cause(exc)}. Check VERIFY (True, or "
            "the path of the CA bundle that signed Keycloak's certificate)."
        )
    except requests.Timeout:
        failure = unavailable("timed out")
    except requests.RequestException as exc:
        failure = unavailable(network_cause(exc))
    else:
        failure = _check_answer(response, unavailable, refused, limit)
        if failure is None:
            return response
    raise failure  # raised outside the except blocks: no requests exception in its chain


def _check_answer(
    response: requests.Response, unavailable: Unavailable, refused: Refused, limit: int
) -> KeycloakJWTAuthError | None:
    """Read the body into ``response`` (inflated, at most ``limit`` bytes); the caller's error
    when the answer is refused (a redirect, a body too large or corrupt) or cut short."""
    status = response.status_code
    try:
        body = _read_at_most(response, limit)
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding in COMPRESSED:
            body = zlib.decompressobj(32 + zlib.MAX_WBITS).decompress(body, limit + 1)
        elif encoding not in ("", "identity"):
            return refused(f"answered an unsupported Content-Encoding {encoding!r}", status)
    except zlib.error as exc:
        return refused(f"answered a corrupt {encoding} body ({exc})", status)
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # cut short, timed out mid-body
        return unavailable(network_cause(exc))
    finally:
        response.close()  # a fully read connection is back in the pool; a cut one is dropped
    if len(body) > limit:
        return refused(f"answered a body larger than {limit} bytes", status)
    response._content = body
    if response.is_redirect:
        location = response.headers.get("Location", "")
        return refused(
            f"answered HTTP {status} redirecting to {location!r}; redirects are not followed "
            "(no credential follows one): configure the final URL instead",
            status,
        )
    return None


def _read_at_most(response: requests.Response, limit: int) -> bytes:
    chunks, size = [], 0
    for chunk in response.raw.stream(CHUNK, decode_content=False):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


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
