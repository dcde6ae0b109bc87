"""``federated_jwt``: Keycloak's federated client authentication. The client assertion is a JWT
that another issuer Keycloak trusts has signed (a Kubernetes projected service-account token,
an OIDC provider's token): the app holds no secret and no key.

The JWT comes from ``ASSERTION_FILE`` (re-read as soon as the file changes) or
``ASSERTION_PROVIDER`` (called for every token request: an OIDC issuer's assertions are single
use). Before it is sent, a JWT that is no JWT, or that expires within the reach of the token
request, is refused here with an ``AssertionUnusableError``: Keycloak would refuse it anyway,
and its answer would not say which file was stale.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.exceptions import AssertionUnusableError
from keycloak_jwt_auth.federation import (
    NotAJwt,
    UnreadableAssertion,
    read_assertion_file,
    remaining_life,
    unverified_claims,
)
from keycloak_jwt_auth.masked import Masked, kind_of, mask
from keycloak_jwt_auth.settings import ClientConfig, one_request_seconds

FileIdentity = tuple[int, int, int, int]  # (device, inode, mtime in ns, size)


class AssertionFile:
    """The JWT in a file, read again when the file changes. The kubelet replaces a projected
    token by pointing the ``..data`` symlink at a new directory: ``os.stat`` follows the links,
    so the new inode is seen by the very next request, and an unchanged file costs one stat."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = f"ASSERTION_FILE ({path!r})"
        self._lock = threading.Lock()
        self._seen: tuple[FileIdentity, Masked] | None = None

    def __repr__(self) -> str:
        return f"AssertionFile({self.path!r})"

    @sensitive_variables()
    def read(self) -> Masked:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise self.unusable(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        identity = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
        with self._lock:
            if self._seen is None or self._seen[0] != identity:
                try:
                    self._seen = (identity, read_assertion_file(self.path))
                except UnreadableAssertion as exc:
                    raise self.unusable(str(exc)) from None
            return self._seen[1]

    def unusable(self, reason: str, remaining: float | None = None) -> AssertionUnusableError:
        hint = "Check the projected service-account token volume (README, 'Running on Kubernetes')."
        return AssertionUnusableError(
            f"{self.name} {reason}. {hint}", source=self.name, remaining=remaining
        )


class AssertionProvider:
    """The JWT a callable returns, called for every token request. What it raises is not
    chained: its frames may hold the credentials it used to get the JWT."""

    def __init__(self, dotted_path: str) -> None:
        self.path = dotted_path
        self.name = f"ASSERTION_PROVIDER ({dotted_path!r})"
        self._provider: Callable[[], Any] | None = None

    def __repr__(self) -> str:
        return f"AssertionProvider({self.path!r})"

    @sensitive_variables()
    def read(self) -> Masked:
        provider = self._callable()
        failure = None
        try:
            token = mask(provider())  # masked at once, whatever it is
        except Exception as exc:
            failure = type(exc).__name__
        # Raised out here, not in the except block: no __context__ either, so no error page
        # or tracker walks into the provider's frames.
        if failure is not None:
            raise self.unusable(f"raised {failure}")
        if not isinstance(token, Masked):
            raise self.unusable(f"returned a {kind_of(token)}, not a str")
        return Masked(token.strip())

    def _callable(self) -> Callable[[], Any]:
        if self._provider is None:
            try:
                provider = import_string(self.path)
            except ImportError as exc:
                raise self.unusable(f"cannot be imported ({exc})") from None
            if not callable(provider):
                raise self.unusable("is not callable")
            self._provider = provider
        return self._provider

    def unusable(self, reason: str, remaining: float | None = None) -> AssertionUnusableError:
        return AssertionUnusableError(
            f"{self.name} {reason}", source=self.name, remaining=remaining
        )


Source = AssertionFile | AssertionProvider


class ExternalJwtSigner:
    """The ``Signer`` of a federated client: it signs nothing and returns the external JWT,
    refused before the network when it is no JWT or will not outlive ``reach`` seconds."""

    def __init__(self, source: Source, reach: float) -> None:
        self.source = source
        self.name = source.name
        self.reach = reach

    def __repr__(self) -> str:
        return f"ExternalJwtSigner({self.source!r})"

    @sensitive_variables()
    def sign(self, claims: dict[str, Any]) -> str:
        """The external JWT (``claims``, the app's own assertion claims, are not used)."""
        token = self.source.read()
        try:
            life = remaining_life(unverified_claims(token), time.time())
        except NotAJwt as exc:
            raise self.source.unusable(str(exc)) from None
        if life is None:
            raise self.source.unusable("holds a JWT without exp, which Keycloak refuses")
        if life <= self.reach:
            said = f"expired {-life:.0f} s ago" if life <= 0 else f"expires in {life:.0f} s"
            reason = (
                f"holds a JWT that {said}, within the {self.reach:g} s a token request may take"
            )
            raise self.source.unusable(reason, life)
        return token


class FederatedJwt:
    """``federated_jwt``: one credential, the external JWT; nothing to choose or remember."""

    def __init__(self, config: ClientConfig) -> None:
        self.client = config.name
        source: Source
        if config.assertion_file is not None:
            source = AssertionFile(config.assertion_file)
        else:
            assert config.assertion_provider is not None  # the rules require one of them
            source = AssertionProvider(config.assertion_provider)
        self.signer = ExternalJwtSigner(source, request_reach(config))

    def __repr__(self) -> str:
        return f"FederatedJwt(client={self.client!r}, source={self.signer.source!r})"

    def candidates(self, hint: object = None) -> list[ExternalJwtSigner]:
        return [self.signer]

    def wants_hint(self) -> bool:
        return False

    def accepted(self, signer: Any) -> None:
        return None


def request_reach(config: ClientConfig) -> float:
    """How long after it is read the JWT may still be on its way to Keycloak: one request's
    worst case (connect + read timeouts). Each try of the token flow, retries included, reads
    the assertion again, so no JWT has to outlive more than its own request."""
    return one_request_seconds(config.timeout)
