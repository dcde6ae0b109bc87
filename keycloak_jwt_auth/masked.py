"""``Masked``: a string that never shows itself in a ``repr``.

Django's technical 500 page and error trackers show every frame's local variables through
``repr()``, and while ``DEBUG`` is True Django hides none of them (``sensitive_variables`` only
works with ``DEBUG`` off). So the client secret, each client assertion and each access token is
held as a ``Masked`` wherever the app keeps it. It is still a ``str``: requests, PyJWT and
``json`` use it as the value it is.
"""

from __future__ import annotations


class Masked(str):
    __slots__ = ()

    def __repr__(self) -> str:
        return "'********'"
