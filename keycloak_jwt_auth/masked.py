"""``Masked``: a string that never shows itself in a ``repr``; ``mask``: any value made so.

Django's technical 500 page and error trackers show every frame's local variables through
``repr()``, and while ``DEBUG`` is True Django hides none of them (``sensitive_variables`` only
works with ``DEBUG`` off). So the client secret, the private keys, each client assertion, each
access token and each password given to the Admin API is held as a ``Masked`` from the moment
it enters the app. It is still a ``str``: requests, PyJWT and ``json`` use it as the value it
is. A secret that is not a string (bytes, a number, a list...) is held as a ``Hidden``: it is
refused before it is used, and no frame in between can show it.
"""

from __future__ import annotations

from typing import Any


class Masked(str):
    __slots__ = ()

    def __repr__(self) -> str:
        return "'********'"


class MaskedBytes(bytes):
    """``Masked`` for bytes: an HMAC key as the signing library holds it in its frames."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "b'********'"


class Hidden:
    """A secret of the wrong type, kept out of sight: only its type's name shows."""

    __slots__ = ("kind", "value")

    def __init__(self, value: Any) -> None:
        self.value, self.kind = value, type(value).__name__

    def __repr__(self) -> str:
        return f"<{self.kind}, not shown>"

    def __bool__(self) -> bool:
        return True  # only non-empty values are hidden (see mask)


def mask(value: Any) -> Any:
    """``value`` held so that no ``repr`` shows it: a string as a ``Masked``, a list or tuple
    item by item, anything else non-empty as a ``Hidden``. Never raises."""
    if isinstance(value, (Masked, Hidden)) or value is None or value is False:
        return value
    if isinstance(value, str):
        return Masked(value)
    if type(value) in (list, tuple):
        return type(value)(mask(item) for item in value)
    try:
        empty = not value
    except Exception:  # a __bool__ that raises is not ours to call again
        empty = False
    return value if empty and isinstance(value, (bytes, int, float, dict)) else Hidden(value)


def kind_of(value: Any) -> str:
    """The type's name of ``value`` as given (a ``Hidden``'s or a ``Masked``'s original)."""
    if isinstance(value, Masked):
        return "str"
    return value.kind if isinstance(value, Hidden) else type(value).__name__
