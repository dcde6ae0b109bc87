"""The token manager: in-process memo -> Django cache (shared) -> lock -> refresh.

Rules (design.md section 3):
- while a usable token exists, no caller waits on the token endpoint; the caller that wins the
  renewal lock renews in a background thread (or inline, with ``BACKGROUND_REFRESH`` off);
- when no usable token exists, callers wait for one shared fetch: one per process (a thread
  lock) and one per deployment (an atomic ``cache.add`` lock); waiting is bounded by
  ``LOCK_TIMEOUT``, after which a waiter fetches itself;
- a failing cache degrades to in-process caching with one warning, never to an error.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from django.core.cache import caches

from .conf import DEFAULT_CLIENT, ClientConfig, get_client_config, on_reset
from .token_endpoint import request_token
from .tokens import AccessToken

logger = logging.getLogger(__name__)

T = TypeVar("T")

EXPIRY_LEEWAY = 1.0  # seconds before expires_at that a token stops being handed out
RECHECK_INTERVAL = 0.25  # seconds between shared-cache looks while another worker renews
POLL_INTERVAL = 0.05  # seconds between shared-cache looks while waiting for a cold token
CACHE_RETRY_INTERVAL = 5.0  # seconds a failed cache is left alone before it is tried again


def token_cache_key(config: ClientConfig) -> str:
    """One key per server, realm, client, scope and algorithm (hashed: memcached-safe)."""
    parts = (
        config.server_url,
        config.realm,
        config.client_id,
        config.scope or "",
        config.algorithm,
    )
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"keycloak_jwt_auth:v1:token:{digest}"


def refresh_at(token: AccessToken, margin: float) -> float:
    """When renewal starts: ``margin`` early, but never more than a third of the lifetime early,
    so that a short-lived token is not renewed on every call."""
    return token.expires_at - min(margin, token.lifetime / 3)


def usable_until(token: AccessToken) -> float:
    return token.expires_at - min(EXPIRY_LEEWAY, token.lifetime / 10)


class _Fetch:
    """One in-flight fetch that the threads of this process share."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.token: AccessToken | None = None
        self.error: BaseException | None = None
        self.lock_owner: str | None = None


