"""The token store: where one client's token lives, and the lock that lets one worker fetch.

Two places: this process's memory, and Django's cache, shared by every process and host that
points at it. The store decides nothing about renewal. A failing cache degrades to memory with
one warning (and is left alone for a while), never to an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import math
import pickle
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ImproperlyConfigured

from keycloak_jwt_auth.settings import ClientConfig
from keycloak_jwt_auth.signals import send, token_cache_failed, token_cache_recovered

from .token import AccessToken

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A cold waiter looks again after FIRST_PAUSE, then after pauses that grow by PAUSE_GROWTH up to
# LONGEST_PAUSE: a dozen looks for a 1.5 s fetch (a fixed 50 ms poll: 30), seen about 0.1 s
# after it is stored. When the lock holder has fetched before, its lock says when it expects to
# finish, and waiters sleep until then.
FIRST_PAUSE = 0.05  # seconds
PAUSE_GROWTH = 1.15
LONGEST_PAUSE = 0.25  # seconds
CACHE_RETRY_INTERVAL = 5.0  # seconds a failed cache is left alone before it is tried again
SECRET_CHOICE_TIMEOUT = 30 * 24 * 3600  # seconds; a rotation is over long before
LOCK_CLOCK_SKEW = 5.0  # seconds hosts' clocks may differ when they judge a lock's deadline


def token_cache_key(
    config: ClientConfig, *, jkt: str | None = None, audience: str | None = None
) -> str:
    """One key per server, realm, client, scope, algorithm and credential (hashed:
    memcached-safe), and per DPoP key (``jkt``, its thumbprint: a new key means a new token,
    never one it cannot use), and per ``audience`` (a token exchanged for one API). The
    credential counts because a URL can name two servers in turn: each ``FakeKeycloak`` has
    its own random secret, and a later one on a reused port must not be served the token of
    the one before."""
    parts: tuple[str, ...] = (
        config.server_url,
        config.realm,
        config.client_id,
        config.scope or "",
        config.algorithm,
        credential_fingerprint(config),
    )
    if jkt is not None:
        parts += (f"dpop:{jkt}",)
    if audience is not None:
        parts += (f"audience:{audience}",)
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"keycloak_jwt_auth:v1:token:{digest}"


def credential_fingerprint(config: ClientConfig) -> str:
    """The client's secret or key, keyed with ``SECRET_KEY``: a cache's key names never help
    to guess a secret, yet every process of one site computes the same value. A federated
    client's credential is where its JWT comes from (the setting, not the rotating JWT)."""
    federated = config.assertion_file or config.assertion_provider
    source = f"federated:{'file' if config.assertion_file else 'provider'}:{federated}"
    credential = config.client_secret or config.private_key or (source if federated else "")
    try:
        site_key = settings.SECRET_KEY
    except ImproperlyConfigured:  # no SECRET_KEY (a bare script): the hash stays one-way
        site_key = ""
    return hmac.new(site_key.encode(), credential.encode(), hashlib.sha256).hexdigest()


# What a backend raises when it answered with bytes its serializer cannot load (pickle's many
# failures, bad base64...): the cache works, the value is foreign. Not an outage.
UNDECODABLE = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    OverflowError,
    RecursionError,
)
NOT_A_TOKEN = object()  # read as "not a stored token"


FREE, HELD, DEAD = "free", "held", "dead"  # what a look sees of the lock


@dataclasses.dataclass(frozen=True)
class Look:
    """One read of the shared cache: the usable token (ours or the shared one), whether another
    worker holds the lock (``HELD``: it fetches; ``DEAD``: a value no live worker wrote), and
    until when a failed renewal asked renewals to hold off (0: no back-off)."""

    token: AccessToken | None
    lock: str = FREE
    backoff_until: float = 0.0
    expected_at: float = 0.0  # when the holder of a ``HELD`` lock expects to store its token
    held_since: float = 0.0  # when the holder of a ``HELD`` lock took it


def _owner_part(held: object) -> str:
    return held.partition(":")[0] if isinstance(held, str) else ""


