"""Reading a client's private keys: the PEM text of a setting, or of the file it names.

A config build reads each key file once: ``ClientSettings.pem`` keeps what it read (or why it
could not), so the rules that check a key and the config that holds it see the same text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.keys import KeyProblem
from keycloak_jwt_auth.masked import Masked, mask

from .defaults import PEM_SETTINGS

# The settings that hold a secret: masked as the settings are read, before any rule runs.
SECRET_SETTINGS = ("CLIENT_SECRET", "FALLBACK_SECRETS", *PEM_SETTINGS)

PEM_FILE_LIMIT = 64 * 1024  # bytes; a larger "key file" is a wrong path (or /dev/zero)


@sensitive_variables()
def read_pem(raw: Mapping[str, Any], key: str) -> str | None:
    """The PEM text of key setting ``key`` (``PRIVATE_KEY``, ``NEXT_PRIVATE_KEY``, ``DPOP_KEY``):
    the text itself or its ``*_FILE``'s content; ``None`` when neither is set. Raises
    ``KeyProblem``."""
    path = raw[PEM_SETTINGS[key]]
    if not path:
        return Masked(raw[key]) if raw[key] else None
    try:
        with open(path, "rb") as file:
            data = file.read(PEM_FILE_LIMIT + 1)
    except OSError as exc:
        raise KeyProblem(f"{os.fspath(path)!r} cannot be read ({exc.strerror})") from None
    if len(data) > PEM_FILE_LIMIT:
        raise KeyProblem(f"{os.fspath(path)!r} is larger than {PEM_FILE_LIMIT} bytes") from None
    try:
        return Masked(data.decode("ascii"))  # a str whose repr (in any frame's locals) is stars
    except UnicodeDecodeError:
        raise KeyProblem(f"{os.fspath(path)!r} is not a PEM text file") from None


class ClientSettings(dict[str, Any]):
    """One client's merged settings; ``pem(key)`` reads a key (file) on first use only.

    The secrets and keys in it are masked (``masked.mask``) as it is made, whatever their
    type: no frame that holds it or one of its values can show them on an error page.
    ``last_read`` is the key read last, which a rule that fails unexpectedly is reported on."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        for key in SECRET_SETTINGS:
            if key in self:
                super().__setitem__(key, mask(super().__getitem__(key)))
        self._pems: dict[str, str | None | KeyProblem] = {}
        self.last_read: str | None = None

    def __getitem__(self, key: str) -> Any:
        self.last_read = key
        return super().__getitem__(key)

    def __repr__(self) -> str:
        return f"ClientSettings(<{len(self)} keys, not shown>)"

    @sensitive_variables()
    def pem(self, key: str) -> str | None:
        """``read_pem(self, key)``, remembered (its ``KeyProblem`` too)."""
        if key not in self._pems:
            try:
                self._pems[key] = read_pem(self, key)
            except KeyProblem as problem:
                self._pems[key] = problem
        text = self._pems[key]
        if isinstance(text, KeyProblem):
            raise KeyProblem(str(text)) from None
        return text
