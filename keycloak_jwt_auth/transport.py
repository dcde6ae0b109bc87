"""How this app talks to Keycloak over HTTP: one policy for the token request and the Admin API.

Every exchange carries the client's timeout and TLS verification; a network failure becomes the
caller's own "unavailable" error naming the cause (never a bare ``requests`` exception). What an
answer *means* is mapped by tables in ``exceptions.py`` (OAuth errors, Admin API statuses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from .conf import ClientConfig
from .exceptions import KeycloakUnavailableError

# Builds the caller's error from the reason: "timed out", "Connection refused", ...
Unavailable = Callable[[str], KeycloakUnavailableError]


def exchange(
    session: requests.Session,
    method: str,
    url: str,
    *,
    config: ClientConfig,
    unavailable: Unavailable,
    **kwargs: Any,
) -> requests.Response:
    """Send one request to Keycloak under the client's policy; no retry here."""
    try:
        return session.request(method, url, timeout=config.timeout, verify=config.verify, **kwargs)
    except requests.Timeout as exc:
        raise unavailable("timed out") from exc
    except requests.RequestException as exc:
        raise unavailable(network_cause(exc)) from exc


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
    except ValueError:
        return None
