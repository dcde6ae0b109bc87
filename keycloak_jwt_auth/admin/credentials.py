"""An Admin API call's credentials, masked before anything else looks at its arguments.

A refused call (an empty id, a blank username...) raises while its arguments are still in the
frames of the method that was called: a plain password there would be on Django's error page
and in every error report. So each client method masks them first (``masked.mask``), and the
``Call`` builders see masked values only; the HTTP body is the one place the text is used,
and a body JSON cannot encode is refused before the HTTP library holds it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

from keycloak_jwt_auth.masked import Hidden, mask

# The members of a CredentialRepresentation that hold the secret itself.
CREDENTIAL_SECRETS = ("value", "secretData")


def secret_positions(build: Callable[..., Any]) -> tuple[int | None, str | None]:
    """Where ``build`` takes a password: its position and its keyword (or None, None)."""
    names = list(inspect.signature(build).parameters)
    return (names.index("password"), "password") if "password" in names else (None, None)


def masked_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], password_at: tuple[int | None, str | None]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A call's arguments with every credential masked (``masked.mask``): the ``password``
    argument, and each secret member of a representation's ``credentials``. It runs before any
    check, so no frame of a refused call holds a plain password; it never raises."""
    position, keyword = password_at
    masked_args = tuple(
        mask(arg) if index == position else _masked_representation(arg)
        for index, arg in enumerate(args)
    )
    masked_kwargs = {
        key: mask(value) if key == keyword else _masked_representation(value)
        for key, value in kwargs.items()
    }
    return masked_args, masked_kwargs


def _masked_representation(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    try:
        masked = dict(value)
        if "credentials" in masked:
            credentials = masked["credentials"]
            masked["credentials"] = (
                [masked_credential_members(c) for c in credentials]
                if isinstance(credentials, (list, tuple))
                else mask(credentials)
            )
        return masked
    except Exception:  # a Mapping that cannot be copied: refused as a representation later
        return Hidden(value)


def masked_credential_members(credential: Any) -> Any:
    if not isinstance(credential, Mapping):
        return mask(credential)
    return {k: mask(v) if k in CREDENTIAL_SECRETS else v for k, v in credential.items()}


def refuse_non_json(body: Any) -> None:
    """A body JSON cannot encode is refused here, not deep in the HTTP library with the
    encoded body in its frames."""
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        kind = type(exc).__name__
        raise TypeError(f"the request body is not JSON (a value JSON refuses: {kind})") from None
