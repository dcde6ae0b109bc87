"""``clients[name]``: everything one client name owns, built lazily from settings, in one place.

Like Django's ``caches`` and ``connections`` handlers: the first use of a name builds its
``Client`` (config, client authentication, token manager, HTTP session, per-event-loop async
clients); a change of the ``KEYCLOAK_JWT_AUTH`` or ``CACHES`` setting drops them all (one
receiver), and a forked child forgets what belongs to its parent (one hook). Nothing else in
the package keeps per-client state at module level.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.signals import setting_changed
from django.dispatch import receiver

from keycloak_jwt_auth.client_auth import ClientAuthentication, PrivateKeyJwt, client_authentication
from keycloak_jwt_auth.exceptions import ConfigurationError
from keycloak_jwt_auth.ops.metrics import TokenStats, count_served_from
from keycloak_jwt_auth.settings import (
    CLIENT_SETTINGS,
    DEFAULT_CLIENT,
    ClientConfig,
    build_client_config,
    client_names,
)
from keycloak_jwt_auth.tokens.manager import TokenManager

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
Jwk = dict[str, str]
# What a forked child keeps of its parent's clients (the manager forgets its own process state);
# everything else, sessions first, is built again in the child.
REUSED_AFTER_FORK = ("config", "authentication", "manager")


class Client:
    """What one client name owns. Each part is built on first use, once (threads that race
    for it get the same one)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._parts: dict[str, Any] = {}
        self._lock = threading.RLock()  # a part's build may need another part
        # Pooled httpx clients belong to the event loop (and process) that opened them.
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncClient
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"<Client {self.name!r}>"

    @property
    def config(self) -> ClientConfig:
        return self._once("config", lambda: build_client_config(self.name))

    @property
    def authentication(self) -> ClientAuthentication:
        """The client authentication method (it remembers which secret Keycloak accepted)."""
        return self._once("authentication", lambda: client_authentication(self.config))

    @property
    def manager(self) -> TokenManager:
        return self._once("manager", lambda: TokenManager(self.config, self.authentication))

    def keep(self, part: str, build: Callable[[], T]) -> T:
        """What a layer above keeps per client and process (e.g. the Admin API's session):
        built on first use, dropped with the client, rebuilt in a forked child."""
        return self._once(part, build)

    def async_client(self, build: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient:
        """This event loop's pooled ``httpx.AsyncClient`` (``build`` makes it on first use in
        the loop; httpx is optional, so this module never imports it)."""
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = build()
        return client

    async def aclose(self) -> None:
        """Close this event loop's pooled client."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def public_keys(self) -> list[Jwk]:
        """The public JWKs of a ``private_key_jwt`` client (the current key, and the next one
        during a rotation); none for other methods."""
        method = self.authentication
        return (
            [signer.jwk for signer in method.signers] if isinstance(method, PrivateKeyJwt) else []
        )

    def forget_process_state(self) -> None:  # pragma: no cover (runs in forked children)
        """In a forked child: the parent's sockets, loops and in-flight fetches are not ours."""
        self._lock = threading.RLock()
        self._async_clients = weakref.WeakKeyDictionary()
        self._parts = {part: self._parts[part] for part in REUSED_AFTER_FORK if part in self._parts}
        manager = self.built("manager")
        if manager is not None:
            manager.forget_process_state()

    def built(self, part: str) -> Any:
        """The part if it was built, else None (building nothing)."""
        return self._parts.get(part)

    def _once(self, part: str, build: Callable[[], T]) -> T:
        built = self._parts.get(part)
        if built is None:
            with self._lock:
                built = self._parts.get(part)
                if built is None:
                    built = self._parts[part] = build()
        return built


class ClientHandler:
    """The ``Client`` of each name, made on first use."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Client:
        client = self._clients.get(name)
        if client is None:
            with self._lock:
                client = self._clients.get(name)
                if client is None:
                    client = self._clients[name] = Client(name)
        return client

    def __iter__(self) -> Iterator[Client]:
        """The clients built so far."""
        return iter(list(self._clients.values()))

    def reset(self) -> None:
        """Forget every client: the next use builds it from the settings as they are now.
        (Sessions are not closed: a request in another thread may still be using one.)"""
        with self._lock:
            self._clients = {}

    def forget_process_state(self) -> None:  # pragma: no cover (runs in forked children)
        self._lock = threading.Lock()
        for client in self:
            client.forget_process_state()

    def token_stats(self) -> list[tuple[str, TokenStats]]:
        """(client name, its counts) of every manager built so far."""
        managers = ((client.name, client.built("manager")) for client in self)
        return [(name, manager.stats) for name, manager in managers if manager is not None]

    def published_keys(self) -> list[Jwk]:
        """The public keys of every usable ``private_key_jwt`` client; clients with unusable
        settings are left out (the system checks report them)."""
        keys: list[Jwk] = []
        for name in client_names():
            try:
                found = self[name].public_keys()
            except ConfigurationError:
                continue
            keys.extend(jwk for jwk in found if jwk not in keys)
        return keys


clients = ClientHandler()
os.register_at_fork(after_in_child=clients.forget_process_state)
count_served_from(clients.token_stats)


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: object) -> None:
    if setting in CLIENT_SETTINGS:
        clients.reset()


def get_client_config(name: str = DEFAULT_CLIENT) -> ClientConfig:
    """The validated config of client ``name``; raises ``ConfigurationError`` when unusable."""
    return clients[name].config


def get_token_manager(client: str = DEFAULT_CLIENT) -> TokenManager:
    """The process-wide manager of ``client`` (one per name, made on first use)."""
    return clients[client].manager


def get_access_token(client: str = DEFAULT_CLIENT, *, force_refresh: bool = False) -> str:
    """The access token of ``client``, from memory or the shared cache when it can be."""
    return clients[client].manager.get_token(force_refresh=force_refresh).value


async def aget_access_token(client: str = DEFAULT_CLIENT, *, force_refresh: bool = False) -> str:
    """``get_access_token`` for async code: the same token, the same single flight."""
    return (await clients[client].manager.aget_token(force_refresh=force_refresh)).value
