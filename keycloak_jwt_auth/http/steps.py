"""What a sans-IO flow (``tokens/flow.py``) asks its driver to do: send one request, or pause;
and what the driver hands back. Plain data: no socket, no session, no event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from keycloak_jwt_auth.exceptions import KeycloakJWTAuthError, KeycloakUnavailableError

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """One HTTP request for a driver to send, with no redirect and at most ``limit`` bytes read.
    ``unavailable`` and ``refused`` build the error a driver throws back when there is no
    usable answer (from the reason, and the reason and status)."""

    method: str
    url: str
    headers: Mapping[str, str]
    form: Mapping[str, str] = field(repr=False)  # holds the assertion
    limit: int
    unavailable: Callable[[str], KeycloakUnavailableError] = field(repr=False)
    refused: Callable[[str, int], KeycloakJWTAuthError] = field(repr=False)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``transport.exchange`` / ``async_transport.aexchange``."""
        return {
            "unavailable": self.unavailable,
            "refused": self.refused,
            "limit": self.limit,
            "data": self.form,
            "headers": self.headers,
        }


@dataclass(frozen=True)
class Reply:
    """The answer to a ``Send``: its body already read (and capped) by the driver."""

    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    url: str


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` before the next try."""

    seconds: float


class Pump(Generic[T]):
    """What both drivers share: feed a flow its replies (or its errors), call ``on_pause``
    after each pause, and keep what it returns. A driver iterates the steps, does the I/O or
    the wait of each inside ``answering()``, and sets ``reply``."""

    def __init__(
        self, flow: Generator[Send | Pause, Reply | None, T], on_pause: Callable[[], None] | None
    ) -> None:
        self._flow = flow
        self._on_pause = on_pause
        self.reply: Reply | None = None
        self._failure: KeycloakJWTAuthError | None = None
        self.result: T

    def __iter__(self) -> Iterator[Send | Pause]:
        while True:
            try:
                if self._failure is not None:
                    step = self._flow.throw(self._failure)
                else:
                    step = self._flow.send(self.reply)
            except StopIteration as done:
                self.result = done.value
                return
            self.reply, self._failure = None, None
            yield step
            if isinstance(step, Pause) and self._on_pause is not None:
                self._on_pause()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        try:
            yield
        except KeycloakJWTAuthError as exc:  # no usable answer: the flow decides what it means
            self._failure = exc
