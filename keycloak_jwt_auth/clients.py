"""``clients[name]``: everything one client name owns, built lazily from settings, in one place.

Like Django's ``caches`` and ``connections`` handlers: the first use of a name builds its
``Client`` (config, client authentication, DPoP signer, token manager, HTTP session,
per-event-loop async clients); a change of the ``KEYCLOAK_JWT_AUTH`` or ``CACHES`` setting
drops them all (one receiver), and a forked child forgets what belongs to its parent (one
hook). Nothing else in the package keeps per-client state at module level.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from django.core.signals import setting_changed
from django.dispatch import receiver

from keycloak_jwt_auth.client_auth import ClientAuthentication, PrivateKeyJwt, client_authentication
from keycloak_jwt_auth.client_auth.dpop import DPoPSigner
from keycloak_jwt_auth.exceptions import ConfigurationError
from keycloak_jwt_auth.metrics import TokenStats, count_served_from
from keycloak_jwt_auth.settings import (
    CLIENT_SETTINGS,
    DEFAULT_CLIENT,
    ClientConfig,
    build_client_config,
    client_names,
)
from keycloak_jwt_auth.tokens.exchange import ExchangeManager, check_audience
from keycloak_jwt_auth.tokens.manager import TokenManager

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
Jwk = dict[str, str]


class built_once(Generic[T]):  # lower case: used as a decorator, like cached_property
    """A ``Client`` part made on first use, under the client's lock: threads that race for it
    get the same one, and once made, reading it is a plain attribute read (the warm path)."""

    def __init__(self, build: Callable[[Client], T]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, client: None, owner: type) -> built_once[T]: ...
    @overload
    def __get__(self, client: Client, owner: type) -> T: ...
    def __get__(self, client: Client | None, owner: type) -> T | built_once[T]:
        if client is None:
            return self
        with client._lock:
            if self.name not in client.__dict__:
                client.__dict__[self.name] = self.build(client)
        return client.__dict__[self.name]  # type: ignore[no-any-return]


class Client:
    """What one client name owns, each part built on first use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.RLock()  # a part's build may need another part
        self._kept: dict[str, Any] = {}  # what layers above keep here (see ``keep``)
        self._exchanges: dict[str, TokenManager] = {}  # audience -> its exchange's manager
        # Pooled httpx clients belong to the event loop (and process) that opened them.
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncClient
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"<Client {self.name!r}>"

    @built_once
    def config(self) -> ClientConfig:
        return build_client_config(self.name)

    @built_once
    def authentication(self) -> ClientAuthentication:
        """The client authentication method (it remembers which secret Keycloak accepted)."""
        return client_authentication(self.config)

    @built_once
    def manager(self) -> TokenManager:
        return TokenManager(self.config, self.authentication)

    @built_once
    def dpop(self) -> DPoPSigner | None:
        """The DPoP key's signer (and the nonces servers asked for), or None: Bearer tokens.
        The manager's own: token requests and calls share one key and one nonce book."""
        return self.manager.dpop

    def manager_for(self, audience: str | None) -> TokenManager:
        """The manager of this client's own token (``audience`` None), or of its token for
        ``audience``, exchanged from its own (one per audience, made on first use)."""
        if audience is None:
            return self.manager
        found = self._exchanges.get(audience)
        if found is None:
            with self._lock:
                found = self._exchanges.get(audience) or self._new_exchange(audience)
        return found

    def _new_exchange(self, audience: str) -> TokenManager:
        check_audience(audience)
        manager = self._exchanges[audience] = ExchangeManager(self.manager, audience)
        return manager

    def built_manager(self) -> TokenManager | None:
        """The manager if it was built (building nothing)."""
        manager: TokenManager | None = self.__dict__.get("manager")
        return manager

    def keep(self, part: str, build: Callable[[], T]) -> T:
        """What a layer above keeps per client and process (e.g. the Admin API's session):
        built on first use, dropped with the client, built again in a forked child."""
        with self._lock:
            if part not in self._kept:
                self._kept[part] = build()
            kept: T = self._kept[part]
        return kept

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
        """In a forked child: the parent's sockets, loops and in-flight fetches are not ours
        (config, authentication and manager stay; the manager forgets its own state)."""
        self._lock = threading.RLock()
        self._kept = {}
        self._async_clients = weakref.WeakKeyDictionary()
        manager = self.built_manager()
        for built in [manager, *self._exchanges.values()]:
            if built is not None:
                built.forget_process_state()


class ClientHandler(dict[str, Client]):
    """The ``Client`` of each name, made on first use (``clients[name]``: a dict read once
    made, so the warm path pays no Python call for it)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def __missing__(self, name: str) -> Client:
        with self._lock:
            return self.setdefault(name, Client(name))

    def reset(self) -> None:
        """Forget every client: the next use builds it from the settings as they are now.
        (Sessions are not closed: a request in another thread may still be using one.)"""
        with self._lock:
            self.clear()

    def forget_process_state(self) -> None:  # pragma: no cover (runs in forked children)
        self._lock = threading.Lock()
        for client in list(self.values()):
            client.forget_process_state()

    def token_stats(self) -> list[tuple[str, TokenStats]]:
        """(client name, its counts) of every manager built so far."""
        managers = ((client.name, client.built_manager()) for client in list(self.values()))
        return [(name, manager.stats) for name, manager in managers if manager is not None]

    def published_keys(self, names: Iterable[str] | None = None) -> list[Jwk]:
        """The public keys of the usable ``private_key_jwt`` clients among ``names`` (default:
        every client), each key once; clients with unusable settings are left out (the system
        checks report them)."""
        keys: list[Jwk] = []
        for name in client_names() if names is None else names:
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


def get_access_token(
    client: str = DEFAULT_CLIENT, *, audience: str | None = None, force_refresh: bool = False
) -> str:
    """The access token of ``client``, from memory or the shared cache when it can be. With
    ``audience``: a token for that audience only (a client id of the realm), exchanged from
    the client's own token and cached per (client, audience) the same way."""
    owner = clients[client]
    manager = owner.manager if audience is None else owner.manager_for(audience)
    return manager.get_token(force_refresh=force_refresh).value


async def aget_access_token(
    client: str = DEFAULT_CLIENT, *, audience: str | None = None, force_refresh: bool = False
) -> str:
    """``get_access_token`` for async code: the same token, the same single flight."""
    manager = clients[client].manager_for(audience)
    return (await manager.aget_token(force_refresh=force_refresh)).value