class TokenManager:
    """Hands out one client's access token, shared through Django's cache."""

    def __init__(self, config: ClientConfig, *, session: requests.Session | None = None) -> None:
        self.config = config
        self.session = session or requests.Session()
        self.cache_key = token_cache_key(config)
        self.lock_key = f"{self.cache_key}:lock"
        self.fetch_count = 0  # token requests this manager made (for logs, tests, benchmarks)
        self._memo: tuple[AccessToken, float] | None = None  # (token, when to look again)
        self._lock = threading.Lock()
        self._fetch: _Fetch | None = None
        self._backoff_lock_owner: str | None = None  # lock kept after a failed renewal
        self._cache_healthy = True
        self._cache_retry_at = 0.0  # monotonic time before which a failed cache is not tried

    def __repr__(self) -> str:
        return f"<TokenManager client={self.config.name!r} client_id={self.config.client_id!r}>"

    # --- public --------------------------------------------------------------------------

    def get_token(self, *, force_refresh: bool = False) -> AccessToken:
        """A usable token; fetches only when needed (or when ``force_refresh``)."""
        memo = self._memo
        if not force_refresh and memo is not None and time.time() < memo[1]:
            return memo[0]
        if force_refresh:
            return self._fetch_now()
        return self._slow_path()

    def get_token_with_origin(self, *, force_refresh: bool = False) -> tuple[AccessToken, bool]:
        """The token, and True when it came from memory or the shared cache (not fetched now)."""
        held = None if force_refresh else self.peek()
        token = self.get_token(force_refresh=force_refresh)
        return token, held is not None and held.value == token.value

    def peek(self) -> AccessToken | None:
        """The usable token held in memory or in the shared cache, without fetching one."""
        return self._best_usable(time.time())

    def invalidate(self, rejected: str | None = None) -> None:
        """Drop the token (memo and shared copy). With ``rejected``, drop only that token value,
        so a worker holding a stale token does not throw away a newer one fetched elsewhere."""
        memo = self._memo
        if memo is not None and rejected in (None, memo[0].value):
            self._memo = None
        shared = self._cache_get()
        if shared is not None and rejected in (None, shared.value):
            self._cache_call(lambda cache: cache.delete(self.cache_key), None)
        logger.info("Dropped the cached token of client %s", self.config.client_id)

    # --- paths ---------------------------------------------------------------------------

    def _slow_path(self) -> AccessToken:
        now = time.time()
        token = self._best_usable(now)
        if token is None:
            return self._wait_for_shared_fetch()
        if now < refresh_at(token, self.config.refresh_margin):
            self._remember(token)
            return token
        self._renew_without_waiting(token, now)
        return token

    def _renew_without_waiting(self, current: AccessToken, now: float) -> None:
        # Whatever happens, look again only after a short pause: no cache traffic on every call.
        self._memo = (current, min(now + RECHECK_INTERVAL, usable_until(current)))
        with self._lock:
            if self._fetch is not None:
                return
            owner = self._acquire_shared_lock()
            if owner is None:
                return  # another worker renews; its token will appear in the shared cache
            renewed = self._best_usable(now)
            if renewed is not None and now < refresh_at(renewed, self.config.refresh_margin):
                # Another worker renewed and released the lock since we looked: use its token.
                self._release_shared_lock(owner)
                self._remember(renewed)
                return
            fetch = self._fetch = _Fetch()
            fetch.lock_owner = owner
        logger.info("Renewing the token of client %s before it expires", self.config.client_id)
        if self.config.background_refresh:
            threading.Thread(
                target=self._run_fetch,
                args=(fetch,),
                kwargs={"keep_lock_on_error": True},
                name=f"keycloak-token-renewal-{self.config.name}",
                daemon=True,
            ).start()
        else:
            self._run_fetch(fetch, keep_lock_on_error=True)

    def _wait_for_shared_fetch(self) -> AccessToken:
        with self._lock:
            fetch, leader = self._fetch, self._fetch is None
            if leader:
                fetch = self._fetch = _Fetch()
        assert fetch is not None
        if leader:
            self._lead_cold_fetch(fetch)
        elif not fetch.done.wait(self.config.lock_timeout + self._request_budget()):
            return self._fetch_now()  # the leader is stuck; do not hang
        if fetch.error is not None:
            raise fetch.error
        assert fetch.token is not None
        return fetch.token

    def _lead_cold_fetch(self, fetch: _Fetch) -> None:
        """Get a token for every waiting thread: from another worker if one is fetching, else
        by fetching it ourselves (after at most ``LOCK_TIMEOUT`` of waiting)."""
        # Our own back-off must not make our own callers wait: no usable token is left.
        self._release_shared_lock(self._backoff_lock_owner)
        self._backoff_lock_owner = None
        deadline = time.monotonic() + self.config.lock_timeout
        while True:
            owner = self._acquire_shared_lock()
            # Look after taking the lock too: the previous owner may have stored its token and
            # released the lock between two of our looks.
            token = self._best_usable(time.time())
            if token is not None:
                self._release_shared_lock(owner)
                self._remember(token)
                self._finish(fetch, token=token)
                return
            if owner is not None:
                fetch.lock_owner = owner
                break
            if time.monotonic() >= deadline:
                logger.warning(
                    "Waited %.0fs for another worker's token for client %s; fetching one here",
                    self.config.lock_timeout,
                    self.config.client_id,
                )
                break
            time.sleep(POLL_INTERVAL)
        self._run_fetch(fetch, keep_lock_on_error=False)

    def _run_fetch(self, fetch: _Fetch, *, keep_lock_on_error: bool) -> None:
        try:
            token = self._fetch_now()
        except Exception as exc:
            logger.warning("Token request for client %s failed: %s", self.config.client_id, exc)
            # A failed background renewal keeps the lock until it times out: that is the
            # back-off, so that a down Keycloak is not asked again on every call.
            if keep_lock_on_error:
                self._backoff_lock_owner = fetch.lock_owner
            else:
                self._release_shared_lock(fetch.lock_owner)
            self._finish(fetch, error=exc)
            return
        self._release_shared_lock(fetch.lock_owner)
        self._finish(fetch, token=token)

    def _finish(
        self, fetch: _Fetch, *, token: AccessToken | None = None, error: BaseException | None = None
    ) -> None:
        fetch.token, fetch.error = token, error
        with self._lock:
            if self._fetch is fetch:
                self._fetch = None
        fetch.done.set()

    def _fetch_now(self) -> AccessToken:
        self.fetch_count += 1
        token = request_token(self.config, session=self.session)
        logger.info(
            "Fetched a token for client %s (expires in %.0fs)",
            self.config.client_id,
            token.expires_in(),
        )
        self._store(token)
        return token

    def _request_budget(self) -> float:
        """The longest a fetch can take: every attempt timing out, plus back-off."""
        timeout = self.config.timeout
        per_try = sum(timeout) if isinstance(timeout, tuple) else 2 * timeout
        return (self.config.retries + 1) * (per_try + 4.0)

    # --- memo and shared cache -----------------------------------------------------------

    def _remember(self, token: AccessToken) -> None:
        self._memo = (token, refresh_at(token, self.config.refresh_margin))

    def _best_usable(self, now: float) -> AccessToken | None:
        memo = self._memo
        candidates = [memo[0] if memo else None, self._cache_get()]
        usable = [t for t in candidates if t is not None and now < usable_until(t)]
        return max(usable, key=lambda t: t.expires_at, default=None)

    def _store(self, token: AccessToken) -> None:
        self._remember(token)
        timeout = max(1, math.ceil(token.expires_in()))  # explicit: None would mean forever
        self._cache_call(lambda cache: cache.set(self.cache_key, token.to_json(), timeout), None)

    def _cache_get(self) -> AccessToken | None:
        raw = self._cache_call(lambda cache: cache.get(self.cache_key), None)
        if raw is None:
            return None
        try:
            return AccessToken.from_json(raw)
        except (ValueError, KeyError, TypeError):
            logger.warning(
                "Ignoring an unreadable cached token for client %s", self.config.client_id
            )
            return None

    def _acquire_shared_lock(self) -> str | None:
        """The owner id when this worker may fetch, None when another worker holds the lock.
        Without a working cache only the in-process lock remains, so the answer is yes."""
        owner = uuid.uuid4().hex
        timeout = max(1, math.ceil(self.config.lock_timeout))
        added = self._cache_call(lambda cache: cache.add(self.lock_key, owner, timeout), True)
        return owner if added else None

    def _release_shared_lock(self, owner: str | None) -> None:
        # Compare, then delete: only the owner releases. (Not atomic; the lock's timeout
        # covers the rare case of it expiring in between.)
        if owner is not None and self._cache_call(lambda c: c.get(self.lock_key), None) == owner:
            self._cache_call(lambda cache: cache.delete(self.lock_key), None)

    def _cache_call(self, operation: Callable[[Any], T], fallback: T) -> T:
        # After a failure the cache is left alone for a while: with Redis down, callers must
        # not each pay its connection timeout.
        if not self._cache_healthy and time.monotonic() < self._cache_retry_at:
            return fallback
        try:
            result = operation(caches[self.config.cache_alias])
        except Exception as exc:  # any backend error: Redis down, timeouts, bad config...
            self._cache_retry_at = time.monotonic() + CACHE_RETRY_INTERVAL
            if self._cache_healthy:
                self._cache_healthy = False
                logger.warning(
                    "Cache %r failed (%s: %s); client %s falls back to in-process caching",
                    self.config.cache_alias,
                    type(exc).__name__,
                    exc,
                    self.config.client_id,
                )
            return fallback
        if not self._cache_healthy:
            self._cache_healthy = True
            logger.warning("Cache %r works again; sharing tokens resumes", self.config.cache_alias)
        return result


_managers: dict[str, TokenManager] = {}
_managers_lock = threading.Lock()
on_reset(_managers.clear)


def get_token_manager(client: str = DEFAULT_CLIENT) -> TokenManager:
    """The process-wide manager of ``client`` (one per name, made on first use)."""
    manager = _managers.get(client)
    if manager is None:
        with _managers_lock:
            manager = _managers.get(client)
            if manager is None:
                manager = _managers[client] = TokenManager(get_client_config(client))
    return manager


def get_access_token(client: str = DEFAULT_CLIENT, *, force_refresh: bool = False) -> str:
    """The access token of ``client``, from memory or the shared cache when it can be."""
    return get_token_manager(client).get_token(force_refresh=force_refresh).value