def _time_in(raw: object, now: float, ahead: float) -> float:
    """The time ``raw`` names, when it lies in the next ``ahead`` seconds (else 0: a back-off
    or an expected finish that no live worker wrote)."""
    try:
        at = float(raw) if isinstance(raw, str) and raw else 0.0
    except ValueError:
        return 0.0
    return at if now < at <= now + ahead else 0.0


def _took(missed: tuple[float, float], longest: float) -> float | None:
    """How long another worker's fetch took, at least: it had not ended at our last look
    without a token. (Short rather than long: a waiter that wakes early looks a few more
    times, one that wakes late hands the token out late.)"""
    looked_at, held_since = missed
    took = looked_at - held_since
    return took if held_since and 0 < took <= longest else None


def _get_decodable(key: str) -> Callable[[Any], Any]:
    def get(cache: Any) -> Any:
        try:
            return cache.get(key)
        except UNDECODABLE:
            return NOT_A_TOKEN

    return get


class TokenStore:
    """One client's token in memory and in the shared cache, and its cross-process lock."""

    def __init__(
        self, config: ClientConfig, *, bound_to: str | None = None, audience: str | None = None
    ) -> None:
        self.client = config.name
        self.client_id = config.client_id
        self.cache_alias = config.cache_alias
        self.bound_to = bound_to  # a DPoP client's key thumbprint: its tokens must be bound to it
        self.key = token_cache_key(config, jkt=bound_to, audience=audience)
        self.lock_key = f"{self.key}:lock"
        self.secret_choice_key = f"{self.key}:secret"
        # A failed renewal's back-off, a key of its own: the lock always means "a worker is
        # fetching now", so a caller without a token never waits for a back-off.
        self.backoff_key = f"{self.key}:backoff"
        self.lock_timeout = max(1, math.ceil(config.lock_timeout))
        self.longest_hold = self.lock_timeout * (config.retries + 2)
        self.memo: AccessToken | None = None  # the newest token this process has seen
        self.fetch_seconds: float | None = None  # how long this process's last fetch took
        self._healthy = True
        self.failures = 0  # cache operations that failed (a failed cache is retried now and then)
        self._retry_at = 0.0  # monotonic time before which a failed cache is not tried
        self._warned_unreadable = False

    def __repr__(self) -> str:
        return f"<TokenStore client_id={self.client_id!r} cache={self.cache_alias!r}>"

    def read(self, now: float) -> AccessToken | None:
        """The usable token that lasts longest, of the one in memory and the shared one."""
        return self._best(self.shared(), now)

    def look(self, now: float) -> Look:
        """The usable token, the lock and the back-off, in one request to the cache."""
        values: dict[str, Any] = self._call(self._get_all, {})
        token = self._best(self._token_from(values.get(self.key)), now)
        held = values.get(self.lock_key)
        lock = FREE if held is None else HELD if self._live(held) else DEAD
        ahead = self.lock_timeout  # a planted value delays nobody for longer than that
        until = _time_in(values.get(self.backoff_key), now, ahead + LOCK_CLOCK_SKEW)
        if lock != HELD:
            return Look(token, lock, until)
        # "owner/expected:deadline", the deadline LONGEST_HOLD after the lock was taken
        expected = _time_in(_owner_part(held).partition("/")[2], now, ahead)
        since = float(str(held).partition(":")[2]) - self.longest_hold  # a live lock's deadline
        return Look(token, lock, until, expected, since)

    def _get_all(self, cache: Any) -> dict[str, Any]:
        keys = [self.key, self.lock_key, self.backoff_key]
        try:
            return dict(cache.get_many(keys))
        except UNDECODABLE:  # a foreign value among them: read each alone
            return {key: _get_decodable(key)(cache) for key in keys}

    def _best(self, shared: AccessToken | None, now: float) -> AccessToken | None:
        candidates = [self.memo, shared]
        usable = [t for t in candidates if t is not None and now < t.usable_until]
        best = max(usable, key=lambda t: t.expires_at, default=None)
        if best is not None:
            self.memo = best
        return best

    def holds_usable(self, now: float) -> bool:
        """Whether this process holds a usable token (so a fetch now is a renewal)."""
        return self.memo is not None and now < self.memo.usable_until

    def shared(self) -> AccessToken | None:
        """The shared token; a value that is not a usable token is a miss (logged once until a
        good one is read again), and the next fetch overwrites it."""
        return self._token_from(self._call(_get_decodable(self.key), None))

    def _token_from(self, raw: object) -> AccessToken | None:
        if raw is None:
            return None
        try:
            token = AccessToken.from_json(raw, bound_to=self.bound_to)
        except ValueError as exc:
            if not self._warned_unreadable:
                self._warned_unreadable = True
                logger.warning(
                    "Ignoring the cached token of client %s: %s; the next fetch replaces it",
                    self.client_id,
                    exc,
                )
            return None
        self._warned_unreadable = False
        return token

    def write(self, token: AccessToken) -> None:
        self.memo = token
        timeout = max(1, math.ceil(token.expires_in()))  # explicit: None would mean forever
        self._call(lambda cache: cache.set(self.key, token.to_json(), timeout), None)

    def discard(self, rejected: str | None = None) -> None:
        """Drop the token here and in the shared cache; with ``rejected``, only that value, so
        a worker holding a stale token does not throw away a newer one fetched elsewhere."""
        if self.memo is not None and rejected in (None, self.memo.value):
            self.memo = None
        shared = self.shared()
        if shared is not None and rejected in (None, shared.value):
            self._call(lambda cache: cache.delete(self.key), None)

    def shared_secret_choice(self) -> object:
        """The fingerprint of the secret Keycloak accepted last, as any process saw it (only a
        hint of which secret to try first: a foreign value costs one refused request)."""
        return self._call(_get_decodable(self.secret_choice_key), None)

    def share_secret_choice(self, fingerprint: str) -> None:
        key, timeout = self.secret_choice_key, SECRET_CHOICE_TIMEOUT
        self._call(lambda cache: cache.set(key, fingerprint, timeout), None)

    @property
    def per_process(self) -> bool:
        """The cache is this process's own (a forked child has a copy, not a share)."""
        return isinstance(self._call(lambda cache: cache, None), LocMemCache)

    def try_lock(self) -> str | None:
        """An owner id when this worker may fetch, None while another worker holds the lock.
        Without a working cache only this process's own lock remains, so the answer is yes.
        A lock that no live worker can hold (no deadline in it, or one past or too far ahead:
        a planted value, or one a cache kept without its timeout) is taken over: it costs at
        most one extra token request, never a wait for a holder that does not exist."""
        owner = uuid.uuid4().hex
        if self._add_lock(owner):
            return owner
        held = self._call(lambda cache: cache.get(self.lock_key), None)
        if held is None or self._live(held):
            return None
        logger.warning("Cache %r holds a lock no worker can own; taking it", self.cache_alias)
        self._call(lambda cache: cache.delete(self.lock_key), None)
        return owner if self._add_lock(owner) else None

    def lock_or_token(
        self, longest_wait: float, first: Look | None = None
    ) -> tuple[str | None, AccessToken | None]:
        """Wait until this worker holds the lock (its owner id) or another worker's token is
        stored (that token), at most ``longest_wait`` seconds: then (None, None), and the caller
        fetches without the lock. ``first``: the look the caller made just now. Each look is
        one request to the cache, and the pauses between looks grow (``FIRST_PAUSE`` up to
        ``LONGEST_PAUSE``): a waiter costs the cache a few requests per fetch, not one every
        50 ms. A live holder extends its lock between tries; a dead one's lock expires within
        ``LOCK_TIMEOUT``. Either way, the wait is bounded. A back-off is no lock: this caller
        has no token, so it never waits for one."""
        started, pause = time.monotonic(), FIRST_PAUSE
        looked_at = time.time()
        look = first or self.look(looked_at)
        missed = (0.0, 0.0)  # our last look without a token: when, and since when it was held
        while look.token is None:
            owner = None if look.lock == HELD else self.try_lock()
            if owner is not None:
                # Look after taking the lock too: the previous owner may have stored its token
                # and released the lock between our look and our lock.
                token = self.read(time.time())
                if token is None:
                    return owner, None
                self.release(owner)
                return None, token
            waited = time.monotonic() - started
            if waited >= longest_wait:
                logger.warning(
                    "Waited %.0fs for another worker's token for client %s; fetching one here",
                    waited,
                    self.client_id,
                )
                return None, None
            if look.expected_at:  # sleep until the holder expects to be done, then look often
                pause = max(FIRST_PAUSE, look.expected_at - time.time())
            time.sleep(min(pause, longest_wait - waited))
            pause = FIRST_PAUSE if look.expected_at else min(pause * PAUSE_GROWTH, LONGEST_PAUSE)
            missed = (looked_at, look.held_since)
            looked_at = time.time()
            look = self.look(looked_at)
        # What our own lock will say it expects, so that waiters sleep until then:
        self.fetch_seconds = _took(missed, self.lock_timeout) or self.fetch_seconds
        return None, look.token

    def back_off(self, owner: str | None) -> None:
        """After a failed renewal: renewals anywhere hold off for ``LOCK_TIMEOUT`` (a down
        Keycloak is not asked on every call), and the lock is free for a caller without a
        token, who must not wait for a back-off."""
        until = f"{time.time() + self.lock_timeout:.3f}"
        self._call(lambda cache: cache.set(self.backoff_key, until, self.lock_timeout), None)
        self.release(owner)

    def extend_lock(self, owner: str | None) -> None:
        """Give the lock ``owner`` holds another ``LOCK_TIMEOUT``: it is still fetching."""
        if owner is not None and self._held_by(owner):
            self._call(lambda cache: cache.touch(self.lock_key, self.lock_timeout), None)

    def release(self, owner: str | None) -> None:
        # Compare, then delete: only the owner releases. (Not atomic; the lock's timeout
        # covers the rare case of it expiring in between.)
        if owner is not None and self._held_by(owner):
            self._call(lambda cache: cache.delete(self.lock_key), None)

    def _add_lock(self, owner: str) -> bool:
        value = self._lock_value(owner)
        return self._call(lambda cache: cache.add(self.lock_key, value, self.lock_timeout), True)

    def _lock_value(self, owner: str) -> str:
        """The owner (with when it expects to be done, when it has fetched before), and the
        latest time a live owner can hold the lock: it extends the lock by ``LOCK_TIMEOUT``
        before each retry of its one fetch. (Earlier versions read "owner:deadline" and compare
        the owner part whole: they wait for these locks as for their own.)"""
        now = time.time()
        expected = "" if self.fetch_seconds is None else f"/{now + self.fetch_seconds:.3f}"
        return f"{owner}{expected}:{now + self.longest_hold:.3f}"

    def _held_by(self, owner: str) -> bool:
        held = self._call(lambda cache: cache.get(self.lock_key), None)
        return _owner_part(held).partition("/")[0] == owner

    def _live(self, held: object) -> bool:
        _, _, deadline = held.partition(":") if isinstance(held, str) else ("", "", "")
        try:
            left = float(deadline) - time.time()
        except ValueError:
            return False
        return -LOCK_CLOCK_SKEW < left <= self.longest_hold + LOCK_CLOCK_SKEW

    def retried_in(self) -> float:
        """Seconds until a cache that failed is tried again (0 while it works)."""
        return 0.0 if self._healthy else max(0.0, self._retry_at - time.monotonic())

    def _call(self, operation: Callable[[Any], T], fallback: T) -> T:
        # After a failure the cache is left alone for a while: with Redis down, callers must
        # not each pay its connection timeout.
        if not self._healthy and time.monotonic() < self._retry_at:
            return fallback
        try:
            result = operation(caches[self.cache_alias])
        except Exception as exc:  # any backend error: Redis down, timeouts, bad config...
            self._retry_at = time.monotonic() + CACHE_RETRY_INTERVAL
            self.failures += 1
            if self._healthy:
                self._healthy = False
                logger.warning(
                    "Cache %r failed (%s: %s); client %s falls back to in-process caching",
                    self.cache_alias,
                    type(exc).__name__,
                    exc,
                    self.client_id,
                )
                send(token_cache_failed, TokenStore, client=self.client, error=exc)
            return fallback
        if not self._healthy:
            self._healthy = True
            logger.warning("Cache %r works again; sharing tokens resumes", self.cache_alias)
            send(token_cache_recovered, TokenStore, client=self.client)
        return result
